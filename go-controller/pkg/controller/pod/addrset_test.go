package pod

import (
	"maps"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"

	"github.com/kovn-io/kovn/go-controller/pkg/controller/internal/ctltest"
	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// heldNamespaces is a namespace lister whose Get calls wait in hold first.
// addressSetAdd reads the namespace after finding its address set missing
// and before creating it, so holding Get there lets a test decide what the
// other pods' syncs do in that window.
type heldNamespaces struct {
	corelisters.NamespaceLister
	mu    sync.Mutex
	calls int
	hold  func(call int) // call counts from 1
}

func (l *heldNamespaces) Get(name string) (*corev1.Namespace, error) {
	l.mu.Lock()
	l.calls++
	n := l.calls
	l.mu.Unlock()
	l.hold(n)
	return l.NamespaceLister.Get(name)
}

// TestFirstPodsOfNamespaceShareOneSet makes two pods of a namespace without
// address set find the set missing at the same time, the two ways that can
// go: one pod's sync creates the set while the other is between its lookup
// and its create, or both reach their create before either has created.
// Either way the set is created once, by one transaction, and holds both
// addresses; no sync fails on the name index.
func TestFirstPodsOfNamespaceShareOneSet(t *testing.T) {
	set := own.NamespaceAddressSet("ns", "v4")
	for _, tc := range []struct {
		name string
		// hold returns the hold for the lister; it calls held once the
		// situation it waits for has come about.
		hold func(exists func() bool, held func()) func(call int)
	}{
		{"created meanwhile", func(exists func() bool, held func()) func(int) {
			return func(call int) {
				if call != 1 {
					return
				}
				// The first pod waits until the other's sync has
				// created the set and the controller's cache shows it.
				deadline := time.Now().Add(ctltest.WaitTimeout)
				for !exists() && time.Now().Before(deadline) {
					time.Sleep(time.Millisecond)
				}
				if exists() {
					held()
				}
			}
		}},
		{"both missing", func(exists func() bool, held func()) func(int) {
			var once sync.Once
			both := make(chan struct{})
			var mu sync.Mutex
			arrived := 0
			return func(int) {
				mu.Lock()
				arrived++
				if arrived == 2 {
					once.Do(func() { close(both); held() })
				}
				mu.Unlock()
				// Neither pod goes on to create before both have
				// found the set missing.
				select {
				case <-both:
				case <-time.After(ctltest.WaitTimeout):
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, testConfig())
			h.addNode("n1", "10.128.0.0/24")
			h.addNamespace("ns")
			var heldOnce sync.Once
			wasHeld := make(chan struct{})
			h.namespaces = func(l corelisters.NamespaceLister, i *ctltest.Instance) corelisters.NamespaceLister {
				exists := func() bool { _, err := nbops.GetAddressSet(i.NB, set); return err == nil }
				return &heldNamespaces{NamespaceLister: l, hold: tc.hold(exists, func() { heldOnce.Do(func() { close(wasHeld) }) })}
			}
			inst := h.start()
			h.createPod("ns", "a", "n1")
			h.createPod("ns", "b", "n1")
			want := map[string]bool{}
			for _, name := range []string{"a", "b"} {
				want[h.waitReady("ns", name).String()] = true
			}
			select {
			case <-wasHeld:
			default:
				t.Fatal("the two syncs never met in the window between lookup and create; the test proves nothing")
			}
			if got := h.setAddrs("ns"); !maps.Equal(got, want) {
				t.Errorf("address set of ns = %v, want %v", got, want)
			}
			inst.WaitSynced(t, 2)
			if n := inst.Syncs("error"); n != 0 {
				t.Errorf("%v failed syncs, want none: the set must be created once", n)
			}
		})
	}
}
