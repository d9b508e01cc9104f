package queue_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/kovn-io/kovn/go-controller/pkg/controller/internal/ctltest"
	"github.com/kovn-io/kovn/go-controller/pkg/controller/queue"
)

const timeout = 10 * time.Second

func eventually(t *testing.T, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// run starts c and returns a function that stops it and waits for Run.
func run(t *testing.T, c *queue.Controller) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	stop := sync.OnceFunc(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(timeout):
			t.Error("Run did not return after cancel")
		}
	})
	t.Cleanup(stop)
	return stop
}

// recorder is a SyncFunc that remembers the keys it was called with.
type recorder struct {
	mu    sync.Mutex
	calls []string
	fail  map[string]int // key → failures left
}

func (r *recorder) sync(_ context.Context, key string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, key)
	if r.fail[key] > 0 {
		r.fail[key]--
		return errors.New("not yet")
	}
	return nil
}

func (r *recorder) snapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

func (r *recorder) count(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, k := range r.calls {
		if k == key {
			n++
		}
	}
	return n
}

func TestKeysAreSyncedAndFailuresRetried(t *testing.T) {
	reg := prometheus.NewRegistry()
	r := &recorder{fail: map[string]int{"flaky": 3}}
	c := queue.New("test", 2, queue.NewMetrics(reg), r.sync)
	run(t, c)
	for _, k := range []string{"a", "b", "flaky"} {
		c.Enqueue(k)
	}
	eventually(t, func() error {
		if r.count("a") != 1 || r.count("b") != 1 || r.count("flaky") != 4 || c.Len() != 0 || c.Busy() {
			return fmt.Errorf("calls %v", r.snapshot())
		}
		return nil
	})
	if ok, failed := ctltest.SyncCount(t, reg, "ok"), ctltest.SyncCount(t, reg, "error"); ok != 3 || failed != 3 {
		t.Errorf("syncs ok=%v error=%v, want 3 and 3", ok, failed)
	}
}

func TestEnqueueAfter(t *testing.T) {
	r := &recorder{}
	c := queue.New("test", 1, nil, r.sync)
	run(t, c)
	start := time.Now()
	c.EnqueueAfter("later", 100*time.Millisecond)
	eventually(t, func() error {
		if r.count("later") != 1 {
			return errors.New("not synced")
		}
		return nil
	})
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("synced after %v, before its delay", d)
	}
}

func TestOneKeyIsNeverSyncedConcurrently(t *testing.T) {
	var inside, overlaps, calls atomic.Int64
	c := queue.New("test", 4, nil, func(_ context.Context, key string) error {
		if inside.Add(1) > 1 {
			overlaps.Add(1)
		}
		time.Sleep(2 * time.Millisecond)
		inside.Add(-1)
		calls.Add(1)
		return nil
	})
	run(t, c)
	for range 50 {
		c.Enqueue("same")
		time.Sleep(200 * time.Microsecond)
	}
	eventually(t, func() error {
		if c.Len() > 0 || c.Busy() {
			return errors.New("busy")
		}
		return nil
	})
	if overlaps.Load() > 0 {
		t.Errorf("%d overlapping syncs of one key", overlaps.Load())
	}
	if n := calls.Load(); n < 1 || n > 50 {
		t.Errorf("%d calls", n)
	}
}

func TestHandlerEnqueuesObjectKeys(t *testing.T) {
	r := &recorder{}
	c := queue.New("test", 1, nil, r.sync)
	h := c.Handler()
	pod := func(ns, name string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	}
	h.OnAdd(pod("ns", "added"), false)
	h.OnUpdate(pod("ns", "updated"), pod("ns", "updated"))
	h.OnDelete(pod("ns", "deleted"))
	h.OnDelete(cache.DeletedFinalStateUnknown{Key: "ns/tombstone", Obj: pod("ns", "tombstone")})
	h.OnAdd(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}}, false)
	if c.Len() != 5 {
		t.Fatalf("%d keys queued, want 5", c.Len())
	}
	stop := run(t, c)
	eventually(t, func() error {
		if c.Len() > 0 || c.Busy() {
			return errors.New("busy")
		}
		return nil
	})
	stop()
	got := slices.Sorted(slices.Values(r.snapshot()))
	if want := []string{"node-1", "ns/added", "ns/deleted", "ns/tombstone", "ns/updated"}; !slices.Equal(got, want) {
		t.Errorf("synced %v, want %v", got, want)
	}
}

func TestRunStopsWithSyncInProgress(t *testing.T) {
	entered := make(chan struct{})
	c := queue.New("test", 1, nil, func(ctx context.Context, _ string) error {
		close(entered)
		<-ctx.Done()
		return ctx.Err()
	})
	stop := run(t, c)
	c.Enqueue("slow")
	<-entered
	if !c.Busy() {
		t.Error("not busy inside sync")
	}
	stop() // fails the test if Run does not return
	if c.Busy() {
		t.Error("still busy after Run returned")
	}
}
