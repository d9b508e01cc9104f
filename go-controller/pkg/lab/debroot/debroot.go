// Package debroot builds Debian 12 root filesystems with mmdebstrap, cached
// outside the checkout by recipe, and packs each once into a gzip layer that
// images built without a container engine use as their base.
package debroot

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/kovn-io/kovn/go-controller/pkg/lab/ociimage"
)

// suite is Debian 12, whose OVS 3.1 and OVN 23.03 the lab tests with.
const suite = "bookworm"

// Recipe is what a root filesystem holds.
type Recipe struct {
	Packages []string // installed on top of minbase, without Recommends
	// Mirrors are mmdebstrap's MIRROR arguments: URLs, sources.list lines
	// or files. None means deb.debian.org with bookworm-updates and
	// bookworm-security, the sources of a stock Debian 12.
	Mirrors []string
}

// Args are mmdebstrap's arguments but the target: all that decides what
// the root filesystem holds, hence also its cache key.
func (r Recipe) Args() []string {
	args := []string{
		// Real owners on disk, which the layer keeps (mmdebstrap would
		// otherwise pick unshare mode for a non-root user, with shifted ids).
		"--mode=root",
		// minbase is what Debian's own container images are made of;
		// mmdebstrap adds no Recommends, like --no-install-recommends.
		"--variant=minbase",
		"--include=" + strings.Join(r.Packages, ","),
		// What debian:12-slim leaves out; the rules stay in the image's
		// dpkg.cfg.d, so later installs in a container skip them too.
		"--dpkgopt=path-exclude=/usr/share/man/*",
		"--dpkgopt=path-exclude=/usr/share/info/*",
		"--dpkgopt=path-exclude=/usr/share/locale/*",
		"--dpkgopt=path-include=/usr/share/locale/locale.alias",
		"--dpkgopt=path-exclude=/usr/share/doc/*",
		"--dpkgopt=path-include=/usr/share/doc/*/copyright",
		// mmdebstrap copies the build machine's name and resolver into the
		// tree; the runtime mounts a pod's own over both.
		`--customize-hook=: > "$1/etc/hostname"; : > "$1/etc/resolv.conf"`,
		suite,
	}
	return append(args, r.Mirrors...)
}

// Dir holds one root filesystem and its layer under cacheDir/kind, named
// by a digest of the recipe so that a changed package list builds anew
// beside the old.
func Dir(cacheDir, kind string, r Recipe) string {
	sum := sha256.Sum256([]byte(strings.Join(r.Args(), "\n")))
	return filepath.Join(cacheDir, kind, fmt.Sprintf("%x", sum[:8]))
}

// Ensure returns the root filesystem of r and its packed layer, building
// either only when the cache under cacheDir/kind lacks it.
func Ensure(cacheDir, kind string, r Recipe, log io.Writer) (rootfs string, base ociimage.Layer, err error) {
	dir := Dir(cacheDir, kind, r)
	if rootfs, err = ensureRootFS(dir, r.Args(), log); err != nil {
		return "", base, err
	}
	base, err = ensureBaseLayer(dir, rootfs, log)
	return rootfs, base, err
}

// ensureRootFS builds dir/rootfs unless it exists. mmdebstrap fills a
// temporary directory that is renamed into place only when complete, so an
// interrupted build is never taken for a cached one.
func ensureRootFS(dir string, args []string, log io.Writer) (string, error) {
	rootfs := filepath.Join(dir, "rootfs")
	if _, err := os.Stat(rootfs); err == nil {
		return rootfs, nil
	}
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		return "", errors.New("mmdebstrap not found (kovn-lab deps installs it)")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(dir, ".rootfs.tmp-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp) // gone after the rename; the leftovers of a failure otherwise
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", err
	}
	fmt.Fprintf(log, "building the Debian %s root filesystem into %s (a cold build takes a minute or two)\n", suite, rootfs)
	start := time.Now()
	// In a private mount namespace, whatever mmdebstrap mounts in the tree
	// (/proc, /sys, /dev) goes away with it, even if it dies half-way,
	// and is never seen by the machine or a running lab.
	cmd := exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "mmdebstrap"}, append(args, tmp)...)...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("mmdebstrap: %w", err)
	}
	if err := os.Rename(tmp, rootfs); err != nil {
		if _, statErr := os.Stat(rootfs); statErr == nil {
			return rootfs, nil // a concurrent build finished first
		}
		return "", err
	}
	size, err := treeSize(rootfs)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(log, "root filesystem built in %s, %d MiB\n", time.Since(start).Round(time.Second), size>>20)
	return rootfs, nil
}

// ensureBaseLayer packs rootfs into dir/base.tar.gz once. The descriptor
// is written after the blob, so its presence means the blob is complete;
// a blob that went missing since is packed again.
func ensureBaseLayer(dir, rootfs string, log io.Writer) (ociimage.Layer, error) {
	blob, desc := filepath.Join(dir, "base.tar.gz"), filepath.Join(dir, "base.json")
	var l ociimage.Layer
	if b, err := os.ReadFile(desc); err == nil {
		if err := json.Unmarshal(b, &l); err != nil {
			return l, fmt.Errorf("%s: %w", desc, err)
		}
		l.Path = blob
		if st, err := os.Stat(blob); err == nil && st.Size() == l.Size {
			return l, nil
		}
	}
	start := time.Now()
	l, err := ociimage.WriteLayerFile(blob, ociimage.Image{RootFSDir: rootfs, RootFSOwners: true})
	if err != nil {
		return l, err
	}
	b, err := json.Marshal(l)
	if err != nil {
		return l, err
	}
	if err := os.WriteFile(desc+".tmp", b, 0o644); err != nil {
		return l, err
	}
	if err := os.Rename(desc+".tmp", desc); err != nil {
		return l, err
	}
	fmt.Fprintf(log, "packed the root filesystem layer (%d MiB) in %s\n", l.Size>>20, time.Since(start).Round(100*time.Millisecond))
	return l, nil
}

// treeSize is the apparent size of the regular files under dir.
func treeSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			n += info.Size()
		}
		return err
	})
	return n, err
}
