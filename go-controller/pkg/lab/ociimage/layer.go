package ociimage

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// entry is one member of the layer tar.
type entry struct {
	hdr    tar.Header // Name has no trailing slash, even for directories
	data   []byte     // inline content of a regular file
	source string     // or the file on disk to stream it from
	inode  inodeKey   // set for multiply-linked files of RootFSDir
}

type inodeKey struct{ dev, ino uint64 }

// epoch is every entry's mtime: fixed so identical inputs give identical
// bytes, whatever the files' timestamps on disk.
func epoch() time.Time { return time.Unix(0, 0) }

func newEntry(name string, typ byte, mode int64) *entry {
	return &entry{hdr: tar.Header{Name: name, Typeflag: typ, Mode: mode, ModTime: epoch()}}
}

// tarMode keeps the permission and setuid/setgid/sticky bits, which
// fs.FileMode stores outside the low 12 bits that tar expects. Unix-style
// special bits (0o4755) are accepted too since FileMode leaves them unused.
func tarMode(m fs.FileMode) int64 {
	mode := int64(m & 0o7777)
	if m&fs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	return mode
}

// collect returns the layer's entries in tar order: the root filesystem
// overlaid with Files, parents synthesised, sorted by name. Byte order
// puts every directory before its contents since a prefix sorts first.
func collect(img Image) ([]*entry, error) {
	m := map[string]*entry{}
	if img.RootFSDir != "" {
		if err := walkRootFS(img.RootFSDir, img.RootFSOwners, m); err != nil {
			return nil, fmt.Errorf("rootfs %s: %w", img.RootFSDir, err)
		}
	}
	explicit := map[string]bool{}
	for _, f := range img.Files {
		e, err := fileEntry(f)
		if err != nil {
			return nil, fmt.Errorf("file %q: %w", f.Path, err)
		}
		name := e.hdr.Name
		if explicit[name] {
			return nil, fmt.Errorf("file %q: listed twice", f.Path)
		}
		explicit[name] = true
		m[name] = e
		for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
			if m[dir] == nil {
				m[dir] = newEntry(dir, tar.TypeDir, 0o755)
			}
		}
	}

	entries := make([]*entry, 0, len(m))
	for _, e := range m {
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].hdr.Name < entries[j].hdr.Name })
	firstLink := map[inodeKey]string{}
	for _, e := range entries {
		if dir := path.Dir(e.hdr.Name); dir != "." && (m[dir] == nil || m[dir].hdr.Typeflag != tar.TypeDir) {
			return nil, fmt.Errorf("%s: parent %s is not a directory", e.hdr.Name, dir)
		}
		if e.inode == (inodeKey{}) {
			continue
		}
		// Later names of a hard-linked file point at the first one, so the
		// layer stores the content once and keeps the link, in an order
		// that depends only on the names.
		if target, ok := firstLink[e.inode]; ok {
			e.hdr.Typeflag, e.hdr.Linkname, e.hdr.Size, e.source = tar.TypeLink, target, 0, ""
		} else {
			firstLink[e.inode] = e.hdr.Name
		}
	}
	return entries, nil
}

// cleanPath maps an absolute or relative image path to a tar name.
func cleanPath(p string) (string, error) {
	for _, c := range strings.Split(p, "/") {
		if c == ".." {
			return "", errors.New("path must not contain ..")
		}
	}
	name := strings.TrimPrefix(path.Clean("/"+p), "/")
	if name == "" {
		return "", errors.New("path names the root directory")
	}
	return name, nil
}

func fileEntry(f File) (*entry, error) {
	name, err := cleanPath(f.Path)
	if err != nil {
		return nil, err
	}
	kinds := 0
	for _, set := range []bool{f.Dir, f.Symlink != "", f.Content != nil || f.SourcePath != ""} {
		if set {
			kinds++
		}
	}
	if kinds > 1 || (f.Content != nil && f.SourcePath != "") {
		return nil, errors.New("set only one of Dir, Symlink, Content and SourcePath")
	}
	mode := tarMode(f.Mode)
	switch {
	case f.Dir:
		if mode == 0 {
			mode = 0o755
		}
		return newEntry(name, tar.TypeDir, mode), nil
	case f.Symlink != "":
		e := newEntry(name, tar.TypeSymlink, 0o777)
		e.hdr.Linkname = f.Symlink
		return e, nil
	case f.SourcePath != "":
		st, err := os.Stat(f.SourcePath)
		if err != nil {
			return nil, err
		}
		if !st.Mode().IsRegular() {
			return nil, fmt.Errorf("%s is not a regular file", f.SourcePath)
		}
		if mode == 0 {
			mode = tarMode(st.Mode())
		}
		e := newEntry(name, tar.TypeReg, mode)
		e.hdr.Size, e.source = st.Size(), f.SourcePath
		return e, nil
	}
	if mode == 0 {
		mode = 0o644
	}
	e := newEntry(name, tar.TypeReg, mode)
	e.hdr.Size, e.data = int64(len(f.Content)), f.Content
	return e, nil
}

// walkRootFS adds every directory, regular file and symlink under root
// with its mode, and with its numeric owner only when keepOwners says the
// ids are the tree's own: one built unprivileged (e.g. mmdebstrap
// --mode=unshare) has shifted ids, so owners are root by default.
func walkRootFS(root string, keepOwners bool, m map[string]*entry) error {
	root, err := filepath.EvalSymlinks(root)
	if err != nil {
		return err
	}
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		st, _ := info.Sys().(*syscall.Stat_t)
		var e *entry
		switch info.Mode().Type() {
		case 0:
			e = newEntry(name, tar.TypeReg, tarMode(info.Mode()))
			e.hdr.Size, e.source = info.Size(), p
			if st != nil && st.Nlink > 1 {
				e.inode = inodeKey{uint64(st.Dev), uint64(st.Ino)}
			}
		case fs.ModeDir:
			e = newEntry(name, tar.TypeDir, tarMode(info.Mode()))
		case fs.ModeSymlink:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			e = newEntry(name, tar.TypeSymlink, 0o777)
			e.hdr.Linkname = target
		default:
			return nil // devices, FIFOs and sockets: the runtime provides /dev
		}
		if keepOwners && st != nil {
			e.hdr.Uid, e.hdr.Gid = int(st.Uid), int(st.Gid)
		}
		m[name] = e
		return nil
	})
}

// writeLayer writes the entries as an uncompressed tar stream.
func writeLayer(w io.Writer, entries []*entry) error {
	tw := tar.NewWriter(w)
	for _, e := range entries {
		hdr := e.hdr
		if hdr.Typeflag == tar.TypeDir {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(&hdr); err != nil {
			return fmt.Errorf("%s: %w", e.hdr.Name, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		var err error
		if e.source != "" {
			err = copyFile(tw, e.source, hdr.Size)
		} else {
			_, err = tw.Write(e.data)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", e.hdr.Name, err)
		}
	}
	return tw.Close()
}

// copyFile streams exactly size bytes, failing if the file changed size
// since it was listed, which would otherwise corrupt the tar silently.
func copyFile(w io.Writer, name string, size int64) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.CopyN(w, f, size); err != nil {
		if err == io.EOF {
			err = fmt.Errorf("%s shrank while packing", name)
		}
		return err
	}
	if n, _ := f.Read(make([]byte, 1)); n > 0 {
		return fmt.Errorf("%s grew while packing", name)
	}
	return nil
}
