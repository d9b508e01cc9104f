// Package ociimage writes container images as OCI image-layout tarballs,
// the form `ctr images import` loads, so the lab needs neither a registry
// nor a build tool. An image has one layer made of files and, optionally,
// base layers packed once beforehand (WriteLayerFile) and shared by
// rebuilds. Output is reproducible: the same inputs give byte-identical
// tarballs and therefore the same digests.
package ociimage

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Image describes an image whose top layer is RootFSDir (if any) overlaid
// with Files, above the Base layers.
type Image struct {
	// Name is a domain-qualified reference with a tag, e.g.
	// "kovn.local/test-server:v1". Short names are refused because
	// containerd would store them under docker.io/....
	Name string
	// RootFSDir, if set, is a directory tree packed as the base of the
	// layer (e.g. a Debian rootfs from mmdebstrap): directories, regular
	// files, symlinks and hard links keep their modes, owners become
	// root:root unless RootFSOwners, devices, FIFOs and sockets are skipped.
	RootFSDir string
	// RootFSOwners keeps the numeric owners of RootFSDir's entries, right
	// for a tree built as root; otherwise every owner is root.
	RootFSOwners bool
	Files        []File // added on top of RootFSDir, replacing same paths
	// Base layers lie below the top layer, lowest first. They are copied
	// into the tarball as they are, so a large base costs no compression
	// time per image, and a runtime that already has it reuses it.
	Base       []Layer
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
func WriteFile(path string, img Image) error {
	// Stage the layer next to the output: os.TempDir may be a small tmpfs.
	return writeAtomic(path, func(w io.Writer) error { return write(w, img, filepath.Dir(path)) })
}

// writeAtomic writes path through a temporary file in its directory,
// renamed into place only once fill succeeded and the data is on disk.
func writeAtomic(path string, fill func(io.Writer) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
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
	if err = fill(bw); err != nil {
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
	if err := checkBase(img.Base); err != nil {
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
	if err := checkBase(img.Base); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(tmpDir, ".ociimage-layer-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	top, err := compressLayer(tmp, entries)
	if err != nil {
		return err
	}

	cfgJSON, err := configJSON(img, top.DiffID)
	if err != nil {
		return err
	}
	cfg := blob(mediaTypeConfig, cfgJSON)
	var layers []descriptor
	for _, l := range append(append([]Layer(nil), img.Base...), top) {
		layers = append(layers, descriptor{MediaType: mediaTypeLayer, Digest: l.Digest, Size: l.Size})
	}
	manJSON, err := json.Marshal(manifest{SchemaVersion: 2, MediaType: mediaTypeManifest, Config: cfg, Layers: layers})
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
		{blobPath(top.Digest), top.Size, tmp},
	}
	have := map[string]bool{blobPath(top.Digest): true}
	for _, l := range img.Base {
		if have[blobPath(l.Digest)] {
			continue // the same blob twice is stored once
		}
		have[blobPath(l.Digest)] = true
		f, err := os.Open(l.Path)
		if err != nil {
			return err
		}
		defer f.Close()
		blobs = append(blobs, member{blobPath(l.Digest), l.Size, f})
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
