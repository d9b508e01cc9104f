package probe

import (
	"bufio"
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

var want = Reply{Pod: "ns/pod", Node: "node1", Client: "127.0.0.1"}

func TestParse(t *testing.T) {
	if r, err := Parse(string(want.Line())); err != nil || r != want {
		t.Fatalf("Parse(Line()) = %+v, %v", r, err)
	}
	for _, bad := range []string{
		"",
		`{"pod":"a","node":"b","client":"1.2.3.4"}`, // no newline
		"HTTP/1.1 400 Bad Request\r\n",
		`{"pod":"a","node":"b"}` + "\n",
		`{"pod":"a","node":"b","client":"nope"}` + "\n",
		`{"pod":"a","node":"b","client":"1.2.3.4"} x` + "\n",
	} {
		if _, err := Parse(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("Parse(%q) = %v, want ErrMalformed", bad, err)
		}
	}
}

// tcpServer accepts connections on a loopback port and hands each to
// handle once it has read the probe's newline, as the test server does (a
// socket closed with unread data resets the connection instead).
func tcpServer(t *testing.T, handle func(net.Conn)) string {
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
			go func() {
				defer c.Close()
				if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line != "\n" {
					t.Errorf("probe sent %q (%v), want a bare newline", line, err)
					return
				}
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}

func TestTCP(t *testing.T) {
	addr := tcpServer(t, func(c net.Conn) { c.Write(want.Line()) })
	r, raw, err := Probe(context.Background(), "tcp", addr, 2*time.Second)
	if err != nil || r != want || raw != string(want.Line()) {
		t.Fatalf("Probe = %+v, %q, %v", r, raw, err)
	}
}

func TestTCPErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })

	for _, tc := range []struct {
		name, addr string
		kind       error
	}{
		{"refused", closed, ErrRefused},
		{"silent", tcpServer(t, func(net.Conn) { <-hang }), ErrTimeout},
		{"not json", tcpServer(t, func(c net.Conn) { c.Write([]byte("SSH-2.0-x\r\n")) }), ErrMalformed},
		{"no newline", tcpServer(t, func(c net.Conn) { c.Write([]byte(`{"pod"`)) }), ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, raw, err := Probe(context.Background(), "tcp", tc.addr, 300*time.Millisecond)
			if !errors.Is(err, tc.kind) {
				t.Fatalf("err = %v (raw %q), want %v", err, raw, tc.kind)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %s", d)
			}
			t.Logf("%v", err)
		})
	}
}

func TestCancel(t *testing.T) {
	hang := make(chan struct{})
	defer close(hang)
	addr := tcpServer(t, func(net.Conn) { <-hang })
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	if _, _, err := Probe(ctx, "tcp", addr, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// udpServer answers datagrams on a loopback port, skipping the first `drop`.
func udpServer(t *testing.T, drop int32, got *atomic.Int32) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if got.Add(1) > drop {
				pc.WriteTo(want.Line(), from)
			}
		}
	}()
	return pc.LocalAddr().String()
}

func TestUDPRetries(t *testing.T) {
	var got atomic.Int32
	addr := udpServer(t, 1, &got)
	r, _, err := Probe(context.Background(), "udp", addr, 1500*time.Millisecond)
	if err != nil || r != want {
		t.Fatalf("Probe = %+v, %v", r, err)
	}
	if n := got.Load(); n != 2 {
		t.Errorf("server got %d datagrams, want 2", n)
	}
}

func TestUDPTimeout(t *testing.T) {
	var got atomic.Int32
	addr := udpServer(t, 1000, &got)
	start := time.Now()
	_, _, err := Probe(context.Background(), "udp", addr, 600*time.Millisecond)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d < 550*time.Millisecond || d > 2*time.Second {
		t.Errorf("took %s, want about 600ms", d)
	}
	if n := got.Load(); n != udpSends {
		t.Errorf("server got %d datagrams, want %d", n, udpSends)
	}
	t.Logf("%v", err)
}

func TestUDPRefused(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	// Loopback answers with ICMP port unreachable, which a connected UDP
	// socket reports as ECONNREFUSED.
	if _, _, err := Probe(context.Background(), "udp", addr, time.Second); !errors.Is(err, ErrRefused) {
		t.Fatalf("err = %v, want ErrRefused", err)
	}
}
