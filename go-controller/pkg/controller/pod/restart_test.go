package pod

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kovn-io/kovn/go-controller/pkg/controller/internal/ctltest"
	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// converge starts a controller, creates pods and waits until all are ready.
func converge(h *harness, pods [][3]string, mods map[string]func(*corev1.Pod)) (*instance, map[string]netip.Addr) {
	h.t.Helper()
	inst := h.start()
	for _, p := range pods {
		var m []func(*corev1.Pod)
		if mods[p[1]] != nil {
			m = append(m, mods[p[1]])
		}
		h.createPod(p[0], p[1], p[2], m...)
	}
	ips := map[string]netip.Addr{}
	for _, p := range pods {
		ips[p[0]+"/"+p[1]] = h.waitReady(p[0], p[1])
	}
	return inst, ips
}

func TestRestartOnConvergedStateIsQuiet(t *testing.T) {
	h := newHarness(t, testConfig())
	h.addNode("n1", "10.128.0.0/24")
	h.addNode("n2", "10.128.1.0/24")
	h.addNamespace("a")
	h.addNamespace("b")
	pods := [][3]string{{"a", "p1", "n1"}, {"a", "p2", "n2"}, {"a", "p3", "n1"}, {"b", "p4", "n1"}, {"b", "static", "n2"}}
	first, ips := converge(h, pods, map[string]func(*corev1.Pod){"static": requestIP("10.128.1.77")})
	h.createPod("a", "pending", "")
	h.createPod("a", "host", "n1", hostNetwork)
	first.WaitSynced(t, len(pods)+2)
	first.Stop()

	h.KC.ClearActions()
	second := h.startNoRun()
	if txns, ops := second.Tx.Stats(); txns != 0 {
		t.Errorf("Start on a converged state sent %d transactions (%d ops)", txns, ops)
	}
	for key, ip := range ips {
		second.c.mu.Lock()
		a := second.c.tracked[key]
		second.c.mu.Unlock()
		if a.ip != ip {
			t.Errorf("after Start %s holds %v, want %s", key, a.ip, ip)
		}
	}
	second.Run()
	second.WaitSynced(t, len(pods)+2)
	if txns, ops := second.Tx.Stats(); txns != 0 {
		t.Errorf("resync after restart sent %d transactions (%d ops)", txns, ops)
	}
	if n := h.Patches("pods"); n != 0 {
		t.Errorf("resync after restart patched pods %d times", n)
	}

	// The rebuilt allocators hand out no address twice.
	used := map[netip.Addr]bool{}
	for _, ip := range ips {
		used[ip] = true
	}
	for i := range 5 {
		name := fmt.Sprintf("new%d", i)
		h.createPod("a", name, "n1")
		if ip := h.waitReady("a", name); used[ip] {
			t.Errorf("%s got %s, which is in use", name, ip)
		} else {
			used[ip] = true
		}
	}
}

func TestStartRemovesWhatPodsGoneWhileDownHeld(t *testing.T) {
	cfg := testConfig()
	cfg.HostSubnetBits = 29
	h := newHarness(t, cfg)
	h.addNode("n1", "10.128.0.0/29")
	h.addNamespace("ns")
	pods := [][3]string{{"ns", "p0", "n1"}, {"ns", "p1", "n1"}, {"ns", "p2", "n1"}, {"ns", "p3", "n1"}}
	first, ips := converge(h, pods, nil)
	first.WaitSynced(t, len(pods))
	first.Stop()

	h.deletePod("ns", "p0")
	h.deletePod("ns", "p1")
	p := h.getPod("ns", "p2")
	p.Status.Phase = corev1.PodSucceeded
	h.updatePod(p)

	second := h.startNoRun()
	if txns, _ := second.Tx.Stats(); txns != 1 {
		t.Errorf("Start sent %d transactions, want 1", txns)
	}
	for _, name := range []string{"p0", "p1", "p2"} {
		h.waitGone("ns", name, ips["ns/"+name])
	}
	if got, want := h.setAddrs("ns"), map[string]bool{ips["ns/p3"].String(): true}; !maps.Equal(got, want) {
		t.Errorf("address set %v, want %v", got, want)
	}
	for _, key := range []string{"ns/p0", "ns/p1", "ns/p2"} {
		if second.c.held(key) {
			t.Errorf("%s still holds an address after Start", key)
		}
	}
	second.Run()
	if ip := h.waitReady("ns", "p3"); ip != ips["ns/p3"] {
		t.Errorf("p3 moved from %s to %s", ips["ns/p3"], ip)
	}
	// The three freed addresses serve new pods: the /29 has no others.
	for _, name := range []string{"q0", "q1", "q2"} {
		h.createPod("ns", name, "n1")
		h.waitReady("ns", name)
	}
}

func TestPodRecreatedWithNewUID(t *testing.T) {
	for _, tc := range []struct {
		name     string
		recreate func(h *harness)
	}{
		{"delete and create", func(h *harness) {
			h.deletePod("ns", "p")
			h.createPod("ns", "p", "n1")
		}},
		// The informer missed the delete (relist): an update with a new UID.
		{"update with a new UID", func(h *harness) {
			old := h.getPod("ns", "p")
			p := h.newPod("ns", "p", "n1")
			p.ResourceVersion = old.ResourceVersion
			h.updatePod(p)
		}},
		// A StatefulSet pod coming back on another node, its delete
		// event missed or coalesced with the create.
		{"update with a new UID on another node", func(h *harness) {
			old := h.getPod("ns", "p")
			p := h.newPod("ns", "p", "n2")
			p.ResourceVersion = old.ResourceVersion
			h.updatePod(p)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, testConfig())
			h.addNode("n1", "10.128.0.0/24")
			h.addNode("n2", "10.128.1.0/24")
			h.addNamespace("ns")
			h.start()
			h.createPod("ns", "p", "n1")
			h.waitReady("ns", "p")
			lsp, err := nbops.GetSwitchPort(h.NB, own.PodPort("ns", "p"))
			if err != nil || lsp.Options["iface-id-ver"] != "ns-p-1" {
				t.Fatalf("first incarnation's port: %v %+v", err, lsp)
			}

			tc.recreate(h)
			if uid := h.getPod("ns", "p").UID; uid != types.UID("ns-p-2") {
				t.Fatalf("recreated pod has UID %s", uid)
			}
			// ready checks iface-id-ver and the pod-uid id against the
			// new UID, and the port's addresses against the new annotation.
			ip := h.waitReady("ns", "p")
			lsp, _ = nbops.GetSwitchPort(h.NB, own.PodPort("ns", "p"))
			if lsp.ExternalIDs[own.PodUIDKey] != "ns-p-2" {
				t.Errorf("port external_ids %v", lsp.ExternalIDs)
			}
			ctltest.WaitFor(t, func() error {
				if got := h.setAddrs("ns"); !maps.Equal(got, map[string]bool{ip.String(): true}) {
					return fmt.Errorf("address set %v, want only %s", got, ip)
				}
				return nil
			})
		})
	}
}

func TestStartKeepsAddressOfPortWhosePodLostItsAnnotation(t *testing.T) {
	h := newHarness(t, testConfig())
	h.addNode("n1", "10.128.0.0/24")
	h.addNamespace("ns")
	first, ips := converge(h, [][3]string{{"ns", "p", "n1"}}, nil)
	first.Stop()
	// Someone strips the annotation while the controller is down.
	h.mu.Lock()
	h.reannotate["ns/p"] = true
	h.mu.Unlock()
	p := h.getPod("ns", "p")
	delete(p.Annotations, kube.PodNetworkAnnotation)
	if _, err := h.KC.CoreV1().Pods("ns").Update(context.Background(), p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	second := h.startNoRun()
	second.c.mu.Lock()
	a := second.c.tracked["ns/p"]
	second.c.mu.Unlock()
	if a.ip != ips["ns/p"] {
		t.Errorf("after Start the pod holds %v, want its port's %s", a.ip, ips["ns/p"])
	}
	second.Run()
	ctltest.WaitFor(t, func() error {
		ip, err := h.ready("ns", "p")
		if err == nil && ip != ips["ns/p"] {
			return fmt.Errorf("pod re-annotated with %s, want %s", ip, ips["ns/p"])
		}
		return err
	})
}
