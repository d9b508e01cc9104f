package kovnimage

// TestBuildForReal builds the image from the network and checks it the two
// ways it will be used: its programs run from the unpacked layers, and a
// containerd imports it. It takes minutes when the cache is cold, so it
// runs only when asked: KOVN_IMAGE_BUILD=1, as root, after make build.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestBuildForReal(t *testing.T) {
	if os.Getenv("KOVN_IMAGE_BUILD") != "1" {
		t.Skip("set KOVN_IMAGE_BUILD=1 to build the image with mmdebstrap and import it into a private containerd")
	}
	if os.Geteuid() != 0 {
		t.Fatal("KOVN_IMAGE_BUILD needs root (mmdebstrap, chroot, containerd)")
	}
	for _, tool := range []string{"mmdebstrap", "unshare", "chroot", "tar", "containerd", "ctr"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s: %v (kovn-lab deps installs the lab's packages)", tool, err)
		}
	}
	cache := os.Getenv("KOVN_CACHE")
	if cache == "" {
		cache = "/var/cache/kovn" // the Makefile's default, so a run warms the lab's cache
	}
	cfg := Config{CheckoutDir: checkoutDir(), CacheDir: cache, Log: logWriter{t}}
	start := time.Now()
	res, err := Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Build: %s in %s", res.Ref, time.Since(start).Round(100*time.Millisecond))
	start = time.Now()
	if again, err := Build(cfg); err != nil || again != res {
		t.Fatalf("second build = %+v, %v; want %+v", again, err, res)
	}
	t.Logf("second Build (all cached): %s", time.Since(start).Round(10*time.Millisecond))

	root := filepath.Join(t.TempDir(), "rootfs")
	extract(t, res.Tarball, root)
	// The owners and modes a Docker build would give.
	if st, err := os.Stat(filepath.Join(root, "etc", "shadow")); err != nil || st.Sys().(*syscall.Stat_t).Gid == 0 {
		t.Errorf("/etc/shadow is not in group shadow: %v", err)
	}
	for _, c := range copies() {
		if st, err := os.Stat(filepath.Join(root, c.dst)); err != nil || st.Mode().Perm() != 0o755 {
			t.Errorf("%s: %v, want mode 0755", c.dst, err)
		}
	}
	for _, cmd := range [][]string{
		{"ovs-vsctl", "--version"},
		{"ovn-nbctl", "--version"},
		{"ovn-controller", "--version"},
		{"/usr/bin/kovn-node", "--help"},
		{"/usr/bin/kovn-controller", "--help"},
		{"/usr/bin/kovnctl", "--help"},
		{"/usr/libexec/kovn/kovn-cni"}, // without CNI_COMMAND, a plugin names itself
		{"bash", "-n", "/usr/bin/kovn-ovn-run"},
		{"iptables", "--version"},
		{"ip", "-V"},
	} {
		out, err := exec.Command("chroot", append([]string{root}, cmd...)...).CombinedOutput()
		if err != nil {
			t.Errorf("chroot %s: %v\n%s", strings.Join(cmd, " "), err, out)
			continue
		}
		t.Logf("chroot %s: %.70s", strings.Join(cmd, " "), strings.Join(strings.Fields(string(out)), " "))
	}

	sock := privateContainerd(t)
	start = time.Now()
	run(t, "ctr", "-a", sock, "-n", "k8s.io", "images", "import", res.Tarball)
	t.Logf("ctr images import: %s", time.Since(start).Round(100*time.Millisecond))
	if ls := run(t, "ctr", "-a", sock, "-n", "k8s.io", "images", "ls", "-q"); !strings.Contains(ls, res.Ref) {
		t.Errorf("ctr images ls -q does not show %s:\n%s", res.Ref, ls)
	}
}

// extract unpacks the image's layers, lowest first, with GNU tar: an
// independent reader of what ociimage wrote.
func extract(t *testing.T, tarball, root string) {
	t.Helper()
	layout := filepath.Join(t.TempDir(), "layout")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(layout, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, "tar", "-xf", tarball, "-C", layout)
	blob := func(digest string) string {
		return filepath.Join(layout, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:"))
	}
	var idx struct{ Manifests []struct{ Digest string } }
	var man struct{ Layers []struct{ Digest string } }
	readJSON(t, filepath.Join(layout, "index.json"), &idx)
	if len(idx.Manifests) != 1 {
		t.Fatalf("index lists %d manifests", len(idx.Manifests))
	}
	readJSON(t, blob(idx.Manifests[0].Digest), &man)
	t.Logf("%d layers", len(man.Layers))
	for _, l := range man.Layers {
		run(t, "tar", "-xzf", blob(l.Digest), "-C", root, "--numeric-owner")
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// privateContainerd starts a containerd whose root, state and sockets are
// all in a temporary directory, so neither the machine's containerd nor a
// running lab's sees it, and stops it and removes the directory at the end.
// Its CRI plugin is off: only the image store is needed.
func privateContainerd(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "kovn-ctrd-") // short: a socket path has ~100 bytes
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "containerd.sock")
	conf := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
[ttrpc]
  address = %q
[plugins."io.containerd.internal.v1.opt"]
  path = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock, sock+".ttrpc", filepath.Join(dir, "opt"))
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("containerd", "--config", filepath.Join(dir, "config.toml"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		logf.Close()
		if mounts, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mounts), dir) {
			t.Errorf("mounts left below %s; not removing it", dir)
			return
		}
		os.RemoveAll(dir)
	})
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if exec.Command("ctr", "-a", sock, "version").Run() == nil {
			return sock
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(logf.Name())
			t.Fatalf("containerd exited: %v\n%s", waitErr, log)
		default:
		}
	}
	t.Fatalf("containerd did not answer on %s", sock)
	return ""
}
