// Package coredns provides the lab's cluster DNS: Kubernetes' upstream
// sig-network e2e DNS specs resolve service and pod names through the
// kube-dns Service, so a lab without it cannot run them. CoreDNS is built
// from the Go module proxy, like the Kubernetes binaries (see k8sbuild),
// and deployed the way kubeadm deploys it.
//
// The build links only the plugins the lab's Corefile uses. In particular
// it has no forward (and so no loop) plugin: the lab must never send
// traffic to an address outside its own namespaces, so names outside the
// cluster zones get SERVFAIL instead of being sent to an upstream resolver.
package coredns

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// Version is the CoreDNS release kubeadm pins for Kubernetes 1.34, the
// release the lab runs.
const Version = "v1.12.1"

const module = "github.com/coredns/coredns"

// plugin is a Corefile directive and the package that registers it; the
// two names differ for prometheus (plugin/metrics).
type plugin struct {
	directive string
	pkg       string
}

// plugins are linked into the lab's CoreDNS, in the order of CoreDNS's own
// core/dnsserver/zdirectives.go: that order is the order a query passes
// through the plugins, whatever the order in the Corefile, and the
// plugins rely on it (cache must sit in front of kubernetes, errors and log
// must see every reply). log is not in the Corefile but is linked so the
// ConfigMap can switch query logging on (reload picks it up) while
// debugging a failing spec. hosts is not in the lab's Corefile either:
// the same binary goes into the upstream agnhost image, whose DNS specs run
// it as a pod's own name server with a hosts-only Corefile (upstream's
// agnhost image ships a CoreDNS release for that). The kubernetes plugin imports, and so
// registers, metadata and transfer too, but only directives listed here
// are accepted in a Corefile.
func plugins() []plugin {
	return []plugin{
		{"reload", module + "/plugin/reload"},
		{"ready", module + "/plugin/ready"},
		{"health", module + "/plugin/health"},
		{"prometheus", module + "/plugin/metrics"},
		{"errors", module + "/plugin/errors"},
		{"log", module + "/plugin/log"},
		{"loadbalance", module + "/plugin/loadbalance"},
		{"cache", module + "/plugin/cache"},
		{"hosts", module + "/plugin/hosts"},
		{"kubernetes", module + "/plugin/kubernetes"},
	}
}

func directives() []string {
	var d []string
	for _, p := range plugins() {
		d = append(d, p.directive)
	}
	return d
}

// EnsureBinary builds a static coredns binary unless the cache already
// holds one built from the same version and plugin list, and returns its
// path. A cold build takes a few minutes.
func EnsureBinary(cacheDir string, log io.Writer) (string, error) {
	root := filepath.Join(cacheDir, "coredns", Version)
	binDir := filepath.Join(root, "bin")
	bin := filepath.Join(binDir, "coredns")
	// The stamp names the plugins as well as the version, so a kovn that
	// links a different set rebuilds instead of reusing a binary whose
	// Directives would reject a directive the Corefile now uses.
	stamp := filepath.Join(binDir, ".complete")
	want := stampText()
	if got, err := os.ReadFile(stamp); err == nil && string(got) == want {
		if _, err := os.Stat(bin); err == nil {
			return bin, nil
		}
	}
	src := filepath.Join(root, "src")
	for _, d := range []string{src, binDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", err
		}
	}
	// A stamp from another plugin list must not vouch for a build that
	// fails half way.
	if err := os.Remove(stamp); err != nil && !os.IsNotExist(err) {
		return "", err
	}
	// go build -mod=mod appends the requirements it resolves to go.mod;
	// a go.mod that still starts with ours is left as the last build
	// completed it.
	if err := writeUnlessPrefix(filepath.Join(src, "go.mod"), goMod()); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(mainGo()), 0o644); err != nil {
		return "", err
	}
	fmt.Fprintf(log, "building CoreDNS %s into %s (a cold build takes a few minutes)\n", Version, bin)
	// -buildvcs=false: the cache may lie inside someone's git checkout,
	// and its state must not end up in (or break) the build.
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags", "-s -w", "-o", bin, ".")
	cmd.Dir = src
	// The scratch module records only that it requires CoreDNS; -mod=mod
	// lets the go command fill in go.sum (kept across rebuilds) for
	// whatever the linked plugins import. Static, so the image needs no
	// libc.
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "CGO_ENABLED=0", "GOWORK=off")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build in %s: %w", src, err)
	}
	return bin, os.WriteFile(stamp, []byte(want), 0o644)
}

func stampText() string {
	return Version + " " + strings.Join(directives(), ",") + "\n"
}

func goMod() string {
	return "module kovn.local/corednsbuild\n\ngo 1.24.0\n\nrequire " + module + " " + Version + "\n"
}

// mainGo is CoreDNS's own coredns.go with core/plugin (which links every
// plugin, cloud SDKs included) replaced by the lab's few plugins. Setting
// dnsserver.Directives is what makes the Corefile accept exactly those
// directives and run them in the right order; importing a plugin only
// registers it.
func mainGo() string {
	var pkgs []string
	for _, p := range plugins() {
		pkgs = append(pkgs, p.pkg)
	}
	sort.Strings(pkgs) // gofmt's order, so the file is gofmt-clean
	var b strings.Builder
	b.WriteString("// Code generated by kovn's lab/coredns package; DO NOT EDIT.\n\npackage main\n\nimport (\n")
	fmt.Fprintf(&b, "\t%q\n\t%q\n\n", module+"/core/dnsserver", module+"/coremain")
	for _, p := range pkgs {
		fmt.Fprintf(&b, "\t_ %q\n", p)
	}
	b.WriteString(")\n\nfunc main() {\n\tdnsserver.Directives = []string{\n")
	for _, d := range directives() {
		fmt.Fprintf(&b, "\t\t%q,\n", d)
	}
	b.WriteString("\t}\n\tcoremain.Run()\n}\n")
	return b.String()
}

func writeUnlessPrefix(path, content string) error {
	if old, err := os.ReadFile(path); err == nil && strings.HasPrefix(string(old), content) {
		return nil
	}
	return os.WriteFile(path, []byte(content), 0o644)
}
