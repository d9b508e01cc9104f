// Package kovnimage builds the image of dist/images/Containerfile without
// a container engine: a Debian 12 root filesystem from mmdebstrap, cached
// outside the checkout, below a layer with kovn's binaries, written as an
// OCI tarball for `ctr images import`. Only the small top layer is packed
// again when the binaries change.
package kovnimage

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/kovn-io/kovn/go-controller/pkg/lab/debroot"
	"github.com/kovn-io/kovn/go-controller/pkg/lab/ociimage"
)

// Repository is the image's name without a tag. The tag is cut from the
// image ID, so a rebuilt image is never mistaken by kubelet for one it
// already has under the same reference.
const Repository = "kovn.local/kovn"

// Packages are the Debian packages the Containerfile's apt-get installs,
// in its order; a test holds the two lists equal.
func Packages() []string {
	return []string{"ovn-host", "ovn-central", "openvswitch-switch", "iproute2", "iptables", "ca-certificates"}
}

func recipe(mirrors []string) debroot.Recipe {
	return debroot.Recipe{Packages: Packages(), Mirrors: mirrors}
}

// copied is one COPY of the Containerfile: a file of the checkout and its
// path in the image; a test holds them equal too.
type copied struct{ src, dst string }

func copies() []copied {
	return []copied{
		{"_output/bin/kovn-controller", "/usr/bin/kovn-controller"},
		{"_output/bin/kovn-node", "/usr/bin/kovn-node"},
		{"_output/bin/kovnctl", "/usr/bin/kovnctl"},
		{"_output/bin/kovn-cni", "/usr/libexec/kovn/kovn-cni"},
		{"dist/images/kovn-ovn-run", "/usr/bin/kovn-ovn-run"},
	}
}

// Config says where the inputs are and where outputs are kept.
type Config struct {
	CheckoutDir string // the repository, after `make build`
	CacheDir    string // $KOVN_CACHE; kept across builds and labs
	// Mirrors are mmdebstrap's MIRROR arguments: URLs, sources.list lines
	// or files. None means deb.debian.org with bookworm-updates and
	// bookworm-security, the sources of a stock Debian 12.
	Mirrors []string
	Log     io.Writer
}

// Result is a built image.
type Result struct {
	Ref     string // Repository:tag
	Tarball string // OCI image layout, for `ctr images import`
	RootFS  string // the cached root filesystem below kovn's files
}

// Tarball is where Build writes the image: beside the lab's other images,
// replaced by each build so old tags do not pile up.
func Tarball(cacheDir string) string {
	return filepath.Join(cacheDir, "images", "kovn.tar")
}

// Build returns the image for the checkout's current binaries, building
// the root filesystem and its layer only when no cached one matches the
// package list, and the tarball only when its content changed.
func Build(cfg Config) (Result, error) {
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	var img ociimage.Image
	for _, c := range copies() {
		src := filepath.Join(cfg.CheckoutDir, c.src)
		if _, err := os.Stat(src); err != nil {
			return Result{}, fmt.Errorf("%w (run make build first)", err)
		}
		img.Files = append(img.Files, ociimage.File{Path: c.dst, Mode: 0o755, SourcePath: src})
	}
	rootfs, base, err := debroot.Ensure(cfg.CacheDir, "kovn-image", recipe(cfg.Mirrors), cfg.Log)
	if err != nil {
		return Result{}, err
	}
	// Debian's images run bash when no command is given; so does this one.
	img.Base, img.Cmd = []ociimage.Layer{base}, []string{"bash"}
	id, err := ociimage.ID(img)
	if err != nil {
		return Result{}, err
	}
	img.Name = Repository + ":" + id[len("sha256:"):][:12]
	res := Result{Ref: img.Name, Tarball: Tarball(cfg.CacheDir), RootFS: rootfs}
	stamp := res.Tarball + ".ref"
	if b, err := os.ReadFile(stamp); err == nil && string(b) == res.Ref {
		if _, err := os.Stat(res.Tarball); err == nil {
			fmt.Fprintf(cfg.Log, "%s is up to date in %s\n", res.Ref, res.Tarball)
			return res, nil
		}
	}
	if err := os.MkdirAll(filepath.Dir(res.Tarball), 0o755); err != nil {
		return Result{}, err
	}
	start := time.Now()
	if err := ociimage.WriteFile(res.Tarball, img); err != nil {
		return Result{}, err
	}
	if err := os.WriteFile(stamp, []byte(res.Ref), 0o644); err != nil {
		return Result{}, err
	}
	st, err := os.Stat(res.Tarball)
	if err != nil {
		return Result{}, err
	}
	fmt.Fprintf(cfg.Log, "packed %s into %s (%d MiB) in %s\n", res.Ref, res.Tarball, st.Size()>>20, time.Since(start).Round(100*time.Millisecond))
	return res, nil
}
