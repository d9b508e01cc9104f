package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

func TestSettleLatency(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	// train: one probe every 10 ms from startMs, outcome by index ('a'
	// answered, 'r' refused, '?' still running).
	train := func(startMs int, outcomes string) []probeRecord {
		var out []probeRecord
		for i, c := range outcomes {
			out = append(out, probeRecord{Start: at(startMs + 10*i), Done: c != '?', Answered: c == 'a'})
		}
		return out
	}
	settle := 50 * time.Millisecond
	for _, tc := range []struct {
		name    string
		recs    []probeRecord
		want    bool
		latency time.Duration
		flaps   int
		ok      bool
	}{
		{name: "immediate deny", recs: train(0, "rrrrrrrr"), want: false, latency: 0, ok: true},
		{name: "immediate restore", recs: train(0, "aaaaaaaa"), want: true, latency: 0, ok: true},
		{name: "deny after three answers", recs: train(0, "aaarrrrrrrr"), want: false, latency: 30 * time.Millisecond, ok: true},
		{name: "flap", recs: train(0, "arrarrrrrrrr"), want: false, latency: 40 * time.Millisecond, flaps: 1, ok: true},
		{name: "two flaps on restore", recs: train(0, "rarraraaaaaaa"), want: true, latency: 60 * time.Millisecond, flaps: 2, ok: true},
		{name: "never settles", recs: train(0, "arararararararar"), want: false, flaps: 7, ok: false},
		{name: "never changes", recs: train(0, "aaaaaaaaaaaa"), want: false, ok: false},
		// Refused probes before t0 are the last round's, not this one's.
		{name: "probes before t0 ignored", recs: train(-50, "rrrrraarrrrrrr"), want: false, latency: 20 * time.Millisecond, ok: true},
		{name: "window not over yet", recs: train(0, "rrrrrr"), want: false, ok: false},
		{name: "running probe inside the window", recs: train(0, "rrr?rrrr"), want: false, ok: false},
		{name: "running probe before the first change", recs: train(0, "a?rrrrrrr"), want: false, ok: false},
		// Past the window a probe may run still: the window is known.
		{name: "running probe after the window", recs: train(0, "rrrrrr??"), want: false, latency: 0, ok: true},
		{name: "out of order", recs: reversed(train(0, "aarrrrrrr")), want: false, latency: 20 * time.Millisecond, ok: true},
		{name: "none", recs: nil, want: true, ok: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			latency, flaps, ok := settleLatency(tc.recs, t0, tc.want, settle)
			if latency != tc.latency || flaps != tc.flaps || ok != tc.ok {
				t.Errorf("got %v, %d flaps, ok %v; want %v, %d flaps, ok %v", latency, flaps, ok, tc.latency, tc.flaps, tc.ok)
			}
		})
	}
}

func reversed(recs []probeRecord) []probeRecord {
	out := make([]probeRecord, len(recs))
	for i, r := range recs {
		out[len(recs)-1-i] = r
	}
	return out
}

func TestEnforceOptions(t *testing.T) {
	if err := DefaultEnforce().Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	for name, mod := range map[string]func(*EnforceOptions){
		"no rounds":                  func(o *EnforceOptions) { o.Rounds = 0 },
		"no interval":                func(o *EnforceOptions) { o.Interval = 0 },
		"same node elsewhere":        func(o *EnforceOptions) { o.SameNodeClient = "node2" },
		"other node is the server's": func(o *EnforceOptions) { o.OtherNodeClient = o.ServerNode },
	} {
		o := DefaultEnforce()
		mod(&o)
		if o.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestEnforceRows(t *testing.T) {
	p := denyPolicy()
	if len(p.Spec.Ingress) != 0 || len(p.Spec.PolicyTypes) != 1 || p.Spec.PodSelector.MatchLabels["app"] != "server" {
		t.Errorf("deny policy: %+v", p.Spec)
	}
	r := &Report{Scenario: "enforce", Enforce: &EnforceResult{Rounds: 2, Clients: []EnforceClient{
		{Kind: "same-node", Rounds: 2, Deny: Summarise([]time.Duration{30 * time.Millisecond, 50 * time.Millisecond})},
		{Kind: "other-node"}, // failed before its first round: no figures
	}}}
	var b bytes.Buffer
	r.PrintTable(&b)
	out := b.String()
	if !strings.Contains(out, "enforce same-node: deny policy → first refused probe") || !strings.Contains(out, "p50 30 ms") {
		t.Errorf("table:\n%s", out)
	}
	if strings.Contains(out, "other-node:") {
		t.Errorf("a client without figures got rows:\n%s", out)
	}
}

// TestProberSteady runs the probers and steady against a local test
// server in our own network namespace, which it then closes.
func TestProberSteady(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("entering a network namespace needs CAP_SYS_ADMIN")
	}
	ln := serve(t, testServer)
	o := EnforceOptions{Interval: 5 * time.Millisecond, ProbeTimeout: 200 * time.Millisecond, Settle: 50 * time.Millisecond, Timeout: 5 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	c := enforceClient{kind: "same-node", pod: "client-same", netns: "/proc/self/ns/net"}
	p, err := startProber(ctx, c, ln.Addr().String(), o.Interval, o.ProbeTimeout, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); p.wait() }()
	ps := []*prober{p}
	if _, _, err := steady(ctx, o, ps, time.Now(), true, "up"); err != nil {
		t.Fatal(err)
	}
	t1 := time.Now()
	ln.Close()
	lat, flaps, err := steady(ctx, o, ps, t1, false, "closed")
	if err != nil {
		t.Fatal(err)
	}
	if lat[0] > 100*time.Millisecond || flaps[0] != 0 {
		t.Errorf("closed: refused after %v with %d flaps", lat[0], flaps[0])
	}
	o.Timeout = 200 * time.Millisecond
	_, _, err = steady(ctx, o, ps, time.Now(), true, "reopened")
	if err == nil || !strings.Contains(err.Error(), "client-same (same-node): 0 answered") {
		t.Errorf("never answered again: %v", err)
	}
	recs, err := p.snapshot()
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(recs); i++ {
		if recs[i].Start.Before(recs[i-1].Start) {
			t.Fatalf("record %d began before record %d", i, i-1)
		}
	}
}

func TestEnforceProbesAdd(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// One probe every 10 ms from -20 ms; a kind per letter: a answered,
	// l late, d dropped, r refused, s stalled; '?' running.
	kinds := map[rune]string{'a': ProbeAnswered, 'l': ProbeLate, 'd': ProbeDropped, 'r': ProbeRefused, 's': ProbeStalled}
	var recs []probeRecord
	for i, c := range "aadaldaaddddddla?" {
		r := probeRecord{Start: t0.Add(time.Duration(10*i-20) * time.Millisecond), Done: c != '?', Answered: c == 'a'}
		r.Kind = kinds[c]
		if c == 'l' {
			r.SynRetrans = 1
		}
		recs = append(recs, r)
	}
	// Deny step: from t0 to 120 ms, latency 60 ms (the first of "dddddd").
	var e EnforceProbes
	e.add(3, recs, t0, t0.Add(120*time.Millisecond), false, 60*time.Millisecond)
	want := map[string]int{ProbeAnswered: 3, ProbeLate: 1, ProbeDropped: 8}
	if fmt.Sprint(e.Kinds) != fmt.Sprint(want) || e.SynRetrans != 1 {
		t.Errorf("kinds %v (%d SYN resent), want %v (1)", e.Kinds, e.SynRetrans, want)
	}
	// The first refusal at 0 ms; then answered at 10, late (not answered
	// in time: no flap), dropped, answered at 40 and 50 ms.
	if len(e.Flaps) != 3 || e.Flaps[0].AtMs != 10 || e.Flaps[2].AtMs != 50 || e.FlapKinds[ProbeAnswered] != 3 {
		t.Fatalf("flaps %+v (%v)", e.Flaps, e.FlapKinds)
	}
	if f := e.Flaps[0]; f.Round != 3 || f.FirstMs != 0 || f.LatencyMs != 60 || f.Kind != ProbeAnswered {
		t.Errorf("flap %+v", f)
	}
	// Restore step from 120 ms to the end: late, answered, running; the
	// running one is counted as such.
	var r EnforceProbes
	r.add(3, recs, t0.Add(120*time.Millisecond), time.Time{}, true, 10*time.Millisecond)
	if r.Kinds[ProbeLate] != 1 || r.Kinds[ProbeAnswered] != 1 || r.Kinds["running"] != 1 || len(r.Flaps) != 0 {
		t.Errorf("restore %+v", r)
	}
	// Counts add up over rounds.
	r.add(4, recs, t0.Add(120*time.Millisecond), time.Time{}, true, 10*time.Millisecond)
	if r.Kinds[ProbeLate] != 2 || r.SynRetrans != 2 {
		t.Errorf("two rounds %+v", r)
	}
	if s := e.String(); s != "3 answered, 1 late, 8 dropped; SYN resent 1; flap probes: 3 answered" {
		t.Errorf("cell %q", s)
	}
}
