package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/kovn-io/kovn/go-controller/pkg/lab/probe"
)

const (
	// sniffTimeout is how long a TCP client may take to reveal an HTTP
	// request before it gets the raw line. The lab's probes send a bare
	// newline and are answered at once; a client that sends nothing (nc,
	// an old probe) pays this once per connection.
	sniffTimeout = 150 * time.Millisecond
	// ioTimeout bounds the rest of a connection so stuck clients cannot
	// pile up goroutines.
	ioTimeout = 2 * time.Second
)

// server answers every TCP connection and UDP datagram with its identity
// and the client's address.
type server struct {
	pod, node string
	verbose   bool
	log       *log.Logger
}

func (s *server) reply(client net.Addr) []byte {
	return probe.Reply{Pod: s.pod, Node: s.node, Client: clientIP(client)}.Line()
}

// clientIP drops the port, the zone and the IPv4-in-IPv6 mapping that a
// dual-stack socket adds, so the lab can compare it with plain pod IPs.
func clientIP(a net.Addr) string {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	case *net.UDPAddr:
		ap = a.AddrPort()
	default:
		return a.String()
	}
	return ap.Addr().Unmap().WithZone("").String()
}

func (s *server) serveTCP(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			// Typically EMFILE; back off instead of spinning.
			s.log.Printf("tcp %s: accept: %v", ln.Addr(), err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		go s.handleTCP(c)
	}
}

func (s *server) handleTCP(c net.Conn) {
	defer c.Close()
	body := s.reply(c.RemoteAddr())
	br := bufio.NewReaderSize(c, 4096)
	c.SetReadDeadline(time.Now().Add(sniffTimeout))
	first, _ := br.ReadSlice('\n') // timeout: the client is a raw reader
	c.SetDeadline(time.Now().Add(ioTimeout))

	out, kind := body, "raw"
	if method, ok := httpMethod(first); ok {
		kind = "http " + strings.TrimSpace(string(first))
		skipHeaders(br)
		out = httpResponse(body, method != "HEAD")
	}
	if s.verbose {
		s.log.Printf("tcp %s <- %s: %s", c.LocalAddr(), c.RemoteAddr(), kind)
	}
	if _, err := c.Write(out); err != nil {
		s.log.Printf("tcp %s <- %s: write: %v", c.LocalAddr(), c.RemoteAddr(), err)
		return
	}
	// Closing with unread input makes the kernel send RST, which can
	// destroy the reply before the client reads it; half-close and drain.
	if tc, ok := c.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	io.Copy(io.Discard, br)
}

func httpMethod(line []byte) (string, bool) {
	method, _, ok := bytes.Cut(line, []byte(" "))
	if !ok {
		return "", false
	}
	switch m := string(method); m {
	case "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE":
		return m, true
	}
	return "", false
}

// skipHeaders reads up to the blank line ending the request headers; a
// malformed request still gets an answer.
func skipHeaders(br *bufio.Reader) {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil || len(bytes.TrimRight(line, "\r\n")) == 0 {
			return
		}
	}
}

func httpResponse(body []byte, withBody bool) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", len(body))
	if withBody {
		b.Write(body)
	}
	return b.Bytes()
}

func (s *server) serveUDP(c *net.UDPConn) {
	if err := enablePktinfo(c); err != nil {
		s.log.Printf("udp %s: replies may leave from the wrong source address: %v", c.LocalAddr(), err)
	}
	buf := make([]byte, 65536)
	oob := make([]byte, 512)
	for {
		_, oobn, _, from, err := c.ReadMsgUDPAddrPort(buf, oob)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			s.log.Printf("udp %s: read: %v", c.LocalAddr(), err)
			continue
		}
		peer := net.UDPAddrFromAddrPort(from)
		if s.verbose {
			s.log.Printf("udp %s <- %s", c.LocalAddr(), peer)
		}
		out := s.reply(peer)
		_, _, err = c.WriteMsgUDPAddrPort(out, replyControl(oob[:oobn]), from)
		if err != nil {
			// E.g. a broadcast or multicast destination cannot be a source.
			_, err = c.WriteToUDPAddrPort(out, from)
		}
		if err != nil {
			s.log.Printf("udp %s -> %s: write: %v", c.LocalAddr(), peer, err)
		}
	}
}
