package probe

import (
	"bytes"
	"context"
	"errors"
	"net"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestReadTargets(t *testing.T) {
	in := `{"proto":"tcp","addr":"10.244.1.5:80"}

  {"proto":"udp","addr":"10.244.2.7:81"}
{"proto":"tcp6","addr":"[fd00::1]:8080"}
`
	got, err := ReadTargets(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Target{{"tcp", "10.244.1.5:80"}, {"udp", "10.244.2.7:81"}, {"tcp6", "[fd00::1]:8080"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if got, err := ReadTargets(strings.NewReader("")); err != nil || len(got) != 0 {
		t.Fatalf("empty input: %v, %v", got, err)
	}
	for _, tc := range []struct{ in, wantErr string }{
		{`{"proto":"sctp","addr":"10.0.0.1:80"}`, `line 1: proto "sctp"`},
		{`{"proto":"tcp","addr":"10.0.0.1"}`, `line 1: addr "10.0.0.1"`},
		{`{"proto":"tcp","addr":"example.com:80"}`, "not an IP address"},
		{`{"proto":"tcp","addr":"10.0.0.1:0"}`, "invalid port"},
		{`{"proto":"tcp","addr":"10.0.0.1:http"}`, "invalid port"},
		{`{"proto":"tcp","addr":"10.0.0.1:80","port":1}`, "unknown field"},
		{"{\"proto\":\"tcp\",\"addr\":\"10.0.0.1:80\"}\n{\"proto\":", "line 2:"},
		{`{"proto":"tcp","addr":"10.0.0.1:80"} {"proto":"tcp","addr":"10.0.0.1:81"}`, "more than one JSON value"},
		{`tcp 10.0.0.1:80`, "line 1: invalid character"},
	} {
		_, err := ReadTargets(strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("ReadTargets(%q) = %v, want an error containing %q", tc.in, err, tc.wantErr)
		}
	}
}

func TestResultsRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 21, 10, 0, 0, 123456789, time.UTC)
	rs := []Result{
		{Target: Target{"tcp", "10.0.0.1:80"}, Answered: true, Reply: &Reply{Pod: "x/a", Node: "n1", Client: "10.0.0.2"}, Start: at, Millis: 3},
		{Target: Target{"udp", "10.0.0.1:81"}, Error: "udp 10.0.0.1:81: read: timed out after 1.5s", Kind: KindTimeout, Millis: 1500},
		{Target: Target{"tcp", "10.0.0.1:81"}, Error: "bad", Kind: KindMalformed, Raw: "<html>\n"},
	}
	var buf bytes.Buffer
	if err := WriteResults(&buf, rs); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != len(rs) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(rs), buf.String())
	}
	if want := `{"proto":"tcp","addr":"10.0.0.1:80","answered":true,"reply":{"pod":"x/a","node":"n1","client":"10.0.0.2"},"start":"2026-11-21T10:00:00.123456789Z","ms":3}`; lines[0] != want {
		t.Errorf("line 1 = %s\nwant     %s", lines[0], want)
	}
	if want := `{"proto":"udp","addr":"10.0.0.1:81","answered":false,"error":"udp 10.0.0.1:81: read: timed out after 1.5s","kind":"timeout","ms":1500}`; lines[1] != want {
		t.Errorf("line 2 = %s\nwant     %s", lines[1], want)
	}
	back, err := ReadResults(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, rs) {
		t.Fatalf("round trip: got %+v, want %+v", back, rs)
	}
	if _, err := ReadResults(strings.NewReader(`{"answered":true}` + "\n{")); err == nil {
		t.Error("ReadResults accepted a truncated line")
	}
}

func TestErrorKind(t *testing.T) {
	for err, want := range map[error]string{
		nil:                            "",
		ErrTimeout:                     KindTimeout,
		errors.Join(ErrRefused):        KindRefused,
		ErrUnreachable:                 KindUnreachable,
		ErrMalformed:                   KindMalformed,
		context.Canceled:               KindCanceled,
		errors.New("no route to mars"): KindOther,
	} {
		if got := ErrorKind(err); got != want {
			t.Errorf("ErrorKind(%v) = %q, want %q", err, got, want)
		}
	}
}

func direct(f func()) error { f(); return nil }

// TestProbeAll: answered, refused and silent targets in one batch, probed
// concurrently (the silent ones would take 10 × 300ms one after another),
// results in input order.
func TestProbeAll(t *testing.T) {
	good := tcpServer(t, func(c net.Conn) { c.Write(want.Line()) })
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	silent := tcpServer(t, func(net.Conn) { <-hang })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close()
	var got atomic.Int32
	udp := udpServer(t, 0, &got)

	var targets []Target
	for i := 0; i < 10; i++ {
		targets = append(targets, Target{"tcp", silent})
	}
	targets = append(targets, Target{"tcp", good}, Target{"tcp", refused}, Target{"udp", udp})
	var entered atomic.Int32
	within := func(f func()) error { entered.Add(1); f(); return nil }
	start := time.Now()
	rs := ProbeAll(context.Background(), targets, 300*time.Millisecond, 64, within)
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("batch took %s: not concurrent", d)
	}
	if n := entered.Load(); n != int32(len(targets)) {
		t.Errorf("entered %d times, want one per worker (%d)", n, len(targets))
	}
	if len(rs) != len(targets) {
		t.Fatalf("%d results for %d targets", len(rs), len(targets))
	}
	for i, r := range rs {
		if r.Target != targets[i] {
			t.Errorf("result %d is for %+v, want %+v", i, r.Target, targets[i])
		}
	}
	for i, r := range rs {
		if r.Start.Before(start) || r.Start.After(time.Now()) {
			t.Errorf("result %d: start %s outside the batch", i, r.Start)
		}
	}
	for _, r := range rs[:10] {
		if r.Answered || r.Kind != KindTimeout || r.Millis < 250 {
			t.Errorf("silent: %+v", r)
		}
	}
	if r := rs[10]; !r.Answered || r.Reply == nil || *r.Reply != want || r.Error != "" {
		t.Errorf("good: %+v", r)
	}
	if r := rs[11]; r.Answered || r.Kind != KindRefused {
		t.Errorf("refused: %+v", r)
	}
	if r := rs[12]; !r.Answered || *r.Reply != want {
		t.Errorf("udp: %+v", r)
	}
}

// TestProbeAllWithinFails: a worker that cannot enter leaves its share to
// the others; when none can, every target reports the error.
func TestProbeAllWithinFails(t *testing.T) {
	addr := tcpServer(t, func(c net.Conn) { c.Write(want.Line()) })
	targets := []Target{{"tcp", addr}, {"tcp", addr}, {"tcp", addr}, {"tcp", addr}}
	var calls atomic.Int32
	someFail := func(f func()) error {
		if calls.Add(1)%2 == 0 {
			return errors.New("netns gone")
		}
		f()
		return nil
	}
	for i, r := range ProbeAll(context.Background(), targets, time.Second, 4, someFail) {
		if !r.Answered {
			t.Errorf("some workers failing: result %d = %+v", i, r)
		}
	}
	allFail := func(func()) error { return errors.New("netns gone") }
	for i, r := range ProbeAll(context.Background(), targets, time.Second, 2, allFail) {
		if r.Answered || r.Error != "netns gone" || r.Kind != KindOther || r.Target != targets[i] || !r.Start.IsZero() {
			t.Errorf("all workers failing: result %d = %+v", i, r)
		}
	}
	if rs := ProbeAll(context.Background(), nil, time.Second, 8, direct); len(rs) != 0 {
		t.Errorf("no targets: %+v", rs)
	}
}
