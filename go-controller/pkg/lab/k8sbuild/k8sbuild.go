// Package k8sbuild builds the Kubernetes binaries the lab runs, from the Go
// module proxy, at the version that matches the client-go kovn is built
// with, and caches them outside the repository.
package k8sbuild

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
)

// Targets are the packages built, in one `go build` so they share work.
func Targets() []string {
	return []string{
		"k8s.io/kubernetes/cmd/kube-apiserver",
		"k8s.io/kubernetes/cmd/kube-controller-manager",
		"k8s.io/kubernetes/cmd/kube-scheduler",
		"k8s.io/kubernetes/cmd/kubelet",
		"k8s.io/kubernetes/cmd/kubectl",
		"k8s.io/kubernetes/test/images/agnhost",
	}
}

// VersionFromClientGo maps the client-go module version kovn is built
// with (v0.Y.Z) to the Kubernetes release (v1.Y.Z). That one pin in go.mod
// decides the version of the whole lab.
func VersionFromClientGo() (string, error) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "", fmt.Errorf("no build information in this binary")
	}
	for _, d := range bi.Deps {
		if d.Path == "k8s.io/client-go" {
			return KubernetesVersion(d.Version)
		}
	}
	return "", fmt.Errorf("this binary is not built with k8s.io/client-go")
}

var stagingVersion = regexp.MustCompile(`^v0\.(\d+)\.(\d+)$`)

// KubernetesVersion turns a staging module version into the release.
func KubernetesVersion(staging string) (string, error) {
	m := stagingVersion.FindStringSubmatch(staging)
	if m == nil {
		return "", fmt.Errorf("client-go version %q is not a release (v0.Y.Z)", staging)
	}
	return "v1." + m[1] + "." + m[2], nil
}

// BinDir is where the binaries of a version are cached.
func BinDir(cacheDir, version string) string {
	return filepath.Join(cacheDir, "k8s", version, "bin")
}

// Ensure builds the binaries unless the cache already holds them.
func Ensure(cacheDir, version string, log io.Writer) (string, error) {
	bin := BinDir(cacheDir, version)
	args := append([]string{"build", "-trimpath", "-ldflags", ldflags(version), "-o", bin + "/"}, Targets()...)
	return bin, buildOnce(cacheDir, version, ".complete", args, "binaries", log)
}

// E2ETestPackage is Kubernetes' end-to-end suite, built with `go test -c`.
const E2ETestPackage = "k8s.io/kubernetes/test/e2e"

// EnsureE2E builds e2e.test beside the other binaries unless the cache
// holds it. It is kept apart from Ensure because only conformance runs need
// it, and a cold build takes minutes and about 2 GB of memory.
func EnsureE2E(cacheDir, version string, log io.Writer) (string, error) {
	out := filepath.Join(BinDir(cacheDir, version), "e2e.test")
	args := []string{"test", "-c", "-trimpath", "-ldflags", ldflags(version), "-o", out, E2ETestPackage}
	return out, buildOnce(cacheDir, version, ".e2e-complete", args, "e2e.test", log)
}

// buildOnce runs `go goArgs…` in the version's scratch module unless the
// stamp file in the binary directory says an earlier run completed.
func buildOnce(cacheDir, version, stampName string, goArgs []string, what string, log io.Writer) error {
	bin := BinDir(cacheDir, version)
	stamp := filepath.Join(bin, stampName)
	if _, err := os.Stat(stamp); err == nil {
		return nil
	}
	src := filepath.Join(cacheDir, "k8s", version, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return err
	}
	if err := writeScratchModule(src, version); err != nil {
		return err
	}
	fmt.Fprintf(log, "building Kubernetes %s %s into %s (a cold build takes several minutes)\n", version, what, bin)
	cmd := exec.Command("go", goArgs...)
	cmd.Dir = src
	// The scratch module records only what it requires; -mod=mod lets the
	// go command add the checksums of everything the targets import.
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "CGO_ENABLED=0", "GOWORK=off")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s in %s: %w", goArgs[0], src, err)
	}
	return os.WriteFile(stamp, []byte(version+"\n"), 0o644)
}

// ldflags stamps the real version: binaries built from the module proxy
// otherwise say v0.0.0-master, and version-gated behaviour (and upstream
// e2e skips) would misfire.
func ldflags(version string) string {
	parts := strings.SplitN(strings.TrimPrefix(version, "v"), ".", 3)
	var fl []string
	for _, pkg := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		fl = append(fl,
			"-X "+pkg+".gitVersion="+version,
			"-X "+pkg+".gitMajor="+parts[0],
			"-X "+pkg+".gitMinor="+parts[1],
			"-X "+pkg+".gitTreeState=clean")
	}
	return "-s -w " + strings.Join(fl, " ")
}

// writeScratchModule writes a module that requires k8s.io/kubernetes and
// replaces every staging module with its published v0.Y.Z, the same list
// kubernetes' own go.mod replaces with ./staging paths.
func writeScratchModule(dir, version string) error {
	modFile, err := downloadGoMod("k8s.io/kubernetes", version, dir)
	if err != nil {
		return err
	}
	staging, err := stagingModules(modFile)
	if err != nil {
		return err
	}
	sv := "v0." + strings.TrimPrefix(version, "v1.")
	if !stagingVersion.MatchString(sv) {
		return fmt.Errorf("cannot derive the staging version from %s", version)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "module kovn.local/k8sbuild\n\ngo 1.24.0\n\nrequire k8s.io/kubernetes %s\n\n", version)
	for _, s := range staging {
		fmt.Fprintf(&b, "replace %s => %s %s\n", s, s, sv)
	}
	path := filepath.Join(dir, "go.mod")
	if old, err := os.ReadFile(path); err == nil && string(old) == b.String() {
		return nil // keep the go.sum the last build filled in
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// SourceDir is the module cache's copy of k8s.io/kubernetes at version,
// downloaded if need be: the files test images add beside their binaries.
func SourceDir(cacheDir, version string) (string, error) {
	src := filepath.Join(cacheDir, "k8s", version, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", err
	}
	return moduleField("k8s.io/kubernetes", version, src, "Dir")
}

// downloadGoMod fetches a module's go.mod through the module proxy.
func downloadGoMod(module, version, dir string) (string, error) {
	return moduleField(module, version, dir, "GoMod")
}

// moduleField downloads a module and returns one field of `go mod
// download -json`.
func moduleField(module, version, dir, field string) (string, error) {
	cmd := exec.Command("go", "mod", "download", "-json", module+"@"+version)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s@%s: %w", module, version, err)
	}
	re := regexp.MustCompile(`"` + field + `":\s*"([^"]+)"`)
	m := re.FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("go mod download %s@%s: no %s in %s", module, version, field, out)
	}
	return string(m[1]), nil
}

var stagingReplace = regexp.MustCompile(`^\s*(?:replace\s+)?(k8s\.io/[a-z0-9-]+)\s+=>\s+\./staging/`)

func stagingModules(goMod string) ([]string, error) {
	f, err := os.Open(goMod)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var mods []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := stagingReplace.FindStringSubmatch(sc.Text()); m != nil {
			mods = append(mods, m[1])
		}
	}
	if len(mods) == 0 {
		return nil, fmt.Errorf("%s: no staging replacements found", goMod)
	}
	return mods, sc.Err()
}
