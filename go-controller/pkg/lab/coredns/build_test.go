package coredns

// TestBuildForReal builds CoreDNS from the module proxy and checks that
// the binary registers the lab's plugins and none that sends queries out,
// and that its parser accepts the lab's Corefile. A cold build takes
// minutes, so it runs only when asked: KOVN_COREDNS_BUILD=1 (KOVN_CACHE
// picks the cache).

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestBuildForReal(t *testing.T) {
	if os.Getenv("KOVN_COREDNS_BUILD") != "1" {
		t.Skip("set KOVN_COREDNS_BUILD=1 to build CoreDNS from the module proxy")
	}
	cache := os.Getenv("KOVN_CACHE")
	if cache == "" {
		cache = "/var/cache/kovn" // the Makefile's default, so a run warms the lab's cache
	}
	start := time.Now()
	bin, err := EnsureBinary(cache, logWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("EnsureBinary: %s (%.1f MiB) in %s", bin, float64(fi.Size())/(1<<20), time.Since(start).Round(100*time.Millisecond))

	start = time.Now()
	if again, err := EnsureBinary(cache, logWriter{t}); err != nil || again != bin {
		t.Fatalf("second EnsureBinary = %q, %v; want %q", again, err, bin)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("second EnsureBinary took %s; the stamp should make it instant", d)
	}

	out, err := exec.Command(bin, "-plugins").CombinedOutput()
	if err != nil {
		t.Fatalf("%s -plugins: %v\n%s", bin, err, out)
	}
	t.Logf("%s -plugins:\n%s", bin, out)
	registered := map[string]bool{}
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			registered[l] = true
		}
	}
	for _, d := range directives() {
		if !registered[d] {
			t.Errorf("the binary does not register %q", d)
		}
	}
	for _, d := range []string{"forward", "grpc", "loop", "etcd", "route53", "azure", "clouddns"} {
		if registered[d] {
			t.Errorf("the binary links %q", d)
		}
	}

	out, err = exec.Command(bin, "-version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "CoreDNS-"+strings.TrimPrefix(Version, "v")) {
		t.Errorf("%s -version = %q, %v; want CoreDNS-%s", bin, out, err, strings.TrimPrefix(Version, "v"))
	}

	// The lab's Corefile parses: the binary gets as far as the kubernetes
	// plugin looking for the API server. A directive it does not link
	// fails in the parser instead.
	dir := t.TempDir()
	for _, tc := range []struct{ corefile, want string }{
		{strings.Replace(corefile("cluster.local"), ":53 {", ":0 {", 1), "plugin/kubernetes: unable to load in-cluster configuration"},
		{".:0 {\n    forward . 127.0.0.1\n}\n", "Unknown directive 'forward'"},
		{".:0 {\n    metadata\n}\n", "Unknown directive 'metadata'"},
	} {
		conf := filepath.Join(dir, "Corefile")
		if err := os.WriteFile(conf, []byte(tc.corefile), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "-conf", conf)
		cmd.Env = []string{} // no KUBERNETES_SERVICE_HOST, whatever runs the test
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("coredns with\n%s= %v:\n%s\nwant a failure saying %q", tc.corefile, err, out, tc.want)
		}
	}
}
