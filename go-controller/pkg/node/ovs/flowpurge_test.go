package ovs

import (
	"context"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestFlowPurgerBursts: a monitor start counts as one change, a burst of
// changes gives one purge after it goes quiet, a never-ending burst still
// purges within MaxDelay, and a monitor that ends is restarted.
func TestFlowPurgerBursts(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	monitors := make(chan *io.PipeWriter, 4)
	var purges atomic.Int32
	purged := make(chan struct{}, 16)
	p := &FlowPurger{
		Bridge: "br-int", Quiet: 50 * time.Millisecond, MaxDelay: 300 * time.Millisecond,
		Monitor: func(ctx context.Context, bridge string) (io.ReadCloser, func() error, error) {
			r, w := io.Pipe()
			monitors <- w
			return r, func() error { return nil }, nil
		},
		Purge: func(context.Context) error { purges.Add(1); return nil },
		Purged: func(reason string, err error) {
			if reason != "change" || err != nil {
				t.Errorf("purge for %q (err %v), want only purges after changes", reason, err)
			}
			purged <- struct{}{}
		},
	}
	go p.Run(ctx)
	w := <-monitors
	waitPurge := func(what string, within time.Duration) {
		t.Helper()
		select {
		case <-purged:
		case <-time.After(within):
			t.Fatalf("%s: no purge within %v", what, within)
		}
	}
	noPurge := func(what string, d time.Duration) {
		t.Helper()
		select {
		case <-purged:
			t.Fatalf("%s: unexpected purge", what)
		case <-time.After(d):
		}
	}
	waitPurge("monitor start", time.Second)
	noPurge("idle", 150*time.Millisecond)

	// A burst: ten changes 10 ms apart, then quiet: exactly one purge.
	for i := 0; i < 10; i++ {
		io.WriteString(w, " event=ADDED table=44 cookie=0x1 ip\n")
		time.Sleep(10 * time.Millisecond)
	}
	waitPurge("burst", time.Second)
	noPurge("after the burst", 150*time.Millisecond)

	// Lines that are not flow events change nothing.
	io.WriteString(w, "NXST_FLOW_MONITOR reply (xid=0x0):\n")
	noPurge("non-event line", 150*time.Millisecond)

	// Changes every 20 ms for 600 ms: the purge comes within MaxDelay.
	start := time.Now()
	stop := time.After(600 * time.Millisecond)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				io.WriteString(w, " event=DELETED table=46 cookie=0x2 tcp\n")
			}
		}
	}()
	waitPurge("endless burst", 450*time.Millisecond)
	if d := time.Since(start); d > 450*time.Millisecond {
		t.Errorf("first purge of an endless burst after %v, want about MaxDelay", d)
	}
	<-done
	for len(purged) > 0 {
		<-purged
	}
	time.Sleep(100 * time.Millisecond)
	for len(purged) > 0 {
		<-purged
	}

	// The monitor ends (ovs-vswitchd restarted): a new one is started and
	// counts as a change.
	w.Close()
	select {
	case w = <-monitors:
	case <-time.After(3 * time.Second):
		t.Fatal("monitor not restarted")
	}
	waitPurge("restarted monitor", 2*time.Second)
	if !strings.HasPrefix(p.Bridge, "br-") || purges.Load() < 4 {
		t.Errorf("purges %d, want at least 4", purges.Load())
	}
}

// TestFlowPurgerPeriodic: with Every set and no change at all after the
// monitor's start, purges still come about every Every.
func TestFlowPurgerPeriodic(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reasons := make(chan string, 64)
	p := &FlowPurger{
		Bridge: "br-int", Quiet: 10 * time.Millisecond, MaxDelay: 50 * time.Millisecond, Every: 40 * time.Millisecond,
		Monitor: func(ctx context.Context, bridge string) (io.ReadCloser, func() error, error) {
			r, _ := io.Pipe()
			return r, func() error { return nil }, nil
		},
		Purge:  func(context.Context) error { return nil },
		Purged: func(reason string, err error) { reasons <- reason },
	}
	go p.Run(ctx)
	time.Sleep(300 * time.Millisecond)
	cancel()
	n := map[string]int{}
	for len(reasons) > 0 {
		n[<-reasons]++
	}
	if n["change"] != 1 || n["periodic"] < 3 {
		t.Errorf("purges by reason %v, want 1 after the monitor started and at least 3 periodic ones in 300 ms", n)
	}
}
