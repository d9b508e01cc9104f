package bench

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
)

// readyTracker stamps, with the client's clock, when each pod's create is
// sent and when an informer event first shows it Ready. The condition's
// lastTransitionTime is not used: it has a resolution of one second.
type readyTracker struct {
	stopCh  chan struct{}
	factory informers.SharedInformerFactory
	onReady func(name string) // called once per pod, outside the lock
	poke    chan struct{}     // a pod became Ready or its create failed

	mu         sync.Mutex
	created    map[string]time.Time
	ready      map[string]time.Time
	createErrs map[string]error
}

// startReadyTracker watches the namespace's pods of one phase and
// returns once the informer has synced, so that no event of a pod created
// afterwards can be missed.
func startReadyTracker(ctx context.Context, cs kubernetes.Interface, phase string, timeout time.Duration, onReady func(string)) (*readyTracker, error) {
	t := &readyTracker{stopCh: make(chan struct{}), onReady: onReady, poke: make(chan struct{}, 1),
		created: map[string]time.Time{}, ready: map[string]time.Time{}, createErrs: map[string]error{}}
	t.factory = informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(PodReadyNamespace),
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) { lo.LabelSelector = podReadyPhaseLabel + "=" + phase }))
	inf := t.factory.Core().V1().Pods().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    t.seen,
		UpdateFunc: func(_, obj any) { t.seen(obj) },
	}); err != nil {
		return nil, err
	}
	t.factory.Start(t.stopCh)
	if err := waitSynced(ctx, timeout, []informers.SharedInformerFactory{t.factory}); err != nil {
		t.stop()
		return nil, err
	}
	return t, nil
}

func (t *readyTracker) stop() {
	close(t.stopCh)
	t.factory.Shutdown()
}

func (t *readyTracker) seen(obj any) {
	now := time.Now()
	p, ok := obj.(*corev1.Pod)
	if !ok || !podIsReady(p) {
		return
	}
	t.mu.Lock()
	_, had := t.ready[p.Name]
	if !had {
		t.ready[p.Name] = now
	}
	t.mu.Unlock()
	if had {
		return
	}
	t.wake()
	if t.onReady != nil {
		t.onReady(p.Name)
	}
}

func (t *readyTracker) wake() {
	select {
	case t.poke <- struct{}{}:
	default: // a wake-up is pending already
	}
}

func podIsReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// create stamps the pod's create time, then sends the create.
func (t *readyTracker) create(ctx context.Context, api corev1client.PodInterface, p *corev1.Pod) {
	t.mu.Lock()
	t.created[p.Name] = time.Now()
	t.mu.Unlock()
	if _, err := api.Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.mu.Lock()
		delete(t.created, p.Name)
		t.createErrs[p.Name] = err
		t.mu.Unlock()
		t.wake()
	}
}

// waitReady waits until every pod is Ready or its create failed, or
// timeout; it fails only when ctx ends (the summary names the pods that
// were not Ready).
func (t *readyTracker) waitReady(ctx context.Context, pods []*corev1.Pod, timeout time.Duration) error {
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for !t.settled(pods) {
		select {
		case <-t.poke:
		case <-tctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (t *readyTracker) settled(pods []*corev1.Pod) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range pods {
		_, ready := t.ready[p.Name]
		_, failed := t.createErrs[p.Name]
		if !ready && !failed {
			return false
		}
	}
	return true
}

// summary is the phase's figures so far; err names the pods that failed.
func (t *readyTracker) summary(pods []*corev1.Pod, timeout time.Duration) (PodReadyPhase, error) {
	t.mu.Lock()
	created, ready, createErrs := maps.Clone(t.created), maps.Clone(t.ready), maps.Clone(t.createErrs)
	t.mu.Unlock()
	return summarisePodReady(pods, created, ready, createErrs, timeout)
}

// summarisePodReady pairs each pod's create and Ready stamps. A pod with
// no create stamp or no Ready stamp failed.
func summarisePodReady(pods []*corev1.Pod, created, ready map[string]time.Time, createErrs map[string]error, timeout time.Duration) (PodReadyPhase, error) {
	ph := PodReadyPhase{Pods: len(pods)}
	var lat []time.Duration
	var first, last time.Time
	var notReady, refused []string
	for _, p := range pods {
		if err, ok := createErrs[p.Name]; ok {
			refused = append(refused, fmt.Sprintf("%s: %v", p.Name, err))
			continue
		}
		c, okC := created[p.Name]
		if okC && (first.IsZero() || c.Before(first)) {
			first = c
		}
		r, okR := ready[p.Name]
		if !okC || !okR {
			notReady = append(notReady, p.Name+" on "+p.Spec.NodeName)
			continue
		}
		lat = append(lat, r.Sub(c))
		if r.After(last) {
			last = r
		}
	}
	ph.Failed = len(notReady) + len(refused)
	ph.Ready = Summarise(lat)
	ph.ReadyMs = make([]float64, len(lat))
	for i, d := range lat {
		ph.ReadyMs[i] = ms(d)
	}
	slices.Sort(ph.ReadyMs)
	if len(lat) > 0 {
		ph.FirstToLastSeconds = secs(last.Sub(first))
	}
	var msgs []string
	if len(notReady) > 0 {
		msgs = append(msgs, fmt.Sprintf("%d of %d pods not Ready within %v: %s", len(notReady), len(pods), timeout, someOf(notReady, 20)))
	}
	if len(refused) > 0 {
		msgs = append(msgs, fmt.Sprintf("%d of %d creates failed: %s", len(refused), len(pods), someOf(refused, 5)))
	}
	if len(msgs) > 0 {
		return ph, fmt.Errorf("%s", strings.Join(msgs, "; "))
	}
	return ph, nil
}

// someOf joins the first n of s and says how many it left out, so that an
// error names failed pods without listing hundreds.
func someOf(s []string, n int) string {
	if len(s) <= n {
		return strings.Join(s, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(s[:n], ", "), len(s)-n)
}

// ager deletes each steady pod Age after it became Ready, so that the
// nodes hold about Rate × (time to Ready + Age) pods at a time. It keeps
// the phase's context because its deletes run on timers.
type ager struct {
	ctx context.Context
	api corev1client.PodInterface
	age time.Duration
	wg  sync.WaitGroup

	mu      sync.Mutex
	stopped bool
	timers  []*time.Timer
	err     error
}

func (a *ager) schedule(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped {
		return // the phase's end deletes the pod
	}
	a.wg.Add(1)
	a.timers = append(a.timers, time.AfterFunc(a.age, func() {
		defer a.wg.Done()
		err := a.api.Delete(a.ctx, name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
		if err != nil && !apierrors.IsNotFound(err) {
			a.mu.Lock()
			a.err = cmp.Or(a.err, fmt.Errorf("delete pod %s: %w", name, err))
			a.mu.Unlock()
		}
	}))
}

// stop cancels the deletes not yet begun (the phase's end deletes those
// pods with the rest) and waits for those under way.
func (a *ager) stop() error {
	a.mu.Lock()
	a.stopped = true
	for _, t := range a.timers {
		if t.Stop() {
			a.wg.Done()
		}
	}
	a.mu.Unlock()
	a.wg.Wait()
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}
