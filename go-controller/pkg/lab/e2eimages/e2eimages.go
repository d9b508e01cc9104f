// Package e2eimages builds the container images Kubernetes' upstream e2e
// tests run, under the exact references the e2e.test binary asks for, so a
// lab without a registry can run them: kubelet finds each tag already
// present and never pulls.
//
// The references come from `e2e.test --list-images` of the binary the lab
// built, not from a table here, so a new Kubernetes version that bumps a
// tag cannot leave the lab with images no test asks for.
package e2eimages

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/kovn-io/kovn/go-controller/pkg/lab/debroot"
	"github.com/kovn-io/kovn/go-controller/pkg/lab/ociimage"
)

// Packages are the Debian packages below every image but pause: what
// upstream's agnhost Dockerfile adds to its base (dig, curl, nc, ip and ss,
// iperf, bash; getent comes with libc-bin), which the specs exec in
// agnhost and jessie-dnsutils pods, and nginx, whose image the
// EndpointSlice specs run.
func Packages() []string {
	return []string{"bash", "curl", "netcat-openbsd", "bind9-dnsutils", "iproute2", "iperf", "iputils-ping", "nginx-light", "procps"}
}

// Kinds are the upstream images built, by the name e2e.test gives them.
// The agnhost binary makes agnhost and jessie-dnsutils (a Debian with
// dnsutils in which the DNS specs run dig; agnhost's image is one too,
// here); nginx is Debian's; pause is the lab's own.
func Kinds() []string {
	return []string{"agnhost", "jessie-dnsutils", "nginx", "pause"}
}

// Ref is one reference e2e.test asks for, of one of Kinds.
type Ref struct {
	Kind, Ref string
}

// Tag is the reference's tag.
func (r Ref) Tag() string { return r.Ref[strings.LastIndex(r.Ref, ":")+1:] }

// registry is where the images the lab stands in for live. e2e.test also
// names images elsewhere on purpose (a private registry whose pull must
// fail), which are left alone.
const registry = "registry.k8s.io/"

// Refs picks, from the output of `e2e.test --list-images`, every
// reference in registry of one of Kinds: the repository's last path
// element is the kind. A kind may come with several tags (nginx and its
// "new" tag); each gets an image.
func Refs(listImages string) ([]Ref, error) {
	want := map[string]bool{}
	for _, k := range Kinds() {
		want[k] = true
	}
	var refs []Ref
	found := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(listImages))
	for sc.Scan() {
		ref := strings.TrimSpace(sc.Text())
		colon := strings.LastIndex(ref, ":")
		if !strings.HasPrefix(ref, registry) || colon < 0 || strings.Contains(ref[colon:], "/") {
			continue
		}
		repo := ref[:colon]
		kind := repo[strings.LastIndex(repo, "/")+1:]
		if want[kind] {
			refs = append(refs, Ref{Kind: kind, Ref: ref})
			found[kind] = true
		}
	}
	var missing []string
	for _, k := range Kinds() {
		if !found[k] {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("e2e.test --list-images names no %s image in %s", strings.Join(missing, ", "), registry)
	}
	sort.Slice(refs, func(i, j int) bool { return refs[i].Ref < refs[j].Ref })
	return refs, nil
}

// ListImages runs e2e.test --list-images.
func ListImages(e2eTest string) (string, error) {
	out, err := exec.Command(e2eTest, "--list-images").Output()
	if err != nil {
		return "", fmt.Errorf("%s --list-images: %w", e2eTest, err)
	}
	return string(out), nil
}

// Config says where the inputs are and where outputs are kept.
type Config struct {
	CacheDir string
	Refs     []Ref
	Agnhost  string // the agnhost binary, built at the lab's Kubernetes version
	// AgnhostSource is test/images/agnhost of the same Kubernetes source,
	// for the files its Dockerfile adds (porter's TLS key and certificate).
	AgnhostSource string
	CoreDNS       string   // a coredns binary with the hosts plugin
	Pause         string   // a static pause binary
	Mirrors       []string // as debroot.Recipe's
	Log           io.Writer
}

// Image is one built image.
type Image struct {
	Ref
	Role    string // its name among the lab's images
	Tarball string
}

// Role names the image of a reference among the lab's images.
func Role(r Ref) string { return "e2e-" + r.Kind + "-" + r.Tag() }

// Tarball is where the image of a reference is cached.
func Tarball(cacheDir string, r Ref) string {
	return filepath.Join(cacheDir, "images", Role(r)+".tar")
}

// Build writes every image as an OCI tarball, packing
// one again only when its reference or content changed. All but pause
// share one Debian base layer, so containerd stores it once.
func Build(cfg Config) ([]Image, error) {
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	for _, bin := range []string{cfg.Agnhost, cfg.Pause, cfg.CoreDNS, filepath.Join(cfg.AgnhostSource, "porter", "localhost.key")} {
		if _, err := os.Stat(bin); err != nil {
			return nil, err
		}
	}
	_, base, err := debroot.Ensure(cfg.CacheDir, "e2e-images", debroot.Recipe{Packages: Packages(), Mirrors: cfg.Mirrors}, cfg.Log)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(cfg.CacheDir, "images"), 0o755); err != nil {
		return nil, err
	}
	var out []Image
	for _, r := range cfg.Refs {
		ref := r.Ref
		img := spec(r.Kind, cfg, base)
		img.Name = ref
		id, err := ociimage.ID(img)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ref, err)
		}
		path := Tarball(cfg.CacheDir, r)
		built := Image{Ref: r, Role: Role(r), Tarball: path}
		// The reference is fixed by upstream, so the stamp is the image ID:
		// a new agnhost binary under the same tag is packed again.
		stamp := path + ".id"
		if b, err := os.ReadFile(stamp); err == nil && string(b) == ref+" "+id {
			if _, err := os.Stat(path); err == nil {
				out = append(out, built)
				continue
			}
		}
		if err := ociimage.WriteFile(path, img); err != nil {
			return nil, fmt.Errorf("%s: %w", ref, err)
		}
		if err := os.WriteFile(stamp, []byte(ref+" "+id), 0o644); err != nil {
			return nil, err
		}
		fmt.Fprintf(cfg.Log, "packed %s into %s\n", ref, path)
		out = append(out, built)
	}
	return out, nil
}

// spec is the image of a kind, without its name. Entrypoints and commands
// are upstream's, since specs that set only args rely on them.
func spec(kind string, cfg Config, base ociimage.Layer) ociimage.Image {
	// What upstream's agnhost Dockerfile adds: the binary, also as
	// agnhost-2 (entrypoint specs), netexec's upload directory, porter's
	// TLS pair (the proxy specs' HTTPS ports) and a CoreDNS (a DNS spec runs
	// it as a pod's name server). Its user and group for sig-node's
	// supplemental-group spec are not: no sig-network spec uses them.
	agnhost := []ociimage.File{
		{Path: "/agnhost", Mode: 0o755, SourcePath: cfg.Agnhost},
		{Path: "/agnhost-2", Symlink: "agnhost"},
		{Path: "/uploads", Dir: true},
		{Path: "/localhost.crt", SourcePath: filepath.Join(cfg.AgnhostSource, "porter", "localhost.crt")},
		{Path: "/localhost.key", SourcePath: filepath.Join(cfg.AgnhostSource, "porter", "localhost.key")},
		{Path: "/coredns", Mode: 0o755, SourcePath: cfg.CoreDNS},
	}
	switch kind {
	case "agnhost":
		return ociimage.Image{Base: []ociimage.Layer{base}, Files: agnhost, Entrypoint: []string{"/agnhost"}, Cmd: []string{"pause"}}
	case "jessie-dnsutils":
		return ociimage.Image{Base: []ociimage.Layer{base}, Files: agnhost, Cmd: []string{"bash"}}
	case "nginx":
		// Debian's nginx logs to files and serves /var/www/html on port
		// 80, as the upstream image does; only the foreground differs.
		return ociimage.Image{Base: []ociimage.Layer{base}, Files: []ociimage.File{{Path: "/usr/share/nginx/html", Dir: true}},
			Cmd: []string{"nginx", "-g", "daemon off;"}}
	default: // pause
		return ociimage.Image{Files: []ociimage.File{{Path: "/pause", Mode: 0o755, SourcePath: cfg.Pause}}, Entrypoint: []string{"/pause"}}
	}
}
