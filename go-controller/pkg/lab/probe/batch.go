package probe

// Batch probing: many targets probed concurrently from one place, for
// connectivity matrices (network policy truth tables). Targets come in and
// results go out as JSON lines so that a test can drive `kovn-lab probe
// --batch` through a pipe.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Target is one probe of a batch: {"proto":"tcp","addr":"10.244.1.5:80"}.
type Target struct {
	Proto string `json:"proto"` // tcp, udp, or their 4/6 variants
	Addr  string `json:"addr"`  // IP:PORT ([IPv6]:PORT)
}

// Result is the outcome of one Target. Answered is true only when the test
// server replied with a well-formed identity line; anything else (timeout,
// refused, unreachable, something other than the test server answering) is
// not answered, with Error saying why and Kind classifying it.
type Result struct {
	Target
	Answered bool      `json:"answered"`
	Reply    *Reply    `json:"reply,omitempty"`
	Error    string    `json:"error,omitempty"`
	Kind     string    `json:"kind,omitempty"` // timeout, refused, unreachable, malformed, canceled, other
	Raw      string    `json:"raw,omitempty"`  // what was received when it was not a valid reply
	Start    time.Time `json:"start,omitzero"` // when the probe began (UTC)
	Millis   int64     `json:"ms"`             // how long it took
}

// Kinds of Result.Kind.
const (
	KindTimeout     = "timeout"
	KindRefused     = "refused"
	KindUnreachable = "unreachable"
	KindMalformed   = "malformed"
	KindCanceled    = "canceled"
	KindOther       = "other"
)

// ErrorKind classifies an error returned by Probe.
func ErrorKind(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrTimeout):
		return KindTimeout
	case errors.Is(err, ErrRefused):
		return KindRefused
	case errors.Is(err, ErrUnreachable):
		return KindUnreachable
	case errors.Is(err, ErrMalformed):
		return KindMalformed
	case errors.Is(err, context.Canceled):
		return KindCanceled
	}
	return KindOther
}

// maxBatch bounds a batch so a runaway producer cannot exhaust threads.
const maxBatch = 10000

// ReadTargets decodes JSON lines of Target from r; blank lines are skipped.
// Every target is validated (protocol, numeric IP address and port) before
// anything is probed, and errors name the line.
func ReadTargets(r io.Reader) ([]Target, error) {
	var out []Target
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var t Target
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&t); err != nil {
			return nil, fmt.Errorf("line %d: %v", n, err)
		}
		if dec.More() {
			return nil, fmt.Errorf("line %d: more than one JSON value", n)
		}
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("line %d: %v", n, err)
		}
		if len(out) == maxBatch {
			return nil, fmt.Errorf("line %d: more than %d targets", n, maxBatch)
		}
		out = append(out, t)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// Validate checks the protocol and that Addr is a numeric IP and port:
// batch probes never resolve names.
func (t Target) Validate() error {
	switch t.Proto {
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6":
	default:
		return fmt.Errorf("proto %q: want tcp or udp", t.Proto)
	}
	host, port, err := net.SplitHostPort(t.Addr)
	if err != nil {
		return fmt.Errorf("addr %q: %v", t.Addr, err)
	}
	if net.ParseIP(host) == nil {
		return fmt.Errorf("addr %q: %q is not an IP address", t.Addr, host)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("addr %q: invalid port %q", t.Addr, port)
	}
	return nil
}

// WriteResults encodes results as JSON lines, in order.
func WriteResults(w io.Writer, results []Result) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for _, r := range results {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// ReadResults decodes what WriteResults wrote.
func ReadResults(r io.Reader) ([]Result, error) {
	var out []Result
	dec := json.NewDecoder(r)
	for {
		var res Result
		err := dec.Decode(&res)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("result %d: %v", len(out)+1, err)
		}
		out = append(out, res)
	}
}

// Within runs f in the place probes must come from (typically a pod's
// network namespace, with the calling goroutine locked to its thread).
// Sockets created by f belong to that place.
type Within func(f func()) error

// ProbeAll probes every target with up to workers probes at a time, each
// bounded by timeout, and returns the results in the order of targets.
// Each worker enters the place once through within and runs its probes
// there, on its own locked thread. A target no worker could probe (within
// failed) gets that error as its result.
func ProbeAll(ctx context.Context, targets []Target, timeout time.Duration, workers int, within Within) []Result {
	results := make([]Result, len(targets))
	done := make([]bool, len(targets))
	if workers < 1 {
		workers = 1
	}
	if workers > len(targets) {
		workers = len(targets)
	}
	// feed stops when every worker is gone, even if none could enter.
	feedCtx, stopFeed := context.WithCancel(ctx)
	defer stopFeed()
	next := make(chan int)
	go func() {
		defer close(next)
		for i := range targets {
			select {
			case next <- i:
			case <-feedCtx.Done():
				return
			}
		}
	}()
	var mu sync.Mutex
	var enterErr error
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := within(func() {
				for i := range next {
					results[i] = probeOne(ctx, targets[i], timeout)
					done[i] = true
				}
			})
			if err != nil {
				mu.Lock()
				if enterErr == nil {
					enterErr = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	stopFeed()
	for i := range targets {
		if done[i] {
			continue
		}
		err := enterErr
		if err == nil {
			err = ctx.Err()
		}
		if err == nil {
			err = errors.New("not probed")
		}
		results[i] = Result{Target: targets[i], Error: err.Error(), Kind: ErrorKind(err)}
	}
	return results
}

func probeOne(ctx context.Context, t Target, timeout time.Duration) Result {
	start := time.Now()
	reply, raw, err := Probe(ctx, t.Proto, t.Addr, timeout)
	res := Result{Target: t, Start: start.UTC().Round(0), Millis: time.Since(start).Milliseconds()}
	if err != nil {
		res.Error, res.Kind, res.Raw = err.Error(), ErrorKind(err), raw
		return res
	}
	res.Answered, res.Reply = true, &reply
	return res
}
