package ctltest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/kovn-io/kovn/go-controller/pkg/controller/queue"
	"github.com/kovn-io/kovn/go-controller/pkg/metrics"
	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
)

// Instance is one run of a controller, with its own NB connection,
// Transactor, informer factory (on the Env's API) and metrics registry,
// as after a process start. The test builds the controller on them and
// calls Start, then Run; the test's cleanup stops the instance, or Stop
// does earlier (to restart).
type Instance struct {
	NB      client.Client
	Tx      *nbops.Transactor
	Reg     *prometheus.Registry
	Factory informers.SharedInformerFactory

	t       testing.TB
	ctx     context.Context
	q       *queue.Controller
	ran     bool
	runDone chan struct{}
	stop    func()
}

// NewInstance returns a new instance on the Env, not started yet.
func (e *Env) NewInstance() *Instance {
	e.t.Helper()
	nb := ConnectNB(e.t, e.NBAddr)
	return &Instance{NB: nb, Tx: nbops.NewTransactor(nb, nil), Reg: prometheus.NewRegistry(),
		Factory: informers.NewSharedInformerFactory(e.KC, 0), t: e.t, runDone: make(chan struct{})}
}

// NewProblems returns a problem reporter counting on the instance's
// registry, and the fake recorder it records Events on.
func (i *Instance) NewProblems() (*metrics.Problems, *record.FakeRecorder) {
	events := record.NewFakeRecorder(1000)
	return metrics.NewProblems(events, i.Reg), events
}

// AddHandler adds h to inf (an informer of the instance's Factory).
func (i *Instance) AddHandler(inf cache.SharedIndexInformer, h cache.ResourceEventHandler) {
	i.t.Helper()
	if _, err := inf.AddEventHandler(h); err != nil {
		i.t.Fatal(err)
	}
}

// Start starts the informers asked of the Factory so far, waits for their
// caches, and calls start (the controller's Start). q, the controller's
// queue, has no workers until Run.
func (i *Instance) Start(q *queue.Controller, start func(context.Context) error) {
	i.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	i.ctx, i.q = ctx, q
	i.Factory.Start(ctx.Done())
	i.Factory.WaitForCacheSync(ctx.Done())
	i.stop = sync.OnceFunc(func() {
		if i.ran {
			// Stop gracefully: a transaction abandoned by cancel stays in
			// flight at the server, and libovsdb's in-memory server (rpc2)
			// races when a client closes with two requests pending.
			WaitIdle(q)
		}
		cancel()
		if i.ran {
			<-i.runDone
		}
		i.Factory.Shutdown()
	})
	i.t.Cleanup(i.stop)
	if err := start(ctx); err != nil {
		i.t.Fatalf("Start: %v", err)
	}
}

// Run starts the queue's workers.
func (i *Instance) Run() {
	i.ran = true
	go func() { defer close(i.runDone); i.q.Run(i.ctx) }()
}

// Running runs i, a controller package's instance (which embeds
// *Instance), and returns it:
//
//	func (h *harness) start() *instance { return ctltest.Running(h.startNoRun()) }
func Running[I interface{ Run() }](i I) I {
	i.Run()
	return i
}

// Stop stops the instance: it lets the workers finish what is queued (for
// a bounded time), cancels, waits for them and shuts the informers down.
// Only the first call does anything.
func (i *Instance) Stop() { i.stop() }

// Syncs reads the queue's kovn_controller_syncs_total{result}.
func (i *Instance) Syncs(result string) float64 {
	n, _ := syncCount(i.Reg, result)
	return n
}

// WaitSynced waits for n successful syncs and an idle queue.
func (i *Instance) WaitSynced(t testing.TB, n int) {
	t.Helper()
	WaitFor(t, func() error {
		if ok := i.Syncs("ok"); ok < float64(n) || i.q.Len() > 0 || i.q.Busy() {
			return fmt.Errorf("%v of %d syncs ok, %v failed, %d queued", ok, n, i.Syncs("error"), i.q.Len())
		}
		return nil
	})
}

// Settle waits until the queue has been idle for a while, and fails the
// test if it does not go idle within WaitTimeout.
func (i *Instance) Settle(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	if !queue.WaitIdle(ctx, 100*time.Millisecond, i.q) {
		t.Fatal("queue did not go idle")
	}
}

// Txns is the number of transactions the instance has sent.
func (i *Instance) Txns() uint64 {
	n, _ := i.Tx.Stats()
	return n
}

// Delta returns a function that reports the transactions and ops the
// instance has sent since Delta was called.
func (i *Instance) Delta() func() (txns, ops uint64) {
	t0, o0 := i.Tx.Stats()
	return func() (uint64, uint64) {
		t1, o1 := i.Tx.Stats()
		return t1 - t0, o1 - o0
	}
}
