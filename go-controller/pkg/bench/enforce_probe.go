package bench

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"golang.org/x/sys/unix"

	"github.com/kovn-io/kovn/go-controller/pkg/lab/probe"
)

// Kinds of an enforce probe's outcome. Only ProbeAnswered counts as
// answered for the latencies; the others tell why a probe was not.
const (
	ProbeAnswered = "answered" // the server's reply line within the probe timeout
	ProbeLate     = "late"     // the reply came, but after the probe timeout
	ProbeRefused  = "refused"  // the SYN was answered by a RST (ECONNREFUSED): a reject
	ProbeDropped  = "dropped"  // no SYN-ACK within the late limit
	ProbeStalled  = "stalled"  // connected, but no reply line within the late limit
	ProbeReset    = "reset"    // connected, then reset or closed before a full reply
	ProbeError    = "error"    // anything else: unreachable, a malformed reply, a local error
)

// probeKinds lists the kinds in the order reports show them.
var probeKinds = []string{ProbeAnswered, ProbeLate, ProbeRefused, ProbeDropped, ProbeStalled, ProbeReset, ProbeError}

// DefaultLateLimit is how long a probe that missed its timeout is kept
// going to learn its real outcome: past two SYN retransmissions (1 s, 3 s
// after the first SYN) would be more, but one is what a restore needs.
const DefaultLateLimit = 3 * time.Second

// probeOutcome is what one probe found out.
type probeOutcome struct {
	Kind string
	// Took is start → the reply, the error, or the late limit.
	Took time.Duration
	// Connect is start → connect's end (SYN-ACK, RST or error); zero
	// when connect was still waiting at the late limit.
	Connect time.Duration
	// SynRetrans is how many times the kernel sent the SYN again before
	// connect ended (TCP_INFO's total_retrans), or by the late limit.
	SynRetrans int
	Err        string
	netnsErr   error // no socket in the client's netns: no outcome at all
}

// tcpProbe connects from netns to the test server at addr, sends it a
// newline and reads its reply line, as probe.Probe does (which sends
// nothing), but reports the outcome by kind: it
// keeps going after timeout, up to lateLimit after start, to tell a late
// answer from a drop. inTime is called once, as soon as it is known
// whether the reply came within timeout (true) or not (false); a probe
// that ended in an error before timeout calls it with false too.
//
// Only the socket is made inside the network namespace: connect and read
// use the socket's namespace whatever thread they run on, so a probe
// waiting for seconds holds no locked OS thread.
func tcpProbe(netns ns.NetNS, addr netip.AddrPort, start time.Time, timeout, lateLimit time.Duration, inTime func(bool)) probeOutcome {
	reported := false
	report := func(answered bool) {
		if !reported {
			reported = true
			inTime(answered)
		}
	}
	o := tcpProbeOnce(netns, addr, start, timeout, lateLimit, report)
	report(o.Kind == ProbeAnswered)
	return o
}

func tcpProbeOnce(netns ns.NetNS, addr netip.AddrPort, start time.Time, timeout, lateLimit time.Duration, report func(bool)) probeOutcome {
	fail := func(kind string, err error) probeOutcome {
		return probeOutcome{Kind: kind, Took: time.Since(start), Err: err.Error()}
	}
	c, err := socketIn(netns, addr.Addr())
	if err != nil {
		o := fail(ProbeError, err)
		o.netnsErr = err
		return o
	}
	defer c.Close()
	rc, err := c.SyscallConn()
	if err != nil {
		return fail(ProbeError, err)
	}
	var out probeOutcome
	// Wait first up to the timeout, then (not answered in time) up to the
	// late limit: a deadline can be moved after it expired.
	c.SetDeadline(start.Add(timeout))
	extend := func() bool {
		if time.Since(start) >= lateLimit {
			return false
		}
		report(false)
		c.SetDeadline(start.Add(lateLimit))
		return true
	}
	cerr := connect(rc, addr)
	if errors.Is(cerr, os.ErrDeadlineExceeded) && extend() {
		cerr = connect(rc, addr)
	}
	out.SynRetrans = synRetrans(rc)
	if cerr != nil {
		o := classify(cerr, false)
		o.Took, o.SynRetrans = time.Since(start), out.SynRetrans
		if o.Kind != ProbeDropped {
			o.Connect = o.Took
		}
		return o
	}
	out.Connect = time.Since(start)
	// The test server waits 150 ms for an HTTP request line before it
	// sends a client that says nothing its raw line; with a 200 ms probe
	// timeout, 50 ms of scheduling delay on a loaded machine then made an
	// answered probe look refused. A bare newline is no HTTP request: the
	// server answers with the raw line at once.
	if _, err := c.Write([]byte("\n")); err != nil {
		o := classify(err, true)
		out.Kind, out.Err, out.Took = o.Kind, o.Err, time.Since(start)
		return out
	}
	br := bufio.NewReader(io.LimitReader(c, 4096))
	var line string
	for {
		s, rerr := br.ReadString('\n')
		line += s
		if errors.Is(rerr, os.ErrDeadlineExceeded) && extend() {
			continue
		}
		out.Took = time.Since(start)
		if rerr != nil {
			o := classify(rerr, true)
			out.Kind, out.Err = o.Kind, o.Err
			return out
		}
		break
	}
	if _, err := probe.Parse(line); err != nil {
		out.Kind, out.Err = ProbeError, err.Error()
		return out
	}
	out.Kind = ProbeLate
	if out.Took <= timeout {
		out.Kind = ProbeAnswered
	}
	return out
}

// classify names a failed connect's (connected false) or read's error.
func classify(err error, connected bool) probeOutcome {
	o := probeOutcome{Kind: ProbeError, Err: err.Error()}
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded) && connected:
		o.Kind = ProbeStalled
	case errors.Is(err, os.ErrDeadlineExceeded):
		o.Kind = ProbeDropped
	case errors.Is(err, syscall.ECONNREFUSED):
		o.Kind = ProbeRefused
	case connected && (errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, io.EOF)):
		o.Kind = ProbeReset
	}
	return o
}

// socketIn makes a non-blocking TCP socket in netns, not yet connected,
// and hands it to Go's poller.
func socketIn(netns ns.NetNS, to netip.Addr) (*net.TCPConn, error) {
	family := unix.AF_INET
	if to.Is6() && !to.Is4In6() {
		family = unix.AF_INET6
	}
	fd := -1
	err := netns.Do(func(ns.NetNS) error {
		var err error
		fd, err = unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("socket in %s: %w", netns.Path(), err)
	}
	f := os.NewFile(uintptr(fd), "probe")
	defer f.Close() // FileConn holds a duplicate
	c, err := net.FileConn(f)
	if err != nil {
		return nil, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("socket is a %T", c)
	}
	return tc, nil
}

// connect starts or goes on waiting for a non-blocking connect, as the
// net package's own dial does; it returns os.ErrDeadlineExceeded at the
// conn's write deadline, after which it may be called again.
func connect(rc syscall.RawConn, addr netip.AddrPort) error {
	var cerr error
	werr := rc.Write(func(fd uintptr) bool {
		// SO_ERROR first: a connect that already failed reports it here.
		v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
		if err != nil {
			cerr = err
			return true
		}
		if v != 0 {
			cerr = syscall.Errno(v)
			return true
		}
		if _, err := unix.Getpeername(int(fd)); err == nil {
			return true
		}
		switch err := unix.Connect(int(fd), sockaddr(addr)); err {
		case nil, unix.EISCONN:
			return true
		case unix.EINPROGRESS, unix.EALREADY, unix.EINTR:
			return false // wait until writable
		default:
			cerr = err
			return true
		}
	})
	return cmp.Or(werr, cerr)
}

func sockaddr(a netip.AddrPort) unix.Sockaddr {
	if ip := a.Addr(); ip.Is4() || ip.Is4In6() {
		return &unix.SockaddrInet4{Port: int(a.Port()), Addr: ip.Unmap().As4()}
	}
	return &unix.SockaddrInet6{Port: int(a.Port()), Addr: a.Addr().As16()}
}

// synRetrans reads how often the socket's kernel retransmitted: before
// the connection is established those are SYNs.
func synRetrans(rc syscall.RawConn) int {
	n := 0
	rc.Control(func(fd uintptr) {
		if ti, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			n = int(ti.Total_retrans)
		}
	})
	return n
}

// EnforceTraceEnv names a file that enforce appends every probe to, one
// JSON line each, when set: the raw material behind the counts.
const EnforceTraceEnv = "KOVN_BENCH_ENFORCE_TRACE"

type traceLine struct {
	Round      int     `json:"round"`
	Client     string  `json:"client"`
	AtMs       float64 `json:"atMs"` // probe start after t0 (the deny policy's create)
	T1Ms       float64 `json:"t1Ms"` // the delete, after t0
	Answered   bool    `json:"answered"`
	Kind       string  `json:"kind"`
	TookMs     float64 `json:"tookMs"`
	ConnectMs  float64 `json:"connectMs"`
	SynRetrans int     `json:"synRetrans"`
	Err        string  `json:"err,omitempty"`
}

// trace appends a round's probes to $KOVN_BENCH_ENFORCE_TRACE.
func (o EnforceOptions) trace(round int, c enforceClient, t0, t1 time.Time, recs []probeRecord) error {
	path := os.Getenv(EnforceTraceEnv)
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, r := range recs {
		enc.Encode(traceLine{Round: round, Client: c.kind, AtMs: ms(r.Start.Sub(t0)), T1Ms: ms(t1.Sub(t0)), Answered: r.Answered,
			Kind: r.Kind, TookMs: ms(r.Took), ConnectMs: ms(r.Connect), SynRetrans: r.SynRetrans, Err: r.Err})
	}
	return errors.Join(w.Flush(), f.Close())
}
