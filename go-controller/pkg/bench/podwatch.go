package bench

import (
	"cmp"
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// podWatch stamps, with kovn-bench's clock, when each pod of the watched
// namespaces first reaches kovn-bench's informer as an ADDED event: about
// when any watcher of the API server, kovn-controller among them, can see
// it. It is a second client of the same API server, so it approximates the
// controller's watch and no more.
//
// One informer per namespace: a field selector cannot name several
// namespaces, and the workload's pods carry no label of the run (adding
// one would change W1's objects). The run's namespaces are its own, so
// they hold only its pods.
type podWatch struct {
	stopCh    chan struct{}
	factories []informers.SharedInformerFactory

	mu   sync.Mutex
	seen map[string]time.Time // namespace/name → its ADDED event
}

// startPodWatch watches the pods of namespaces (room for pods of them)
// and returns once every informer has synced, so that no pod created
// afterwards can be missed.
func startPodWatch(ctx context.Context, cs kubernetes.Interface, namespaces []string, pods int, timeout time.Duration) (*podWatch, error) {
	w := &podWatch{stopCh: make(chan struct{}), seen: make(map[string]time.Time, pods)}
	for _, ns := range namespaces {
		f := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns))
		w.factories = append(w.factories, f)
		inf := f.Core().V1().Pods().Informer()
		if err := inf.SetTransform(podKeyOnly); err != nil {
			w.stop()
			return nil, err
		}
		if _, err := inf.AddEventHandler(cache.ResourceEventHandlerDetailedFuncs{AddFunc: w.added}); err != nil {
			w.stop()
			return nil, err
		}
	}
	for _, f := range w.factories {
		f.Start(w.stopCh)
	}
	if err := waitSynced(ctx, timeout, w.factories); err != nil {
		w.stop()
		return nil, err
	}
	return w, nil
}

// waitSynced waits until every informer of the factories has synced.
func waitSynced(ctx context.Context, timeout time.Duration, factories []informers.SharedInformerFactory) error {
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for _, f := range factories {
		for _, ok := range f.WaitForCacheSync(sctx.Done()) {
			if !ok {
				return fmt.Errorf("pod informer not synced within %v: %w", timeout, cmp.Or(ctx.Err(), sctx.Err()))
			}
		}
	}
	return nil
}

func (w *podWatch) stop() {
	close(w.stopCh)
	for _, f := range w.factories {
		f.Shutdown()
	}
}

// podKeyOnly keeps of a pod what the watch needs, so that the informer's
// cache holds small objects rather than whole pods (less memory and
// garbage in the process being measured beside the controller).
func podKeyOnly(obj any) (any, error) {
	if p, ok := obj.(*corev1.Pod); ok {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name, ResourceVersion: p.ResourceVersion}}, nil
	}
	return obj, nil
}

// added stamps a pod's first ADDED event. Pods of the initial list were
// there before the watch started, not created by the run: they get none.
func (w *podWatch) added(obj any, isInInitialList bool) {
	now := time.Now()
	p, ok := obj.(*corev1.Pod)
	if !ok || isInInitialList {
		return
	}
	key := p.Namespace + "/" + p.Name
	w.mu.Lock()
	if _, had := w.seen[key]; !had {
		w.seen[key] = now
	}
	w.mu.Unlock()
}

// times lists the stamps of keys (namespace/name) in their order, the
// zero time for a pod not seen.
func (w *podWatch) times(keys []string) []time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return timesOf(keys, w.seen)
}

// waitSeen waits until every pod of keys has been seen, or timeout.
func (w *podWatch) waitSeen(ctx context.Context, keys []string, timeout time.Duration) error {
	return pollFor(ctx, timeout, func(context.Context) error {
		missing := 0
		for _, t := range w.times(keys) {
			if t.IsZero() {
				missing++
			}
		}
		if missing > 0 {
			return fmt.Errorf("%d of %d pods not seen by kovn-bench's pod watch", missing, len(keys))
		}
		return nil
	})
}

// WatchSplit splits each pod's create answered → its LSP in NB
// (latencyFromAnswer) at the moment kovn-bench's pod watch saw the pod:
// answered → watch is the API server's side (etcd, the watch cache, the
// event's delivery), watch → port is kovn's (its informer, sync, NB
// transaction) and the NB monitor's. Either part is negative when its end
// came first: a watch event can beat the create's reply, and kovn's watch
// kovn-bench's. Signed, the two add up to latencyFromAnswer.
type WatchSplit struct {
	WatchFromAnswer   Dist      `json:"watchFromAnswer"`             // per pod: create answered → kovn-bench's watch saw it
	PortFromWatch     Dist      `json:"portFromWatch"`               // per pod: watch saw it → its LSP
	WatchFromAnswerMs []float64 `json:"watchFromAnswerMs,omitempty"` // every pod's, sorted
	PortFromWatchMs   []float64 `json:"portFromWatchMs,omitempty"`   // every pod's, sorted
	WatchBeforeAnswer int       `json:"watchBeforeAnswer,omitempty"` // pods seen before their create was answered
	PortBeforeWatch   int       `json:"portBeforeWatch,omitempty"`   // pods whose LSP was in NB before the watch saw them
	WatchMissed       int       `json:"watchMissed,omitempty"`       // pods the watch never saw: left out
}

// splitAtWatch computes the split for items i (answered[i], watched[i],
// port[i]); an item with no watch stamp is left out and counted.
func splitAtWatch(answered, watched, port []time.Time) WatchSplit {
	var s WatchSplit
	var fromAnswer, toPort []time.Duration
	for i := range answered {
		if watched[i].IsZero() {
			s.WatchMissed++
			continue
		}
		a, p := watched[i].Sub(answered[i]), port[i].Sub(watched[i])
		fromAnswer, toPort = append(fromAnswer, a), append(toPort, p)
		if a < 0 {
			s.WatchBeforeAnswer++
		}
		if p < 0 {
			s.PortBeforeWatch++
		}
	}
	s.WatchFromAnswer, s.WatchFromAnswerMs = Summarise(fromAnswer), sortedMs(fromAnswer)
	s.PortFromWatch, s.PortFromWatchMs = Summarise(toPort), sortedMs(toPort)
	return s
}

// rows shows the split's summaries, when the run had one.
func (s WatchSplit) rows() []row {
	if s.WatchFromAnswer.N == 0 {
		return nil
	}
	rows := []row{
		{"  answered → kovn-bench's watch saw it", s.WatchFromAnswer.String()},
		{"  watch saw it → LSP (kovn)", s.PortFromWatch.String()},
	}
	if s.WatchBeforeAnswer+s.PortBeforeWatch+s.WatchMissed > 0 {
		rows = append(rows, row{"  watch split", fmt.Sprintf("%d pods seen before their answer, %d LSPs before the watch, %d pods not seen (left out)",
			s.WatchBeforeAnswer, s.PortBeforeWatch, s.WatchMissed)})
	}
	return rows
}
