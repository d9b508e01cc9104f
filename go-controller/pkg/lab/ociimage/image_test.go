package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// member is one tar entry as read back.
type member struct {
	hdr  *tar.Header
	data []byte
}

// readTar returns the entries of a tar stream in order, checking that
// each is root's and dated at the epoch.
func readTar(t *testing.T, r io.Reader) []member {
	t.Helper()
	out := readTarAnyOwner(t, r)
	for _, m := range out {
		if m.hdr.Uid != 0 || m.hdr.Gid != 0 {
			t.Errorf("%s: uid %d gid %d, want root", m.hdr.Name, m.hdr.Uid, m.hdr.Gid)
		}
	}
	return out
}

// readTarAnyOwner returns the entries of a tar stream in order, checking
// only that each is dated at the epoch.
func readTarAnyOwner(t *testing.T, r io.Reader) []member {
	t.Helper()
	var out []member
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if !hdr.ModTime.Equal(time.Unix(0, 0)) {
			t.Errorf("%s: mtime %v, want the epoch", hdr.Name, hdr.ModTime)
		}
		out = append(out, member{hdr, data})
	}
}

func names(ms []member) []string {
	var n []string
	for _, m := range ms {
		n = append(n, m.hdr.Name)
	}
	return n
}

func sha(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }

// open follows index → manifest → config → layers like an importer,
// checking every digest and size, and returns the config and each layer's
// uncompressed entries, lowest layer first.
func open(t *testing.T, tarball []byte, name string) (config, [][]member) {
	t.Helper()
	outer := readTar(t, bytes.NewReader(tarball))
	files := map[string][]byte{}
	for _, m := range outer {
		if _, dup := files[m.hdr.Name]; dup {
			t.Errorf("outer tar has %s twice", m.hdr.Name)
		}
		files[m.hdr.Name] = m.data
	}
	if !sort.StringsAreSorted(names(outer)) {
		t.Errorf("outer tar not sorted: %q", names(outer))
	}
	if got := string(files["oci-layout"]); got != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout = %q", got)
	}
	load := func(d descriptor, mediaType string, v any) []byte {
		t.Helper()
		b, ok := files["blobs/sha256/"+strings.TrimPrefix(d.Digest, "sha256:")]
		if !ok || d.MediaType != mediaType || sha(b) != d.Digest || int64(len(b)) != d.Size {
			t.Fatalf("blob %+v (want %s): present %v, digest %s, size %d", d, mediaType, ok, sha(b), len(b))
		}
		if v != nil {
			if err := json.Unmarshal(b, v); err != nil {
				t.Fatal(err)
			}
		}
		return b
	}
	var idx index
	if err := json.Unmarshal(files["index.json"], &idx); err != nil {
		t.Fatal(err)
	}
	if idx.SchemaVersion != 2 || len(idx.Manifests) != 1 {
		t.Fatalf("index = %+v", idx)
	}
	md := idx.Manifests[0]
	tag := name[strings.LastIndex(name, ":")+1:]
	if md.Annotations["io.containerd.image.name"] != name || md.Annotations["org.opencontainers.image.ref.name"] != tag {
		t.Errorf("annotations = %v", md.Annotations)
	}
	var man manifest
	load(md, mediaTypeManifest, &man)
	if man.SchemaVersion != 2 || man.MediaType != mediaTypeManifest || len(man.Layers) == 0 {
		t.Fatalf("manifest = %+v", man)
	}
	var cfg config
	load(man.Config, mediaTypeConfig, &cfg)
	if cfg.RootFS.Type != "layers" || len(cfg.RootFS.DiffIDs) != len(man.Layers) {
		t.Fatalf("rootfs = %+v for %d layers", cfg.RootFS, len(man.Layers))
	}
	var layers [][]member
	for i, d := range man.Layers {
		gz, err := gzip.NewReader(bytes.NewReader(load(d, mediaTypeLayer, nil)))
		if err != nil {
			t.Fatal(err)
		}
		layer, err := io.ReadAll(gz)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.RootFS.DiffIDs[i] != sha(layer) {
			t.Errorf("diff_id %d = %s, want %s", i, cfg.RootFS.DiffIDs[i], sha(layer))
		}
		layers = append(layers, readTar(t, bytes.NewReader(layer)))
	}
	if md.Platform == nil || md.Platform.OS != "linux" || md.Platform.Architecture != cfg.Architecture ||
		cfg.OS != "linux" || cfg.Created != "1970-01-01T00:00:00Z" {
		t.Errorf("platform %+v, config os %q arch %q created %q", md.Platform, cfg.OS, cfg.Architecture, cfg.Created)
	}
	return cfg, layers
}

// onlyLayer is the entries of an image that must have exactly one layer.
func onlyLayer(t *testing.T, layers [][]member) []member {
	t.Helper()
	if len(layers) != 1 {
		t.Fatalf("%d layers, want 1", len(layers))
	}
	return layers[0]
}

func testImage(t *testing.T) Image {
	src := filepath.Join(t.TempDir(), "bin")
	if err := os.WriteFile(src, []byte("#!/bin/sh\n"), 0o750); err != nil {
		t.Fatal(err)
	}
	return Image{
		Name: "kovn.local/test:v1",
		Files: []File{
			{Path: "/usr/local/bin/tool", SourcePath: src},
			{Path: "/etc/conf", Content: []byte("a=b\n")},
			{Path: "/data", Dir: true, Mode: 0o700},
			{Path: "/bin", Symlink: "usr/local/bin"},
			{Path: "/suid", Mode: 0o755 | os.ModeSetuid, Content: []byte("x")},
			{Path: "/sgid", Mode: 0o2755, Content: []byte("y")},
		},
		Entrypoint: []string{"/usr/local/bin/tool"},
		Cmd:        []string{"--flag"},
		Env:        []string{"A=1"},
		WorkingDir: "/data",
	}
}

func TestWrite(t *testing.T) {
	img := testImage(t)
	var buf bytes.Buffer
	if err := Write(&buf, img); err != nil {
		t.Fatal(err)
	}
	cfg, layers := open(t, buf.Bytes(), img.Name)
	layer := onlyLayer(t, layers)

	if c := cfg.Config; !reflect.DeepEqual(c.Entrypoint, img.Entrypoint) || !reflect.DeepEqual(c.Cmd, img.Cmd) ||
		!reflect.DeepEqual(c.Env, []string{defaultPath, "A=1"}) || c.WorkingDir != "/data" {
		t.Errorf("config = %+v", c)
	}
	type want struct {
		name     string
		typ      byte
		mode     int64
		content  string
		linkname string
	}
	var got []want
	for _, m := range layer {
		got = append(got, want{m.hdr.Name, m.hdr.Typeflag, m.hdr.Mode, string(m.data), m.hdr.Linkname})
	}
	wantEntries := []want{
		{"bin", tar.TypeSymlink, 0o777, "", "usr/local/bin"},
		{"data/", tar.TypeDir, 0o700, "", ""},
		{"etc/", tar.TypeDir, 0o755, "", ""},
		{"etc/conf", tar.TypeReg, 0o644, "a=b\n", ""},
		{"sgid", tar.TypeReg, 0o2755, "y", ""},
		{"suid", tar.TypeReg, 0o4755, "x", ""},
		{"usr/", tar.TypeDir, 0o755, "", ""},
		{"usr/local/", tar.TypeDir, 0o755, "", ""},
		{"usr/local/bin/", tar.TypeDir, 0o755, "", ""},
		{"usr/local/bin/tool", tar.TypeReg, 0o750, "#!/bin/sh\n", ""},
	}
	if !reflect.DeepEqual(got, wantEntries) {
		t.Errorf("layer entries:\n got %v\nwant %v", got, wantEntries)
	}
	checkID(t, img, cfg)
}

// checkID holds ID to the digest of the config Write wrote, and returns it.
func checkID(t *testing.T, img Image, cfg config) string {
	t.Helper()
	id, err := ID(img)
	if err != nil {
		t.Fatal(err)
	}
	if cj, _ := json.Marshal(cfg); sha(cj) != id {
		t.Errorf("ID = %s, config digest %s", id, sha(cj))
	}
	return id
}

func TestReproducible(t *testing.T) {
	img := testImage(t)
	dir := t.TempDir()
	var a, b bytes.Buffer
	if err := Write(&a, img); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(filepath.Join(dir, "img.tar"), img); err != nil {
		t.Fatal(err)
	}
	if err := Write(&b, img); err != nil {
		t.Fatal(err)
	}
	f, err := os.ReadFile(filepath.Join(dir, "img.tar"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) || !bytes.Equal(a.Bytes(), f) {
		t.Fatal("two writes of the same image differ")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("WriteFile left temporary files: %v", entries)
	}
	img.Files[1].Content = []byte("a=c\n")
	b.Reset()
	if err := Write(&b, img); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("changed content gave the same tarball")
	}
}

func TestRootFS(t *testing.T) {
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755))
	must(os.Symlink("usr/bin", filepath.Join(root, "bin")))
	must(os.WriteFile(filepath.Join(root, "usr/bin/perl"), []byte("perl"), 0o755))
	must(os.Link(filepath.Join(root, "usr/bin/perl"), filepath.Join(root, "usr/bin/perl5")))
	must(os.WriteFile(filepath.Join(root, "usr/bin/old"), []byte("old"), 0o755))
	must(os.Mkdir(filepath.Join(root, "tmp"), 0o777))
	must(os.Chmod(filepath.Join(root, "tmp"), os.ModeSticky|0o777))
	must(syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644))

	img := Image{Name: "localhost:5000/debian:12", RootFSDir: root, Files: []File{
		{Path: "/usr/bin/old", Content: []byte("new")},
		{Path: "/opt/x", Content: []byte("x")},
	}}
	var buf bytes.Buffer
	must(Write(&buf, img))
	_, layers := open(t, buf.Bytes(), img.Name)
	var got []string
	layer := onlyLayer(t, layers)
	for _, m := range layer {
		got = append(got, fmt.Sprintf("%s %c %o %q %s", m.hdr.Name, m.hdr.Typeflag, m.hdr.Mode, m.data, m.hdr.Linkname))
	}
	want := []string{
		`bin 2 777 "" usr/bin`,
		`opt/ 5 755 "" `,
		`opt/x 0 644 "x" `,
		`tmp/ 5 1777 "" `,
		`usr/ 5 755 "" `,
		`usr/bin/ 5 755 "" `,
		`usr/bin/old 0 644 "new" `,
		`usr/bin/perl 0 755 "perl" `,
		`usr/bin/perl5 1 755 "" usr/bin/perl`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("layer:\n got %q\nwant %q", got, want)
	}
}

func TestBadImages(t *testing.T) {
	for _, name := range []string{"kovn.local/test-server:v1", "localhost/x:1", "localhost:5000/a/b:c", "registry.k8s.io/pause:3.10"} {
		if _, err := checkName(name); err != nil {
			t.Errorf("checkName(%q): %v", name, err)
		}
	}
	for _, name := range []string{"", "test-server:v1", "library/x:v1", "kovn.local/x", "kovn.local/X:v1",
		"kovn.local/x:", "kovn.local/x@sha256:" + strings.Repeat("0", 64)} {
		if err := Write(io.Discard, Image{Name: name}); err == nil {
			t.Errorf("name %q accepted", name)
		}
	}
	for _, files := range [][]File{
		{{Path: "/a"}, {Path: "a"}},
		{{Path: "/a"}, {Path: "/a/b"}},
		{{Path: "/../etc/x"}},
		{{Path: "/"}},
		{{Path: "/a", Dir: true, Content: []byte("x")}},
		{{Path: "/a", SourcePath: "/nonexistent"}},
	} {
		if err := Write(io.Discard, Image{Name: "kovn.local/x:v1", Files: files}); err == nil {
			t.Errorf("files %+v accepted", files)
		}
	}

	// A failed WriteFile leaves the previous tarball alone.
	dir := t.TempDir()
	path := filepath.Join(dir, "img.tar")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, Image{Name: "bad"}); err == nil {
		t.Error("bad name accepted")
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Errorf("tarball clobbered: %q", b)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("WriteFile left temporary files: %v", entries)
	}
}
