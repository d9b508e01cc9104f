package ociimage

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// layerNames renders entries as "name mode content" for comparison.
func layerNames(layer []member) []string {
	var out []string
	for _, m := range layer {
		out = append(out, fmt.Sprintf("%s %o %q", m.hdr.Name, m.hdr.Mode, m.data))
	}
	return out
}

func TestBaseLayers(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "usr/bin/sh"), []byte("sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	basePath := filepath.Join(dir, "base.tar.gz")
	base, err := WriteLayerFile(basePath, Image{RootFSDir: root, Files: []File{{Path: "/etc/os-release", Content: []byte("ID=test\n")}}})
	if err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("WriteLayerFile left temporary files: %v", entries)
	}
	// The descriptor survives a round trip through the JSON a caller keeps.
	js, err := json.Marshal(base)
	if err != nil {
		t.Fatal(err)
	}
	var again Layer
	if err := json.Unmarshal(js, &again); err != nil {
		t.Fatal(err)
	}
	again.Path = basePath
	if again != base {
		t.Errorf("layer after JSON = %+v, want %+v", again, base)
	}

	img := Image{Name: "kovn.local/layered:v1", Base: []Layer{base, base},
		Files: []File{{Path: "/usr/bin/tool", Mode: 0o755, Content: []byte("tool")}}}
	var a, b bytes.Buffer
	if err := Write(&a, img); err != nil {
		t.Fatal(err)
	}
	cfg, layers := open(t, a.Bytes(), img.Name)
	if len(layers) != 3 {
		t.Fatalf("%d layers, want base twice and the top", len(layers))
	}
	blob, _ := os.ReadFile(basePath)
	if cfg.RootFS.DiffIDs[0] != base.DiffID || sha(blob) != base.Digest || int64(len(blob)) != base.Size {
		t.Errorf("base descriptor %+v does not match its blob or the config's %s", base, cfg.RootFS.DiffIDs[0])
	}
	wantBase := []string{`etc/ 755 ""`, `etc/os-release 644 "ID=test\n"`, `usr/ 755 ""`, `usr/bin/ 755 ""`, `usr/bin/sh 755 "sh"`}
	wantTop := []string{`usr/ 755 ""`, `usr/bin/ 755 ""`, `usr/bin/tool 755 "tool"`}
	if got := layerNames(layers[0]); !reflect.DeepEqual(got, wantBase) {
		t.Errorf("base layer:\n got %q\nwant %q", got, wantBase)
	}
	if got := layerNames(layers[2]); !reflect.DeepEqual(got, wantTop) {
		t.Errorf("top layer:\n got %q\nwant %q", got, wantTop)
	}
	id := checkID(t, img, cfg)
	if err := Write(&b, img); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("two writes of the same layered image differ")
	}

	// Another base gives another ID even with the same top layer.
	other, err := WriteLayerFile(filepath.Join(dir, "other.tar.gz"), Image{Files: []File{{Path: "/x", Content: []byte("x")}}})
	if err != nil {
		t.Fatal(err)
	}
	img.Base = []Layer{other}
	if id2, err := ID(img); err != nil || id2 == id {
		t.Errorf("ID with another base = %s, %v; was %s", id2, err, id)
	}

	// A descriptor that does not fit its file is refused before packing.
	for _, bad := range []Layer{
		{Path: basePath, Digest: base.Digest, DiffID: base.DiffID, Size: base.Size + 1},
		{Path: basePath, Digest: "sha256:abc", DiffID: base.DiffID, Size: base.Size},
		{Path: filepath.Join(dir, "missing"), Digest: base.Digest, DiffID: base.DiffID, Size: base.Size},
	} {
		img.Base = []Layer{bad}
		if err := Write(&b, img); err == nil {
			t.Errorf("base %+v accepted", bad)
		}
		if _, err := ID(img); err == nil {
			t.Errorf("ID with base %+v: no error", bad)
		}
	}
}

// layerOwners reads a layer blob and returns "uid:gid" by entry name.
func layerOwners(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	owners := map[string]string{}
	for _, m := range readTarAnyOwner(t, gz) {
		owners[m.hdr.Name] = fmt.Sprintf("%d:%d", m.hdr.Uid, m.hdr.Gid)
	}
	return owners
}

func TestRootFSOwners(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown needs root")
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(filepath.Join(root, "var/mail"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "shadow"), nil, 0o640); err != nil {
		t.Fatal(err)
	}
	for p, id := range map[string][2]int{"var/mail": {0, 8}, "shadow": {0, 42}} {
		if err := os.Chown(filepath.Join(root, p), id[0], id[1]); err != nil {
			t.Fatal(err)
		}
	}
	files := []File{{Path: "/var/mail/new", Content: []byte("x")}}
	for _, keep := range []bool{true, false} {
		path := filepath.Join(dir, fmt.Sprintf("layer-%v.tar.gz", keep))
		if _, err := WriteLayerFile(path, Image{RootFSDir: root, RootFSOwners: keep, Files: files}); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"shadow": "0:0", "var/": "0:0", "var/mail/": "0:0", "var/mail/new": "0:0"}
		if keep {
			want["shadow"], want["var/mail/"] = "0:42", "0:8"
		}
		if got := layerOwners(t, path); !reflect.DeepEqual(got, want) {
			t.Errorf("RootFSOwners %v: owners %v, want %v", keep, got, want)
		}
	}
}
