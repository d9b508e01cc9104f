package kovnimage

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kovn-io/kovn/go-controller/pkg/lab/debroot"
)

// fakeCheckout writes every file the image copies, with content made from
// its path and version.
func fakeCheckout(t *testing.T, dir, version string) {
	t.Helper()
	for _, c := range copies() {
		p := filepath.Join(dir, c.src)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(c.src+" "+version), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func modTime(t *testing.T, p string) time.Time {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.ModTime()
}

// TestBuildReusesCache runs Build against a root filesystem already in the
// cache, as a second run finds it, so no mmdebstrap or network is needed.
func TestBuildReusesCache(t *testing.T) {
	checkout, cache := t.TempDir(), t.TempDir()
	cfg := Config{CheckoutDir: checkout, CacheDir: cache}
	if _, err := Build(cfg); err == nil || !strings.Contains(err.Error(), "make build") {
		t.Fatalf("Build without binaries: %v", err)
	}
	fakeCheckout(t, checkout, "v1")
	dir := debroot.Dir(cache, "kovn-image", recipe(nil))
	if err := os.MkdirAll(filepath.Join(dir, "rootfs", "usr", "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rootfs", "usr", "bin", "bash"), []byte("bash"), 0o755); err != nil {
		t.Fatal(err)
	}

	first, err := Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^kovn\.local/kovn:[0-9a-f]{12}$`).MatchString(first.Ref) ||
		first.Tarball != Tarball(cache) || first.RootFS != filepath.Join(dir, "rootfs") {
		t.Errorf("result %+v", first)
	}
	base, tarball := filepath.Join(dir, "base.tar.gz"), modTime(t, first.Tarball)

	again, err := Build(cfg)
	if err != nil || again != first {
		t.Fatalf("second build = %+v, %v; want %+v", again, err, first)
	}
	if !modTime(t, first.Tarball).Equal(tarball) {
		t.Error("an unchanged image was packed again")
	}

	baseTime := modTime(t, base)
	fakeCheckout(t, checkout, "v2")
	second, err := Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if second.Ref == first.Ref {
		t.Errorf("new binaries kept the tag %s", first.Ref)
	}
	if !modTime(t, base).Equal(baseTime) {
		t.Error("the root filesystem layer was packed again for new binaries")
	}

	// A lost tarball is packed again under the same reference.
	if err := os.Remove(second.Tarball); err != nil {
		t.Fatal(err)
	}
	if again, err := Build(cfg); err != nil || again != second {
		t.Errorf("rebuild after removal = %+v, %v; want %+v", again, err, second)
	}
}

func TestRootFSKey(t *testing.T) {
	args := recipe(nil).Args()
	if debroot.Dir("/c", "kovn-image", recipe(nil)) != debroot.Dir("/c", "kovn-image", recipe(nil)) {
		t.Error("the same recipe gave two cache directories")
	}
	if debroot.Dir("/c", "kovn-image", recipe(nil)) == debroot.Dir("/c", "kovn-image", recipe([]string{"http://mirror.example/debian"})) {
		t.Error("another mirror shares the cache directory")
	}
	if !strings.Contains(strings.Join(args, " "), "--include="+strings.Join(Packages(), ",")) {
		t.Errorf("args %q do not install Packages()", args)
	}
}
