package pod

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kovn-io/kovn/go-controller/pkg/controller/internal/ctltest"
	"github.com/kovn-io/kovn/go-controller/pkg/ipam"
	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

func TestScheduledPodsGetAddressPortAndSetMembership(t *testing.T) {
	h := newHarness(t, testConfig())
	h.addNode("n1", "10.128.0.0/24")
	h.addNode("n2", "10.128.1.0/24")
	h.addNamespace("team-a")
	h.addNamespace("team-b")
	inst := h.start()

	pods := []struct{ ns, name, node, subnet string }{
		{"team-a", "p1", "n1", "10.128.0.0/24"},
		{"team-a", "p2", "n2", "10.128.1.0/24"},
		{"team-a", "p3", "n1", "10.128.0.0/24"},
		{"team-b", "p1", "n1", "10.128.0.0/24"},
	}
	for _, p := range pods {
		h.createPod(p.ns, p.name, p.node)
	}
	seen := map[netip.Addr]string{}
	sets := map[string]map[string]bool{"team-a": {}, "team-b": {}}
	for _, p := range pods {
		ip := h.waitReady(p.ns, p.name)
		subnet := netip.MustParsePrefix(p.subnet)
		if !subnet.Contains(ip) || ip == ipam.GatewayIP(subnet) || ip == ipam.ManagementIP(subnet) {
			t.Errorf("%s/%s got %s, not a pod address of %s", p.ns, p.name, ip, subnet)
		}
		if other, dup := seen[ip]; dup {
			t.Errorf("%s/%s and %s share %s", p.ns, p.name, other, ip)
		}
		seen[ip] = p.ns + "/" + p.name
		sets[p.ns][ip.String()] = true

		pn, _ := kube.ParsePodNetwork(h.getPod(p.ns, p.name).Annotations[kube.PodNetworkAnnotation])
		want := Network(ip, subnet, ipam.GatewayIP(subnet), 1400)
		if pn.MAC != want.MAC || fmt.Sprint(pn.Gateway) != fmt.Sprint([]string{ipam.GatewayIP(subnet).String()}) || pn.MTU != 1400 || pn.IPs[0] != want.IPs[0] {
			t.Errorf("%s/%s annotation %+v, want %+v", p.ns, p.name, pn, want)
		}
	}
	for ns, want := range sets {
		if got := h.setAddrs(ns); !maps.Equal(got, want) {
			t.Errorf("address set of %s = %v, want %v", ns, got, want)
		}
	}
	inst.WaitSynced(t, len(pods))
	if n := h.Patches("pods"); n != len(pods) {
		t.Errorf("%d pod patches, want one per pod (%d): our own annotation must not trigger another", n, len(pods))
	}
}

func TestPodsWithoutPort(t *testing.T) {
	for _, tc := range []struct {
		name string
		node string
		mod  func(*corev1.Pod)
	}{
		{"unscheduled", "", func(*corev1.Pod) {}},
		{"host network", "n1", hostNetwork},
		{"succeeded", "n1", phase(corev1.PodSucceeded)},
		{"failed", "n1", phase(corev1.PodFailed)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, testConfig())
			h.addNode("n1", "10.128.0.0/24")
			h.addNamespace("ns")
			inst := h.start()
			h.createPod("ns", "p", tc.node, tc.mod)
			inst.WaitSynced(t, 1)
			h.noNetwork("ns", "p")
			if n := h.Patches("pods"); n != 0 {
				t.Errorf("%d patches", n)
			}
			if txns, _ := inst.Tx.Stats(); txns != 0 {
				t.Errorf("%d NB transactions", txns)
			}
			if h.setAddrs("ns") != nil {
				t.Error("address set created for a pod without port")
			}
		})
	}
}

func TestPodScheduledLater(t *testing.T) {
	h := newHarness(t, testConfig())
	h.addNode("n1", "10.128.0.0/24")
	h.addNamespace("ns")
	inst := h.start()
	h.createPod("ns", "p", "")
	inst.WaitSynced(t, 1)
	h.noNetwork("ns", "p")

	p := h.getPod("ns", "p")
	p.Spec.NodeName = "n1"
	h.updatePod(p)
	h.waitReady("ns", "p")
}

// fill makes n pods on n1 and waits until all are ready.
func fill(h *harness, n int) map[string]netip.Addr {
	h.t.Helper()
	ips := map[string]netip.Addr{}
	for i := range n {
		h.createPod("ns", fmt.Sprintf("p%d", i), "n1")
	}
	for i := range n {
		name := fmt.Sprintf("p%d", i)
		ips[name] = h.waitReady("ns", name)
	}
	return ips
}

// newSmallHarness has one node with a /29: 8 addresses minus network,
// broadcast, gateway and management leave 4 for pods.
func newSmallHarness(t *testing.T) *harness {
	cfg := testConfig()
	cfg.HostSubnetBits = 29
	h := newHarness(t, cfg)
	h.addNode("n1", "10.128.0.0/29")
	h.addNamespace("ns")
	return h
}

func TestNodeSubnetExhausted(t *testing.T) {
	h := newSmallHarness(t)
	inst := h.start()
	ips := fill(h, 4)
	want := map[string]bool{"10.128.0.3": true, "10.128.0.4": true, "10.128.0.5": true, "10.128.0.6": true}
	for _, ip := range ips {
		delete(want, ip.String())
	}
	if len(want) != 0 {
		t.Errorf("pods got %v, leaving %v unused", ips, want)
	}
	h.createPod("ns", "fifth", "n1")
	inst.waitProblem(t, "NodeSubnetExhausted")
	h.noNetwork("ns", "fifth")
	for name := range ips {
		if _, err := h.ready("ns", name); err != nil {
			t.Error(err)
		}
	}
}

func TestPodGoneFreesItsAddress(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(h *harness, name string)
	}{
		{"deleted", func(h *harness, name string) { h.deletePod("ns", name) }},
		{"succeeded", func(h *harness, name string) {
			p := h.getPod("ns", name)
			p.Status.Phase = corev1.PodSucceeded
			if _, err := h.KC.CoreV1().Pods("ns").UpdateStatus(context.Background(), p, metav1.UpdateOptions{}); err != nil {
				h.t.Fatal(err)
			}
		}},
		{"failed", func(h *harness, name string) {
			p := h.getPod("ns", name)
			p.Status.Phase = corev1.PodFailed
			h.updatePod(p)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newSmallHarness(t)
			inst := h.start()
			ips := fill(h, 4)
			tc.end(h, "p1")
			h.waitGone("ns", "p1", ips["p1"])
			ctltest.WaitFor(t, func() error {
				if inst.c.held("ns/p1") {
					return fmt.Errorf("p1's address not released")
				}
				return nil
			})
			// The subnet was full: the next pod can only get p1's address.
			h.createPod("ns", "next", "n1")
			if got := h.waitReady("ns", "next"); got != ips["p1"] {
				t.Errorf("next got %s, want p1's freed %s", got, ips["p1"])
			}
			for _, name := range []string{"p0", "p2", "p3"} {
				if ip, err := h.ready("ns", name); err != nil || ip != ips[name] {
					t.Errorf("%s: %v, %s (had %s)", name, err, ip, ips[name])
				}
			}
		})
	}
}

func TestPodInNamespaceWithoutObjectGetsNoSet(t *testing.T) {
	h := newHarness(t, testConfig())
	h.addNode("n1", "10.128.0.0/24")
	h.start()
	h.createPod("ghost", "p", "n1") // the fake API does not require the namespace
	ctltest.WaitFor(t, func() error {
		_, err := nbops.GetSwitchPort(h.NB, own.PodPort("ghost", "p"))
		return err
	})
	if h.setAddrs("ghost") != nil {
		t.Error("address set created for a namespace that does not exist")
	}
}
