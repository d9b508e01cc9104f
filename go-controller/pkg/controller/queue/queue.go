// Package queue is kovn's one controller shape: informer events become keys
// in a rate-limited workqueue, and workers call sync(key) until it returns
// nil. sync reads caches, computes the desired state and applies it; it is
// idempotent, so a key may be synced any number of times.
package queue

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

// SyncFunc brings one key to its desired state.
type SyncFunc func(ctx context.Context, key string) error

// Controller runs sync for keys with a fixed number of workers.
type Controller struct {
	name    string
	workers int
	sync    SyncFunc
	q       workqueue.TypedRateLimitingInterface[string]
	m       *Metrics
	busy    atomic.Int64
}

// Metrics are shared by every controller of a process, labelled by name.
type Metrics struct {
	syncs    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	depth    *prometheus.GaugeVec
}

// NewMetrics registers the controller metrics (reg may be nil in tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kovn_controller_syncs_total", Help: "sync calls by controller and result",
		}, []string{"controller", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kovn_controller_sync_duration_seconds", Help: "time spent in sync",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"controller"}),
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kovn_controller_queue_depth", Help: "keys waiting",
		}, []string{"controller"}),
	}
	if reg != nil {
		reg.MustRegister(m.syncs, m.duration, m.depth)
	}
	return m
}

// New builds a controller; Enqueue keys, then Run.
func New(name string, workers int, m *Metrics, sync SyncFunc) *Controller {
	if m == nil {
		m = NewMetrics(nil)
	}
	rl := workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](5*time.Millisecond, 30*time.Second),
	)
	return &Controller{
		name: name, workers: workers, sync: sync, m: m,
		q: workqueue.NewTypedRateLimitingQueueWithConfig(rl, workqueue.TypedRateLimitingQueueConfig[string]{Name: name}),
	}
}

// Name is the controller's name, its metrics' controller label.
func (c *Controller) Name() string { return c.name }

// Enqueue schedules a key.
func (c *Controller) Enqueue(key string) { c.q.Add(key) }

// EnqueueAfter schedules a key later (e.g. waiting on something outside
// the API that has no event of its own).
func (c *Controller) EnqueueAfter(key string, d time.Duration) { c.q.AddAfter(key, d) }

// Len is the number of keys waiting.
func (c *Controller) Len() int { return c.q.Len() }

// Busy tells whether a worker is inside sync right now.
func (c *Controller) Busy() bool { return c.busy.Load() > 0 }

// Handler returns informer event handlers that enqueue the object's key.
func (c *Controller) Handler() cache.ResourceEventHandler {
	add := func(obj interface{}) {
		key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
		if err != nil {
			runtime.HandleError(fmt.Errorf("%s: key of %T: %w", c.name, obj, err))
			return
		}
		c.q.Add(key)
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    add,
		UpdateFunc: func(_, obj interface{}) { add(obj) },
		DeleteFunc: add,
	}
}

// Run processes keys until ctx ends.
func (c *Controller) Run(ctx context.Context) {
	defer c.q.ShutDown()
	var wg sync.WaitGroup
	for i := 0; i < c.workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c.next(ctx) {
			}
		}()
	}
	<-ctx.Done()
	c.q.ShutDown()
	wg.Wait()
}

func (c *Controller) next(ctx context.Context) bool {
	key, quit := c.q.Get()
	if quit {
		return false
	}
	defer c.q.Done(key)
	c.busy.Add(1)
	defer c.busy.Add(-1)
	c.m.depth.WithLabelValues(c.name).Set(float64(c.q.Len()))
	start := time.Now()
	err := c.sync(ctx, key)
	c.m.duration.WithLabelValues(c.name).Observe(time.Since(start).Seconds())
	if err == nil {
		c.m.syncs.WithLabelValues(c.name, "ok").Inc()
		c.q.Forget(key)
		return true
	}
	c.m.syncs.WithLabelValues(c.name, "error").Inc()
	if ctx.Err() != nil {
		return true
	}
	// Always logged: a failing object must be findable by its key; the
	// rate limiter spaces the retries, and so these lines.
	klog.ErrorS(err, "sync failed, will retry", "controller", c.name, "key", key)
	c.q.AddRateLimited(key)
	return true
}

// Idle is true when no key waits and no worker is inside sync.
func (c *Controller) Idle() bool { return c.q.Len() == 0 && !c.Busy() }

// WaitIdle returns once every queue has been idle, all at once, for the
// given quiet period (keys that a sync enqueues for another controller
// show up within it), or when ctx ends. It reports whether they went idle.
func WaitIdle(ctx context.Context, quiet time.Duration, qs ...*Controller) bool {
	idleSince := time.Now()
	for ctx.Err() == nil {
		for _, q := range qs {
			if !q.Idle() {
				idleSince = time.Now()
				break
			}
		}
		if time.Since(idleSince) >= quiet {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false
}
