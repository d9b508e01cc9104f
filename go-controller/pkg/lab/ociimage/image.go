// Package ociimage writes single-layer container images as OCI
// image-layout tarballs, the form `ctr images import` loads, so the lab
// needs neither a registry nor a build tool. Output is reproducible: the
// same inputs give byte-identical tarballs and therefore the same digests.
package ociimage

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Image describes an image with one layer: RootFSDir (if any) overlaid
// with Files.
type Image struct {
	// Name is a domain-qualified reference with a tag, e.g.
	// "kovn.local/test-server:v1". Short names are refused because
	// containerd would store them under docker.io/....
	Name string
	// RootFSDir, if set, is a directory tree packed as the base of the
	// layer (e.g. a Debian rootfs from mmdebstrap): directories, regular
	// files, symlinks and hard links keep their modes, owners become
	// root:root, devices, FIFOs and sockets are skipped.
	RootFSDir  string
	Files      []File // added on top of RootFSDir, replacing same paths
	Entrypoint []string
	Cmd        []string
	// Env gets the conventional PATH prepended unless it sets one, as
	// images built by Docker do, so bare command names resolve.
	Env          []string
	WorkingDir   string
	Architecture string // default runtime.GOARCH
}

// File is one layer entry. Set at most one of Dir, Symlink and
// Content/SourcePath; none makes an empty file. Parent directories are
// created with mode 0755 unless listed or present in RootFSDir.
type File struct {
	Path string // absolute path inside the image
	// Mode holds permission and setuid/setgid/sticky bits (os.ModeSetuid
	// or 0o4000 style); zero means 0644 for files, 0755 for directories and
	// the source's mode for SourcePath.
	Mode       os.FileMode
	Content    []byte
	SourcePath string // read the content from this file on disk
	Dir        bool
	Symlink    string // target of a symbolic link
}

// Write writes img to w as an OCI image-layout tar. The compressed layer is
// staged in a temporary file because its digest and size must be known
// before it can be written into the outer tar.
func Write(w io.Writer, img Image) error {
	return write(w, img, "")
}

// WriteFile writes img to path atomically: readers see the old file or the
// complete new one, never a partial tarball.
func WriteFile(path string, img Image) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	// Stage the layer next to the output: os.TempDir may be a small tmpfs.
	if err = write(bw, img, dir); err != nil {
		return err
	}
	if err = bw.Flush(); err != nil {
		return err
	}
	if err = f.Chmod(0o644); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// ID returns the image ID Write would produce for img, i.e. the digest of
// its config (what crictl shows as IMAGE ID), without compressing the
// layer. It changes with the content and config but not with Name, so a
// caller can cache tarballs by it.
func ID(img Image) (string, error) {
	entries, err := collect(img)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	if err := writeLayer(h, entries); err != nil {
		return "", err
	}
	cfg, err := configJSON(img, digestOf(h))
	if err != nil {
		return "", err
	}
	return blob(mediaTypeConfig, cfg).Digest, nil
}

func write(w io.Writer, img Image, tmpDir string) error {
	tag, err := checkName(img.Name)
	if err != nil {
		return err
	}
	entries, err := collect(img)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(tmpDir, ".ociimage-layer-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()

	// One pass yields the compressed blob with its digest and the
	// digest of the uncompressed tar (the diff_id).
	blobHash, diffHash := sha256.New(), sha256.New()
	counter := &countingWriter{w: io.MultiWriter(tmp, blobHash)}
	gz := gzip.NewWriter(counter) // zero header mtime and name: reproducible
	if err := writeLayer(io.MultiWriter(gz, diffHash), entries); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return err
	}
	layer := descriptor{MediaType: mediaTypeLayer, Digest: digestOf(blobHash), Size: counter.n}

	cfgJSON, err := configJSON(img, digestOf(diffHash))
	if err != nil {
		return err
	}
	cfg := blob(mediaTypeConfig, cfgJSON)
	manJSON, err := json.Marshal(manifest{SchemaVersion: 2, MediaType: mediaTypeManifest, Config: cfg, Layers: []descriptor{layer}})
	if err != nil {
		return err
	}
	man := blob(mediaTypeManifest, manJSON)
	man.Annotations = map[string]string{
		"io.containerd.image.name":          img.Name,
		"org.opencontainers.image.ref.name": tag,
	}
	man.Platform = &platform{Architecture: arch(img), OS: "linux"}
	idxJSON, err := json.Marshal(index{SchemaVersion: 2, MediaType: mediaTypeIndex, Manifests: []descriptor{man}})
	if err != nil {
		return err
	}

	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return err
	}
	type member struct {
		name string
		size int64
		r    io.Reader
	}
	blobs := []member{
		{blobPath(cfg.Digest), cfg.Size, bytes.NewReader(cfgJSON)},
		{blobPath(man.Digest), man.Size, bytes.NewReader(manJSON)},
		{blobPath(layer.Digest), layer.Size, tmp},
	}
	sort.Slice(blobs, func(i, j int) bool { return blobs[i].name < blobs[j].name })
	tw := tar.NewWriter(w)
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Name: dir, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch()}); err != nil {
			return err
		}
	}
	members := append(blobs,
		member{"index.json", int64(len(idxJSON)), bytes.NewReader(idxJSON)},
		member{"oci-layout", int64(len(layoutJSON)), strings.NewReader(layoutJSON)})
	for _, m := range members {
		if err := tw.WriteHeader(&tar.Header{Name: m.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: m.size, ModTime: epoch()}); err != nil {
			return err
		}
		if _, err := io.CopyN(tw, m.r, m.size); err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
	}
	return tw.Close()
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
