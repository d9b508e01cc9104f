package pod

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/kovn-io/kovn/go-controller/pkg/controller/internal/ctltest"
	"github.com/kovn-io/kovn/go-controller/pkg/kube"
)

func TestStaticIPHonoured(t *testing.T) {
	h := newHarness(t, testConfig())
	h.addNode("n1", "10.128.0.0/24")
	h.addNamespace("ns")
	h.start()
	h.createPod("ns", "fixed", "n1", requestIP("10.128.0.50"))
	if got := h.waitReady("ns", "fixed"); got != netip.MustParseAddr("10.128.0.50") {
		t.Fatalf("got %s, want the requested 10.128.0.50", got)
	}
	// Dynamic pods never get the address a static pod holds.
	for _, name := range []string{"a", "b", "c"} {
		h.createPod("ns", name, "n1")
	}
	for _, name := range []string{"a", "b", "c"} {
		if ip := h.waitReady("ns", name); ip == netip.MustParseAddr("10.128.0.50") {
			t.Errorf("%s got the static pod's address", name)
		}
	}
}

func TestStaticIPRejected(t *testing.T) {
	for _, tc := range []struct {
		name, request, reason string
	}{
		{"outside the node subnet", "10.129.0.5", "IPOutOfRange"},
		{"another node's subnet", "10.128.1.5", "IPOutOfRange"},
		{"the gateway address", "10.128.0.1", "IPOutOfRange"},
		{"the management address", "10.128.0.2", "IPOutOfRange"},
		{"the broadcast address", "10.128.0.255", "IPOutOfRange"},
		{"used by another pod", "10.128.0.60", "IPConflict"},
		{"not an IP", "10.128.0.x", "InvalidIPRequest"},
		{"a CIDR", "10.128.0.61/24", "InvalidIPRequest"},
		{"empty", "", "InvalidIPRequest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, testConfig())
			h.addNode("n1", "10.128.0.0/24")
			h.addNode("n2", "10.128.1.0/24")
			h.addNamespace("ns")
			inst := h.start()
			h.createPod("ns", "holder", "n1", requestIP("10.128.0.60"))
			holderIP := h.waitReady("ns", "holder")

			h.createPod("ns", "bad", "n1", requestIP(tc.request))
			inst.waitProblem(t, tc.reason)
			h.noNetwork("ns", "bad")
			if ev := <-inst.events.Events; !strings.HasPrefix(ev, "Warning "+tc.reason+" ") {
				t.Errorf("event %q, want a %s warning", ev, tc.reason)
			}

			// Other pods are fine, the holder keeps its address.
			h.createPod("ns", "other", "n1")
			h.waitReady("ns", "other")
			if ip, err := h.ready("ns", "holder"); err != nil || ip != holderIP {
				t.Errorf("holder: %v, %s", err, ip)
			}
			if n := inst.problems.Count("Pod", tc.reason); n != 1 {
				t.Errorf("%v %s problems, want 1 (a bad request is not retried)", n, tc.reason)
			}

			// Fixing the request is a change the controller acts on.
			p := h.getPod("ns", "bad")
			p.Annotations[kube.PodIPRequestAnnotation] = "10.128.0.70"
			h.updatePod(p)
			if got := h.waitReady("ns", "bad"); got != netip.MustParseAddr("10.128.0.70") {
				t.Errorf("fixed request: got %s, want 10.128.0.70", got)
			}
		})
	}
}

// A pod refused an address another pod holds gets it once the holder is
// gone: nothing about the waiting pod changes then, so the release itself
// must sync it again (a rolling update of a pod with a fixed address
// creates the new pod while the old one still holds it).
func TestStaticIPConflictResolvesWhenHolderGoes(t *testing.T) {
	h := newHarness(t, testConfig())
	h.addNode("n1", "10.128.0.0/24")
	h.addNamespace("ns")
	inst := h.start()
	want := netip.MustParseAddr("10.128.0.60")
	h.createPod("ns", "old", "n1", requestIP(want.String()))
	h.waitReady("ns", "old")
	h.createPod("ns", "new", "n1", requestIP(want.String()))
	h.createPod("ns", "gone", "n1", requestIP(want.String()))
	ctltest.WaitFor(t, func() error {
		if n := inst.problems.Count("Pod", "IPConflict"); n != 2 {
			return fmt.Errorf("%v IPConflict problems, want 2", n)
		}
		return nil
	})
	h.noNetwork("ns", "new")
	// A refused pod deleted meanwhile is forgotten, not synced again.
	h.deletePod("ns", "gone")
	ctltest.WaitFor(t, func() error {
		inst.c.mu.Lock()
		defer inst.c.mu.Unlock()
		if _, ok := inst.c.waiting["ns/gone"]; ok {
			return fmt.Errorf("deleted pod ns/gone still waits for %s", want)
		}
		return nil
	})

	h.deletePod("ns", "old")
	if got := h.waitReady("ns", "new"); got != want {
		t.Fatalf("new got %s, want %s once old is gone", got, want)
	}
	if n := inst.problems.Count("Pod", "IPConflict"); n != 2 {
		t.Errorf("%v IPConflict problems, want 2 (the waiting pod is not polled)", n)
	}
	inst.c.mu.Lock()
	defer inst.c.mu.Unlock()
	if len(inst.c.waiting) != 0 {
		t.Errorf("pods still waiting: %v", inst.c.waiting)
	}
}
