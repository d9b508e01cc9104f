package service

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kovn-io/kovn/go-controller/pkg/controller/internal/ctltest"
	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

func TestServiceLifecycle(t *testing.T) {
	h := newHarness(t)
	h.addGroup()
	inst := h.start()

	web := testService()
	other := named(testService(func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.11", []string{"10.96.0.11"} }), "other")
	h.createService(web)
	h.createService(other)
	h.applySlice(testSlice("web-a", httpPorts(), readyEP("10.128.1.5", "n1")))
	h.applySlice(sliceOf(testSlice("x", httpPorts(), readyEP("10.128.3.3", "n3")), "other", "other-a"))

	lb := h.waitLB("Service_default/web_TCP", vipIs("10.96.0.10:80", "10.128.1.5:8080"))
	if got := h.holders(lb.UUID); !slices.Equal(got, []string{"group:" + own.ClusterLBGroup}) {
		t.Errorf("web's load balancer held by %v, want the cluster group only", got)
	}
	if lb.Options["reject"] != "true" || lb.Protocol == nil || *lb.Protocol != "tcp" ||
		lb.ExternalIDs[own.OwnerKey] != "default/web" || lb.ExternalIDs[own.IDKey] != "tcp" {
		t.Errorf("web's load balancer %+v", lb)
	}
	otherLB := h.waitLB("Service_default/other_TCP", vipIs("10.96.0.11:80", "10.128.3.3:8080"))
	inst.settle(t, 2)

	// An endpoint change rewrites that service's row, in one transaction,
	// and nothing else.
	before := inst.Txns()
	h.applySlice(testSlice("web-a", httpPorts(), readyEP("10.128.1.5", "n1"), readyEP("10.128.2.7", "n2")))
	h.waitLB("Service_default/web_TCP", vipIs("10.96.0.10:80", "10.128.1.5:8080,10.128.2.7:8080"))
	inst.settle(t, 3)
	if got := inst.Txns() - before; got != 1 {
		t.Errorf("endpoint change took %d transactions, want 1", got)
	}
	if now := h.lb("Service_default/other_TCP"); !reflect.DeepEqual(now, otherLB) {
		t.Errorf("other's load balancer changed:\n%+v\n%+v", otherLB, now)
	}

	// A UDP port comes and goes: its load balancer with it.
	web.Spec.Ports = append(web.Spec.Ports, corev1.ServicePort{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53, TargetPort: intstr.FromInt32(53)})
	h.updateService(web)
	udp := h.waitLB("Service_default/web_UDP", vipIs("10.96.0.10:53", ""))
	web.Spec.Ports = web.Spec.Ports[:1]
	h.updateService(web)
	h.waitLB("Service_default/web_UDP", nil)
	ctltest.WaitFor(t, func() error {
		if got := h.holders(udp.UUID); len(got) > 0 {
			return fmt.Errorf("deleted UDP load balancer still held by %v", got)
		}
		return nil
	})

	// Headless now: no load balancer.
	web.Spec.ClusterIP, web.Spec.ClusterIPs = corev1.ClusterIPNone, []string{corev1.ClusterIPNone}
	h.updateService(web)
	h.waitLB("Service_default/web_TCP", nil)

	h.deleteService("default", "other")
	h.waitLB("Service_default/other_TCP", nil)
	ctltest.WaitFor(t, func() error {
		if n := h.groupSize(); n != 0 {
			return fmt.Errorf("group holds %d load balancers, want 0", n)
		}
		return nil
	})
	if n := inst.Syncs("error"); n > 0 {
		t.Errorf("%v failed syncs", n)
	}
}

// Every kind of row at once, then a restart on the converged NB: Start
// finds nothing stale and the syncs send nothing.
func TestRestartOnConvergedNBIsQuiet(t *testing.T) {
	h := newHarness(t)
	h.addGroup()
	for _, n := range []string{"n1", "n2"} {
		h.addNodeRows(n, true)
	}
	h.createNode("n1", gatewayOf("172.18.0.2"))
	h.createNode("n2", gatewayOf("172.18.0.3"))
	first := h.start()
	h.createService(testService(nodePortService(corev1.ServiceExternalTrafficPolicyLocal), func(s *corev1.Service) {
		s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
	}))
	h.createService(named(testService(nodePortService(corev1.ServiceExternalTrafficPolicyCluster), func(s *corev1.Service) {
		s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.11", []string{"10.96.0.11"}
		s.Spec.Ports[0].NodePort = 30081
	}), "np"))
	h.createService(named(testService(func(s *corev1.Service) {
		s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.12", []string{"10.96.0.12"}
		s.Spec.InternalTrafficPolicy = ptr(corev1.ServiceInternalTrafficPolicyLocal)
	}), "itp"))
	h.applySlice(testSlice("web-a", httpPorts(), readyEP("10.128.1.5", "n1"), readyEP("10.128.2.7", "n2")))
	h.applySlice(sliceOf(testSlice("x", httpPorts(), readyEP("10.128.1.6", "n1")), "np", "np-a"))
	h.applySlice(sliceOf(testSlice("x", httpPorts(), readyEP("10.128.2.8", "n2")), "itp", "itp-a"))

	h.waitLB("Service_default/web_TCP_local_n1", vipIs("172.18.0.2:30080", "10.128.1.5:8080"))
	h.waitLB("Service_default/web_TCP_local_n2", vipIs("172.18.0.3:30080", "10.128.2.7:8080"))
	h.waitLB("Service_default/np_TCP_nodeport", vipIs("^KOVN_NODEIP:30081", "10.128.1.6:8080"))
	h.waitLB("Service_default/itp_TCP_itp-local_n1", vipIs("10.96.0.12:80", ""))
	h.waitLB("Service_default/itp_TCP_itp-local_n2", vipIs("10.96.0.12:80", "10.128.2.8:8080"))
	first.settle(t, 3)
	total := len(nbops.Owned[nbdb.LoadBalancer](h.NB, own.KindService))
	first.Stop()

	second := h.startNoRun()
	if n := second.Txns(); n != 0 {
		t.Errorf("Start on a converged NB sent %d transactions", n)
	}
	second.Run()
	second.settle(t, 3)
	if txns, ops := second.Tx.Stats(); txns != 0 {
		t.Errorf("restart on a converged NB sent %d transactions (%d ops)", txns, ops)
	}
	if got := len(nbops.Owned[nbdb.LoadBalancer](h.NB, own.KindService)); got != total || total != 7 {
		t.Errorf("%d service load balancers after restart, %d before, want 7 (web: cluster and two local; np: cluster and template; itp: two per-node)", got, total)
	}

	// What a sync deletes it learnt from Start, not from its own writes.
	h.deleteService("default", "itp")
	h.waitLB("Service_default/itp_TCP_itp-local_n1", nil)
	h.waitLB("Service_default/itp_TCP_itp-local_n2", nil)
}

func TestStartDeletesLoadBalancersOfDeletedServices(t *testing.T) {
	h := newHarness(t)
	h.addGroup()
	h.createService(testService())
	first := h.start()
	h.waitLB("Service_default/web_TCP", vipIs("10.96.0.10:80", ""))
	first.Stop()

	// While the controller is down: a service goes, leaving rows in the
	// group and on a switch, and someone else adds a load balancer.
	h.addNodeRows("n1", false)
	var ops []ovsdb.Operation
	for _, lb := range []*nbdb.LoadBalancer{
		{Name: "Service_default/gone_TCP", Vips: map[string]string{"10.96.0.99:80": ""}, ExternalIDs: own.IDs(own.KindService, "default/gone", "tcp")},
		{Name: "Service_default/gone_TCP_itp-local_n1", Vips: map[string]string{"10.96.0.99:80": ""}, ExternalIDs: own.IDs(own.KindService, "default/gone", "tcp/itp-local/n1")},
		{Name: "foreign", Vips: map[string]string{"10.96.0.98:80": ""}},
	} {
		more, uuid, err := nbops.EnsureLoadBalancer(h.NB, lb)
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, more...)
		if strings.HasSuffix(lb.Name, "_n1") {
			more, err = nbops.SwitchLoadBalancersAdd(h.NB, "n1", uuid)
		} else {
			more, err = nbops.LoadBalancerGroupAdd(h.NB, own.ClusterLBGroup, uuid)
		}
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, more...)
	}
	h.Write("stale rows", ops, nil)
	h.deleteService("default", "web")

	second := h.startNoRun()
	if n := second.Txns(); n != 1 {
		t.Errorf("Start sent %d transactions, want 1", n)
	}
	for _, name := range []string{"Service_default/web_TCP", "Service_default/gone_TCP", "Service_default/gone_TCP_itp-local_n1"} {
		h.waitLB(name, nil)
	}
	foreign := h.waitLB("foreign", func(*nbdb.LoadBalancer) error { return nil })
	if got := h.holders(foreign.UUID); !slices.Equal(got, []string{"group:" + own.ClusterLBGroup}) {
		t.Errorf("foreign load balancer held by %v", got)
	}
	sw, err := nbops.GetSwitch(h.NB, "n1")
	if err != nil || len(sw.LoadBalancer) != 0 {
		t.Errorf("switch n1: %v, load balancers %v", err, sw)
	}
}

func TestMissingGroupIsRetried(t *testing.T) {
	h := newHarness(t)
	inst := h.start()
	h.createService(testService())
	ctltest.WaitFor(t, func() error {
		if inst.Syncs("error") < 1 {
			return fmt.Errorf("no failed sync yet")
		}
		return nil
	})
	if h.lb("Service_default/web_TCP") != nil {
		t.Fatal("load balancer written without its group")
	}
	h.addGroup()
	lb := h.waitLB("Service_default/web_TCP", vipIs("10.96.0.10:80", ""))
	if got := h.holders(lb.UUID); !slices.Equal(got, []string{"group:" + own.ClusterLBGroup}) {
		t.Errorf("held by %v", got)
	}
}

func TestExternalTrafficPolicyLocalFollowsNodes(t *testing.T) {
	h := newHarness(t)
	h.addGroup()
	h.addNodeRows("n1", true)
	h.createNode("n1", gatewayOf("172.18.0.2"))
	inst := h.start()
	h.createService(testService(nodePortService(corev1.ServiceExternalTrafficPolicyLocal)))
	h.applySlice(testSlice("web-a", httpPorts(), readyEP("10.128.1.5", "n1"), readyEP("10.128.2.7", "n2")))

	l1 := h.waitLB("Service_default/web_TCP_local_n1", vipIs("172.18.0.2:30080", "10.128.1.5:8080"))
	if got := h.holders(l1.UUID); !slices.Equal(got, []string{"switch:n1", "router:GR_n1"}) {
		t.Errorf("local_n1 held by %v", got)
	}
	if l1.Options["skip_snat"] != "true" {
		t.Errorf("local_n1 options %v", l1.Options)
	}
	h.waitLB("Service_default/web_TCP", vipIs("10.96.0.10:80", "10.128.1.5:8080,10.128.2.7:8080"))
	if h.lb("Service_default/web_TCP_nodeport") != nil {
		t.Error("externalTrafficPolicy Local service has a NodePort template")
	}

	// n2 is announced before its gateway router exists: its load balancer
	// follows once the router does.
	h.createNode("n2", gatewayOf("172.18.0.3"))
	inst.settle(t, 2)
	if h.lb("Service_default/web_TCP_local_n2") != nil {
		t.Fatal("local load balancer for a node without gateway router")
	}
	h.addNodeRows("n2", true)
	l2 := h.waitLB("Service_default/web_TCP_local_n2", vipIs("172.18.0.3:30080", "10.128.2.7:8080"))
	ctltest.WaitFor(t, func() error {
		if got := h.holders(l2.UUID); !slices.Equal(got, []string{"switch:n2", "router:GR_n2"}) {
			return fmt.Errorf("local_n2 held by %v", got)
		}
		return nil
	})

	h.deleteNode("n2")
	h.deleteNodeRows("n2")
	h.waitLB("Service_default/web_TCP_local_n2", nil)
	h.waitLB("Service_default/web_TCP_local_n1", vipIs("172.18.0.2:30080", "10.128.1.5:8080"))

	// Back to Cluster: per-node rows go, the template comes.
	svc, _ := h.KC.CoreV1().Services("default").Get(context.Background(), "web", metav1.GetOptions{})
	svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
	h.updateService(svc)
	h.waitLB("Service_default/web_TCP_local_n1", nil)
	h.waitLB("Service_default/web_TCP_nodeport", vipIs("^KOVN_NODEIP:30080", "10.128.1.5:8080,10.128.2.7:8080"))
}

func TestBadInputIsReportedAndTheRestProgrammed(t *testing.T) {
	h := newHarness(t)
	h.addGroup()
	inst := h.start()
	h.createService(testService(func(s *corev1.Service) { s.Spec.ExternalIPs = []string{"not-an-ip", "192.0.2.10"} }))
	h.applySlice(testSlice("web-a", httpPorts(), readyEP("10.128.1.5", "n1")))
	lb := h.waitLB("Service_default/web_TCP", vipIs("192.0.2.10:80", "10.128.1.5:8080"))
	if lb.Vips["10.96.0.10:80"] != "10.128.1.5:8080" || len(lb.Vips) != 2 {
		t.Errorf("vips %v", lb.Vips)
	}
	ctltest.WaitFor(t, func() error {
		if inst.problems.Count("Service", "InvalidExternalIP") < 1 {
			return fmt.Errorf("no InvalidExternalIP problem reported")
		}
		return nil
	})
	if ev := <-inst.events.Events; !strings.Contains(ev, "Warning InvalidExternalIP") || !strings.Contains(ev, "not-an-ip") {
		t.Errorf("event %q", ev)
	}
}

// Slices that change service move their endpoints with them.
func TestRelabelledSlice(t *testing.T) {
	h := newHarness(t)
	h.addGroup()
	h.start()
	h.createService(testService())
	h.createService(named(testService(func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.11", []string{"10.96.0.11"} }), "b"))
	es := testSlice("s", httpPorts(), readyEP("10.128.1.5", "n1"))
	h.applySlice(es)
	h.waitLB("Service_default/web_TCP", vipIs("10.96.0.10:80", "10.128.1.5:8080"))
	h.applySlice(sliceOf(es, "b", "s"))
	h.waitLB("Service_default/web_TCP", vipIs("10.96.0.10:80", ""))
	h.waitLB("Service_default/b_TCP", vipIs("10.96.0.11:80", "10.128.1.5:8080"))
	if err := h.KC.DiscoveryV1().EndpointSlices("default").Delete(context.Background(), "s", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitLB("Service_default/b_TCP", vipIs("10.96.0.11:80", ""))
}
