package heartbeat

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// started runs a heartbeat for node n1 on a fake clock and returns what
// the test drives it with; stop ends its context and waits for Run.
type started struct {
	kc    *fake.Clientset
	clock *clocktesting.FakeClock
	stop  func()
	done  chan struct{}
}

func start(t *testing.T, kc *fake.Clientset) *started {
	t.Helper()
	s := &started{kc: kc, clock: clocktesting.NewFakeClock(t0), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	h := &Heartbeat{Client: kc, Node: "n1", Clock: s.clock}
	go func() {
		defer close(s.done)
		h.Run(ctx)
	}()
	stopped := func() bool {
		cancel()
		select {
		case <-s.done:
			return true
		case <-time.After(5 * time.Second):
			return false
		}
	}
	s.stop = func() {
		if !stopped() {
			t.Fatal("Run did not return after its context ended")
		}
	}
	t.Cleanup(func() {
		if !stopped() {
			t.Error("Run did not return after its context ended")
		}
	})
	return s
}

// lease reads the Lease from the fake's tracker, so the test's reads are
// not among the actions the heartbeat took.
func (s *started) lease() (*coordinationv1.Lease, error) {
	o, err := s.kc.Tracker().Get(coordinationv1.SchemeGroupVersion.WithResource("leases"), "kovn-system", "kovn-node-n1")
	if err != nil {
		return nil, err
	}
	return o.(*coordinationv1.Lease), nil
}

// waitRenewed waits until the Lease exists, renewed at want.
func (s *started) waitRenewed(t *testing.T, want time.Time) *coordinationv1.Lease {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		l, err := s.lease()
		if err == nil && l.Spec.RenewTime != nil && l.Spec.RenewTime.Time.Equal(want) {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("Lease not renewed at %s: %+v, %v", want, l, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// tick advances the fake clock by one interval, firing the ticker.
func (s *started) tick() time.Time {
	s.clock.Step(Interval)
	return s.clock.Now()
}

func TestCreatesAndRenews(t *testing.T) {
	s := start(t, fake.NewSimpleClientset())
	l := s.waitRenewed(t, t0)
	if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != "n1" {
		t.Errorf("holder %v", l.Spec.HolderIdentity)
	}
	if l.Spec.LeaseDurationSeconds == nil || *l.Spec.LeaseDurationSeconds != 40 {
		t.Errorf("duration %v", l.Spec.LeaseDurationSeconds)
	}
	if l.Labels["app.kubernetes.io/component"] != "kovn-node" || l.Labels["kovn.io/node"] != "n1" {
		t.Errorf("labels %v", l.Labels)
	}
	if l.Spec.AcquireTime == nil || !l.Spec.AcquireTime.Time.Equal(t0) {
		t.Errorf("acquired %v", l.Spec.AcquireTime)
	}
	for i := 0; i < 3; i++ {
		now := s.tick()
		l = s.waitRenewed(t, now)
	}
	if !l.Spec.AcquireTime.Time.Equal(t0) {
		t.Errorf("a renewal moved acquireTime to %v", l.Spec.AcquireTime)
	}
	// The cached Lease is updated, not read again each time: one get
	// (before the create), then only updates.
	gets, creates, updates := 0, 0, 0
	for _, a := range s.kc.Actions() {
		switch a.GetVerb() {
		case "get":
			gets++
		case "create":
			creates++
		case "update":
			updates++
		}
	}
	if gets != 1 || creates != 1 || updates != 3 {
		t.Errorf("get %d, create %d, update %d; want 1, 1, 3", gets, creates, updates)
	}
}

func TestTakesOverAnExistingLease(t *testing.T) {
	old := "someone-else"
	d := int32(5)
	rt := metav1.NewMicroTime(t0.Add(-time.Hour))
	s := start(t, fake.NewSimpleClientset(&coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kovn-system", Name: "kovn-node-n1", Labels: map[string]string{"keep": "me"}},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &old, LeaseDurationSeconds: &d, RenewTime: &rt, AcquireTime: &rt},
	}))
	l := s.waitRenewed(t, t0)
	if *l.Spec.HolderIdentity != "n1" || *l.Spec.LeaseDurationSeconds != 40 || !l.Spec.AcquireTime.Time.Equal(t0) {
		t.Errorf("spec %+v", l.Spec)
	}
	if l.Labels["keep"] != "me" || l.Labels["kovn.io/node"] != "n1" {
		t.Errorf("labels %v", l.Labels)
	}
}

func TestRecreatesAfterDeletion(t *testing.T) {
	s := start(t, fake.NewSimpleClientset())
	s.waitRenewed(t, t0)
	if err := s.kc.CoordinationV1().Leases("kovn-system").Delete(context.Background(), "kovn-node-n1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	now := s.tick()
	l := s.waitRenewed(t, now)
	if !l.Spec.AcquireTime.Time.Equal(now) {
		t.Errorf("recreated Lease acquired at %v, want %v", l.Spec.AcquireTime, now)
	}
	s.waitRenewed(t, s.tick())
}

// A conflict (someone else wrote the Lease) and a refused create are
// logged and retried on the next tick; Run goes on.
func TestRetriesOnTheNextTick(t *testing.T) {
	kc := fake.NewSimpleClientset()
	var failCreate, failUpdate atomic.Bool
	var creates, updates atomic.Int32
	failCreate.Store(true)
	kc.PrependReactor("create", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		creates.Add(1)
		if failCreate.Load() {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}, "kovn-node-n1", errors.New("no RBAC"))
		}
		return false, nil, nil
	})
	kc.PrependReactor("update", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		updates.Add(1)
		if failUpdate.Load() {
			return true, nil, apierrors.NewConflict(schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}, "kovn-node-n1", errors.New("changed"))
		}
		return false, nil, nil
	})
	s := start(t, kc)
	waitFor(t, func() bool { return creates.Load() == 1 })
	if _, err := s.lease(); !apierrors.IsNotFound(err) {
		t.Fatalf("Lease after a refused create: %v", err)
	}
	failCreate.Store(false)
	s.waitRenewed(t, s.tick())

	failUpdate.Store(true)
	before := len(kc.Actions())
	s.tick()
	waitFor(t, func() bool { return updates.Load() == 1 })
	failUpdate.Store(false)
	now := s.tick()
	s.waitRenewed(t, now)
	// After the conflict the Lease is read again before the update.
	var verbs []string
	for _, a := range kc.Actions()[before:] {
		verbs = append(verbs, a.GetVerb())
	}
	if got := strings.Join(verbs, " "); !strings.HasPrefix(got, "update get update") {
		t.Errorf("actions after the conflict: %s", got)
	}
}

func TestStopsWithItsContext(t *testing.T) {
	s := start(t, fake.NewSimpleClientset())
	s.waitRenewed(t, t0)
	now := s.tick()
	s.waitRenewed(t, now)
	s.stop()
	n := len(s.kc.Actions())
	s.tick()
	s.tick()
	time.Sleep(50 * time.Millisecond)
	if len(s.kc.Actions()) != n {
		t.Errorf("renewed after its context ended: %v", s.kc.Actions()[n:])
	}
	l, err := s.lease()
	if err != nil || !l.Spec.RenewTime.Time.Equal(now) {
		t.Errorf("Lease after stop: %+v %v (left as last renewed, to expire)", l, err)
	}
}

func TestLongNodeNameHasNoNodeLabel(t *testing.T) {
	node := strings.Repeat("n", 64)
	h := (&Heartbeat{Node: node, Clock: clocktesting.NewFakeClock(t0)}).defaults()
	l := &coordinationv1.Lease{}
	h.fill(l)
	if _, ok := l.Labels["kovn.io/node"]; ok || l.Labels["app.kubernetes.io/component"] != "kovn-node" || *l.Spec.HolderIdentity != node {
		t.Errorf("%+v", l)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
