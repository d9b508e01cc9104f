// Package probe speaks the protocol of the lab's test server
// (cmd/kovn-test-server): every TCP connection and every UDP datagram is
// answered with one JSON line naming the answering pod, its node and the
// client address the server saw. The lab asserts on those fields to check
// which backend a service picked and whether the source address survived
// (or was rewritten by) NAT.
package probe

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"
)

// Reply is the test server's answer.
type Reply struct {
	Pod    string `json:"pod"`    // "namespace/name", or a free-form name such as "external"
	Node   string `json:"node"`   // node (or host) the server runs on
	Client string `json:"client"` // source IP of the request as seen by the server, no port
}

// Line encodes r exactly as the server sends it: one JSON object and "\n".
func (r Reply) Line() []byte {
	b, _ := json.Marshal(r) // a struct of strings cannot fail to encode
	return append(b, '\n')
}

// Kinds of probe failure; the errors returned by Probe wrap one of them when
// the cause is known, so callers can tell a dropped packet (ErrTimeout) from
// an active reject (ErrRefused), e.g. when testing network policy.
var (
	ErrTimeout     = errors.New("timed out")
	ErrRefused     = errors.New("connection refused")
	ErrUnreachable = errors.New("unreachable")
	ErrMalformed   = errors.New("malformed reply")
)

// Parse decodes one reply line, which must end in "\n" and carry all fields
// with a valid client IP; anything else is reported as ErrMalformed because
// it means we reached something other than the test server.
func Parse(line string) (Reply, error) {
	s, ok := strings.CutSuffix(line, "\n")
	if !ok {
		return Reply{}, fmt.Errorf("%w %q: no terminating newline", ErrMalformed, line)
	}
	var r Reply
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		return Reply{}, fmt.Errorf("%w %q: %v", ErrMalformed, line, err)
	}
	if r.Pod == "" || r.Node == "" || r.Client == "" {
		return Reply{}, fmt.Errorf("%w %q: missing pod, node or client", ErrMalformed, line)
	}
	if _, err := netip.ParseAddr(r.Client); err != nil {
		return Reply{}, fmt.Errorf("%w %q: client is not an IP address", ErrMalformed, line)
	}
	return r, nil
}

const (
	maxReply   = 4096
	udpSends   = 3
	udpPayload = "kovn-probe\n"
)

// Probe asks the test server at addr ("host:port") over proto ("tcp", "udp",
// or their "4"/"6" variants) who answered. TCP connects and reads one line
// without sending anything; UDP sends a datagram and waits for the reply,
// re-sending up to 3 times in total within the timeout because the first
// packet may be lost while ARP/ND and flows settle. A timeout <= 0 leaves
// ctx alone to bound the probe. raw is whatever text was received, also on
// error, so callers can show what answered instead of the server.
func Probe(ctx context.Context, proto, addr string, timeout time.Duration) (Reply, string, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	start := time.Now()
	var raw, op string
	var err error
	switch proto {
	case "tcp", "tcp4", "tcp6":
		raw, op, err = probeTCP(ctx, proto, addr)
	case "udp", "udp4", "udp6":
		raw, op, err = probeUDP(ctx, proto, addr)
	default:
		return Reply{}, "", fmt.Errorf("probe %s: unsupported protocol %q", addr, proto)
	}
	if err != nil {
		return Reply{}, raw, describe(ctx, proto, addr, op, time.Since(start), err)
	}
	r, err := Parse(raw)
	if err != nil {
		return Reply{}, raw, fmt.Errorf("%s %s: %w", proto, addr, err)
	}
	return r, raw, nil
}

// watch makes blocked I/O on c return as soon as ctx ends, including on
// cancellation, which conn deadlines alone would not notice.
func watch(ctx context.Context, c net.Conn) (stop func() bool) {
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	return context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
}

func probeTCP(ctx context.Context, proto, addr string) (raw, op string, err error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, proto, addr)
	if err != nil {
		return "", "connect", err
	}
	defer c.Close()
	defer watch(ctx, c)()
	// A bare newline tells the test server this is no HTTP client, so it
	// answers at once; silent, a probe waited out the server's 150 ms
	// sniff, and under load a short timeout took a late answer for a drop.
	if _, err := c.Write([]byte("\n")); err != nil {
		return "", "send", err
	}
	line, err := bufio.NewReader(io.LimitReader(c, maxReply)).ReadString('\n')
	if err == io.EOF {
		err = fmt.Errorf("%w %q: connection closed before a newline", ErrMalformed, line)
	}
	return line, "read", err
}

func probeUDP(ctx context.Context, proto, addr string) (raw, op string, err error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, proto, addr)
	if err != nil {
		return "", "connect", err
	}
	defer c.Close()
	defer watch(ctx, c)()
	deadline, hasDeadline := ctx.Deadline()
	interval := time.Second
	if hasDeadline {
		interval = time.Until(deadline) / udpSends
	}
	buf := make([]byte, maxReply)
	for sent := 1; ; sent++ {
		if _, err := c.Write([]byte(udpPayload)); err != nil {
			return "", "send", err
		}
		switch {
		case ctx.Err() != nil:
			// Keep the expired deadline set by watch.
		case sent < udpSends:
			next := time.Now().Add(interval)
			if hasDeadline && deadline.Before(next) {
				next = deadline
			}
			c.SetReadDeadline(next)
		default: // the last send waits for whatever time is left
			c.SetReadDeadline(deadline) // zero (none) without a deadline
		}
		n, err := c.Read(buf)
		if err == nil {
			return string(buf[:n]), "", nil
		}
		if sent >= udpSends || ctx.Err() != nil || !isTimeout(err) {
			return "", fmt.Sprintf("read (after %d datagrams)", sent), err
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// describe turns an I/O error into one that names the operation and, when
// recognised, wraps one of the Err* kinds instead of net's nested wording.
func describe(ctx context.Context, proto, addr, op string, elapsed time.Duration, err error) error {
	elapsed = elapsed.Round(time.Millisecond)
	var errno syscall.Errno
	switch {
	case errors.Is(err, ErrMalformed):
		return fmt.Errorf("%s %s: %s: %w", proto, addr, op, err)
	case errors.Is(ctx.Err(), context.Canceled):
		return fmt.Errorf("%s %s: %s: %w after %s", proto, addr, op, context.Canceled, elapsed)
	case isTimeout(err) || ctx.Err() != nil:
		return fmt.Errorf("%s %s: %s: %w after %s", proto, addr, op, ErrTimeout, elapsed)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%s %s: %s: %w", proto, addr, op, ErrRefused)
	case errors.As(err, &errno) && (errno == syscall.EHOSTUNREACH || errno == syscall.ENETUNREACH):
		return fmt.Errorf("%s %s: %s: %w (%v)", proto, addr, op, ErrUnreachable, errno)
	case errors.As(err, &errno):
		return fmt.Errorf("%s %s: %s: %w", proto, addr, op, errno)
	}
	return fmt.Errorf("%s %s: %s: %w", proto, addr, op, err)
}
