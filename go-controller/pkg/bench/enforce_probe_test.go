package bench

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"golang.org/x/sys/unix"

	"github.com/kovn-io/kovn/go-controller/pkg/lab/probe"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err       error
		connected bool
		want      string
	}{
		{fmt.Errorf("dial: %w", os.ErrDeadlineExceeded), false, ProbeDropped},
		{fmt.Errorf("read: %w", os.ErrDeadlineExceeded), true, ProbeStalled},
		{syscall.ECONNREFUSED, false, ProbeRefused},
		{fmt.Errorf("read: %w", syscall.ECONNRESET), true, ProbeReset},
		{io.EOF, true, ProbeReset},
		{syscall.EHOSTUNREACH, false, ProbeError},
		{errors.New("odd"), true, ProbeError},
	} {
		if got := classify(tc.err, tc.connected); got.Kind != tc.want || got.Err == "" {
			t.Errorf("classify(%v, connected %v) = %+v, want %s", tc.err, tc.connected, got, tc.want)
		}
	}
}

// serve runs a TCP server on loopback that handles each connection with f.
func serve(t *testing.T, f func(net.Conn)) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); f(c) }()
		}
	}()
	return ln
}

func addrOf(ln net.Listener) netip.AddrPort { return netip.MustParseAddrPort(ln.Addr().String()) }

func reply(c net.Conn) {
	c.Write(probe.Reply{Pod: "bench-enforce/server", Node: "node1", Client: "127.0.0.1"}.Line())
}

// testServer answers as cmd/kovn-test-server does: it waits up to 150 ms
// for a request line, writes the reply, half-closes and drains.
func testServer(c net.Conn) {
	br := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(150 * time.Millisecond))
	br.ReadSlice('\n')
	c.SetDeadline(time.Now().Add(2 * time.Second))
	reply(c)
	c.(*net.TCPConn).CloseWrite()
	io.Copy(io.Discard, br)
}

// TestTCPProbe gets every kind but "error" from loopback servers, in our
// own network namespace.
func TestTCPProbe(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("entering a network namespace needs CAP_SYS_ADMIN")
	}
	self, err := ns.GetNS("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	defer self.Close()
	closed := func() netip.AddrPort {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return netip.MustParseAddrPort(ln.Addr().String())
	}
	const timeout, late = 100 * time.Millisecond, 1500 * time.Millisecond
	for _, tc := range []struct {
		name   string
		addr   netip.AddrPort
		kind   string
		inTime bool
	}{
		// The server would wait 150 ms for a client that says nothing,
		// longer than the timeout: the probe's newline saves that wait.
		{"answered", addrOf(serve(t, testServer)), ProbeAnswered, true},
		{"late", addrOf(serve(t, func(c net.Conn) { time.Sleep(2 * timeout); testServer(c) })), ProbeLate, false},
		{"stalled", addrOf(serve(t, func(c net.Conn) { time.Sleep(late + time.Second) })), ProbeStalled, false},
		{"reset", addrOf(serve(t, func(c net.Conn) { c.Write([]byte("{")) })), ProbeReset, false},
		{"malformed", addrOf(serve(t, func(c net.Conn) { c.Write([]byte("hello\n")) })), ProbeError, false},
		{"refused", closed(), ProbeRefused, false},
		{"dropped", fullBacklog(t), ProbeDropped, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			var inTime bool
			start := time.Now()
			o := tcpProbe(self, tc.addr, start, timeout, late, func(a bool) { calls++; inTime = a })
			if o.Kind != tc.kind || calls != 1 || inTime != tc.inTime {
				t.Fatalf("got %+v, in time %v (%d calls); want %s, in time %v", o, inTime, calls, tc.kind, tc.inTime)
			}
			switch tc.kind {
			case ProbeDropped:
				// The SYN went out again after the kernel's first RTO (1 s).
				if o.Connect != 0 || o.SynRetrans < 1 || o.Took < late {
					t.Errorf("dropped: %+v", o)
				}
			case ProbeRefused:
				if o.Connect == 0 || o.SynRetrans != 0 {
					t.Errorf("refused: %+v", o)
				}
			default:
				if o.Connect == 0 || o.Connect > o.Took || o.SynRetrans != 0 {
					t.Errorf("connected: %+v", o)
				}
			}
		})
	}
}

// fullBacklog is a listener that never accepts, with its accept queue
// already full: Linux then drops further SYNs, as a drop ACL does.
func fullBacklog(t *testing.T) netip.AddrPort {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.AddrPortFrom(netip.AddrFrom4(sa.(*unix.SockaddrInet4).Addr), uint16(sa.(*unix.SockaddrInet4).Port))
	// A backlog of 0 holds one connection; fill it and one more to be sure.
	for range 2 {
		c, err := net.DialTimeout("tcp", addr.String(), 200*time.Millisecond)
		if err == nil {
			t.Cleanup(func() { c.Close() })
		}
	}
	return addr
}
