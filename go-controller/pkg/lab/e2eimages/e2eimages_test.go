package e2eimages

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kovn-io/kovn/go-controller/pkg/lab/debroot"
)

// An excerpt of what e2e.test v1.34.2 --list-images prints.
const listed = `registry.k8s.io/e2e-test-images/agnhost:2.56
gcr.io/k8s-authenticated-test/agnhost:2.6
registry.k8s.io/e2e-test-images/busybox:1.37.0-1
registry.k8s.io/e2e-test-images/httpd:2.4.38-4
registry.k8s.io/e2e-test-images/jessie-dnsutils:1.7
registry.k8s.io/e2e-test-images/nginx:1.14-4
registry.k8s.io/e2e-test-images/nginx:1.15-4
registry.k8s.io/pause:3.10.1
`

func TestRefs(t *testing.T) {
	refs, err := Refs(listed)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range refs {
		got = append(got, r.Kind+" "+r.Ref+" "+Role(r))
	}
	want := []string{
		"agnhost registry.k8s.io/e2e-test-images/agnhost:2.56 e2e-agnhost-2.56",
		"jessie-dnsutils registry.k8s.io/e2e-test-images/jessie-dnsutils:1.7 e2e-jessie-dnsutils-1.7",
		"nginx registry.k8s.io/e2e-test-images/nginx:1.14-4 e2e-nginx-1.14-4",
		"nginx registry.k8s.io/e2e-test-images/nginx:1.15-4 e2e-nginx-1.15-4",
		"pause registry.k8s.io/pause:3.10.1 e2e-pause-3.10.1",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("refs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if _, err := Refs("registry.k8s.io/pause:3.10.1\ngcr.io/k8s-authenticated-test/agnhost:2.6\nlocalhost:5000/nginx\n"); err == nil ||
		!strings.Contains(err.Error(), "no agnhost, jessie-dnsutils, nginx image") {
		t.Errorf("missing kinds: %v", err)
	}
}

// TestBuildFromCachedRoot builds against a root filesystem already in the
// cache, as a second run finds it: no mmdebstrap or network needed.
func TestBuildFromCachedRoot(t *testing.T) {
	cache, bins := t.TempDir(), t.TempDir()
	dir := debroot.Dir(cache, "e2e-images", debroot.Recipe{Packages: Packages()})
	if err := os.MkdirAll(filepath.Join(dir, "rootfs", "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rootfs", "bin", "bash"), []byte("bash"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := Config{CacheDir: cache, Agnhost: filepath.Join(bins, "agnhost"), Pause: filepath.Join(bins, "pause"),
		CoreDNS: filepath.Join(bins, "coredns"), AgnhostSource: bins}
	if err := os.MkdirAll(filepath.Join(bins, "porter"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg.Refs, _ = Refs(listed)
	if _, err := Build(cfg); err == nil {
		t.Fatal("Build without binaries succeeded")
	}
	for _, b := range []string{cfg.Agnhost, cfg.Pause, cfg.CoreDNS, filepath.Join(bins, "porter", "localhost.crt"), filepath.Join(bins, "porter", "localhost.key")} {
		if err := os.WriteFile(b, []byte(filepath.Base(b)+" v1"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	first, err := Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != len(cfg.Refs) {
		t.Fatalf("built %v", first)
	}
	mtimes := map[string]int64{}
	for i, im := range first {
		if im.Ref != cfg.Refs[i] || im.Tarball != Tarball(cache, im.Ref) || im.Role != Role(im.Ref) {
			t.Errorf("image %+v", im)
		}
		st, err := os.Stat(im.Tarball)
		if err != nil {
			t.Fatal(err)
		}
		mtimes[im.Role] = st.ModTime().UnixNano()
	}
	// A new agnhost binary under the same upstream tag repacks only the
	// images that hold it.
	if err := os.WriteFile(cfg.Agnhost, []byte("agnhost v2"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Build(cfg); err != nil {
		t.Fatal(err)
	}
	for _, r := range cfg.Refs {
		st, err := os.Stat(Tarball(cache, r))
		if err != nil {
			t.Fatal(err)
		}
		repacked := st.ModTime().UnixNano() != mtimes[Role(r)]
		holdsAgnhost := r.Kind == "agnhost" || r.Kind == "jessie-dnsutils"
		if repacked != holdsAgnhost {
			t.Errorf("%s: repacked=%v after a new agnhost", r.Ref, repacked)
		}
	}
}
