package main

import (
	"bufio"
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kovn-io/kovn/go-controller/pkg/lab/probe"
)

// TestMain lets TestSignal run the real main in a child process.
func TestMain(m *testing.M) {
	if os.Getenv("KOVN_TEST_SERVER_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// start serves on an ephemeral TCP and UDP port of host and returns
// both addresses.
func start(t *testing.T, host string) (tcpAddr, udpAddr string) {
	t.Helper()
	s := &server{pod: "ns/pod", node: "node1", verbose: true, log: log.New(testWriter{t}, "", 0)}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close(); pc.Close() })
	go s.serveTCP(ln)
	go s.serveUDP(pc.(*net.UDPConn))
	return ln.Addr().String(), pc.LocalAddr().String()
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

func want(client string) probe.Reply {
	return probe.Reply{Pod: "ns/pod", Node: "node1", Client: client}
}

func TestProbe(t *testing.T) {
	// "" listens dual-stack like the real server, so IPv4 clients arrive
	// v4-mapped and must still be reported as plain 127.0.0.1.
	for _, host := range []string{"127.0.0.1", ""} {
		tcp, udp := start(t, host)
		_, port, _ := net.SplitHostPort(tcp)
		_, uport, _ := net.SplitHostPort(udp)
		for _, tc := range []struct{ proto, addr string }{
			{"tcp", net.JoinHostPort("127.0.0.1", port)},
			{"udp", net.JoinHostPort("127.0.0.1", uport)},
		} {
			r, raw, err := probe.Probe(context.Background(), tc.proto, tc.addr, 2*time.Second)
			if err != nil || r != want("127.0.0.1") {
				t.Errorf("listen %q: probe %s %s = %+v, %q, %v", host, tc.proto, tc.addr, r, raw, err)
			}
		}
	}
}

// TestUDPReplySource sends to 127.0.0.2, whose route back to the client
// prefers source 127.0.0.1: without pktinfo the reply would leave from
// .1 and the client's connected socket would drop it.
func TestUDPReplySource(t *testing.T) {
	for _, host := range []string{"0.0.0.0", ""} {
		_, udp := start(t, host)
		_, port, _ := net.SplitHostPort(udp)
		addr := net.JoinHostPort("127.0.0.2", port)
		if r, _, err := probe.Probe(context.Background(), "udp", addr, time.Second); err != nil || r != want("127.0.0.1") {
			t.Errorf("listen %q: probe udp %s = %+v, %v", host, addr, r, err)
		}
	}
}

func TestIPv6(t *testing.T) {
	if ln, err := net.Listen("tcp", "[::1]:0"); err != nil {
		t.Skip("no IPv6 loopback:", err)
	} else {
		ln.Close()
	}
	tcp, udp := start(t, "::1")
	for proto, addr := range map[string]string{"tcp": tcp, "udp": udp} {
		if r, _, err := probe.Probe(context.Background(), proto, addr, 2*time.Second); err != nil || r != want("::1") {
			t.Errorf("probe %s %s = %+v, %v", proto, addr, r, err)
		}
	}
}

func TestHTTP(t *testing.T) {
	tcp, _ := start(t, "127.0.0.1")
	line := string(want("127.0.0.1").Line())
	get := func(method string, body io.Reader) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+tcp+"/some/path", body)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		return resp
	}

	resp := get("GET", nil)
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || string(b) != line ||
		resp.Header.Get("Content-Type") != "application/json" || !resp.Close {
		t.Errorf("GET = %d %v close=%v %q, %v", resp.StatusCode, resp.Header, resp.Close, b, err)
	}

	// A body the server never reads must not turn the close into a reset.
	resp = get("POST", strings.NewReader(strings.Repeat("x", 100000)))
	b, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(b) != line {
		t.Errorf("POST = %q, %v", b, err)
	}

	resp = get("HEAD", nil)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ContentLength != int64(len(line)) {
		t.Errorf("HEAD = %d length %d", resp.StatusCode, resp.ContentLength)
	}
}

// TestTCPNonHTTP checks that bytes which are not an HTTP request get the
// raw line.
func TestTCPNonHTTP(t *testing.T) {
	tcp, _ := start(t, "127.0.0.1")
	c, err := net.Dial("tcp", tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("hello\n"))
	c.SetDeadline(time.Now().Add(2 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || string(got) != string(want("127.0.0.1").Line()) {
		t.Errorf("got %q, %v", got, err)
	}
}

func TestIdentity(t *testing.T) {
	host, _ := os.Hostname()
	env := map[string]string{"POD_NAMESPACE": "ns", "POD_NAME": "p"}
	for _, tc := range []struct {
		name, node string
		env        map[string]string
		pod, nd    string
	}{
		{"", "", env, "ns/p", host},
		{"external", "n1", env, "external", "n1"},
		{"", "", nil, host, host},
	} {
		pod, node := identity(tc.name, tc.node, func(k string) string { return tc.env[k] })
		if pod != tc.pod || node != tc.nd {
			t.Errorf("identity(%q, %q) = %q, %q; want %q, %q", tc.name, tc.node, pod, node, tc.pod, tc.nd)
		}
	}
}

func TestListenAddrs(t *testing.T) {
	if a, err := listenAddrs(" 80, 8080 ,"); err != nil || strings.Join(a, " ") != ":80 :8080" {
		t.Errorf("got %q, %v", a, err)
	}
	for _, bad := range []string{"0", "65536", "x", "80,80"} {
		if _, err := listenAddrs(bad); err == nil {
			t.Errorf("listenAddrs(%q) succeeded", bad)
		}
	}
}

// TestSignal runs the real binary and checks that SIGTERM ends it with
// status 0 promptly.
func TestSignal(t *testing.T) {
	var ports []string
	for _, network := range []string{"tcp", "udp"} {
		// Find free ports; the window until the child binds is tiny.
		var addr net.Addr
		if network == "tcp" {
			ln, err := net.Listen("tcp", ":0")
			if err != nil {
				t.Fatal(err)
			}
			addr = ln.Addr()
			ln.Close()
		} else {
			pc, err := net.ListenPacket("udp", ":0")
			if err != nil {
				t.Fatal(err)
			}
			addr = pc.LocalAddr()
			pc.Close()
		}
		_, p, _ := net.SplitHostPort(addr.String())
		ports = append(ports, p)
	}
	cmd := exec.Command(os.Args[0], "--tcp-ports", ports[0], "--udp-ports", ports[1], "--name", "external")
	// The race detector otherwise sleeps a second at exit.
	cmd.Env = append(os.Environ(), "KOVN_TEST_SERVER_MAIN=1", "GORACE=atexit_sleep_ms=0")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	for i := 0; i < 2 && sc.Scan(); i++ {
		t.Log(sc.Text())
	}
	r, _, err := probe.Probe(context.Background(), "tcp", "127.0.0.1:"+ports[0], 2*time.Second)
	if err != nil || r.Pod != "external" {
		t.Errorf("probe = %+v, %v", r, err)
	}
	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	go io.Copy(io.Discard, stderr)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %s to exit", d)
	}
}
