package policy

import (
	"fmt"
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kovn-io/kovn/go-controller/pkg/controller/internal/ctltest"
	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

const (
	webPG     = "kovn_np.team_a.allow_client"
	isoIn     = "kovn_isolate_ingress.team_a"
	isoOut    = "kovn_isolate_egress.team_a"
	clientSel = "namespace:team-a pods:app=client"
)

func webLabels() map[string]string    { return map[string]string{"app": "web"} }
func clientLabels() map[string]string { return map[string]string{"app": "client"} }

// allowClient lets app=client pods reach app=web pods on TCP 80.
func allowClient() *networkingv1.NetworkPolicy {
	return np("team-a", "allow-client", networkingv1.NetworkPolicySpec{
		PodSelector: *sel("app", "web"),
		Ingress:     []networkingv1.NetworkPolicyIngressRule{ingress(ports(port("", 80)), podPeer(sel("app", "client")))},
	})
}

// teamA: namespace team-a with two web pods and a client.
func teamA(h *harness) {
	h.namespace("team-a", nil, nil)
	h.pod(podSpec{ns: "team-a", name: "web-1", ip: "10.128.0.5", labels: webLabels()})
	h.pod(podSpec{ns: "team-a", name: "web-2", ip: "10.128.0.6", labels: webLabels()})
	h.pod(podSpec{ns: "team-a", name: "client-1", ip: "10.128.0.7", labels: clientLabels()})
}

func TestPolicyProgrammed(t *testing.T) {
	h := newHarness(t)
	teamA(h)
	h.start()
	h.policy(allowClient())

	h.waitMembers(webPG, "team-a_web-1", "team-a_web-2")
	h.waitAddrs(own.SelectorAddressSet(clientSel, "v4"), "10.128.0.7")
	acl := h.waitACL(webPG, "ingress/0", matchIs("outport == @"+webPG+" && ip4.src == $"+own.SelectorAddressSet(clientSel, "v4")+" && tcp.dst == 80"))
	if acl.ExternalIDs[own.OwnerKey] != "team-a/allow-client" || acl.ExternalIDs[own.KindKey] != own.KindNetworkPolicy ||
		*acl.Name != "team-a/allow-client" || acl.Action != nbdb.ACLActionAllowRelated || acl.Priority != PriorityAllow {
		t.Errorf("ACL %+v", acl)
	}
	pg, _ := nbops.GetPortGroup(h.NB, webPG)
	if pg.ExternalIDs[own.OwnerKey] != "team-a/allow-client" || pg.ExternalIDs[own.KindKey] != own.KindNetworkPolicy {
		t.Errorf("port group external_ids %v", pg.ExternalIDs)
	}
	as, _ := nbops.GetAddressSet(h.NB, own.SelectorAddressSet(clientSel, "v4"))
	if as.ExternalIDs[own.IDKey] != clientSel || as.ExternalIDs[own.KindKey] != own.KindPolicySelector {
		t.Errorf("address set external_ids %v", as.ExternalIDs)
	}

	// Isolation: the selected pods, a drop and the node management allow;
	// no egress isolation for an ingress-only policy.
	h.waitMembers(isoIn, "team-a_web-1", "team-a_web-2")
	h.waitACL(isoIn, "ingress/drop", matchIs("outport == @"+isoIn+" && ip4"))
	h.waitACL(isoIn, "ingress/node-management", matchIs("outport == @"+isoIn+" && ip4.src == $"+own.NodeManagementAddressSet))
	h.waitNoGroup(isoOut)
}

func TestPodChangesAreIncremental(t *testing.T) {
	h := newHarness(t)
	teamA(h)
	i := h.start()
	// A second policy whose rows a pod change of the first must not touch.
	h.policy(np("team-a", "other", networkingv1.NetworkPolicySpec{PodSelector: *sel("app", "db"),
		Ingress: []networkingv1.NetworkPolicyIngressRule{ingress(nil, podPeer(sel("app", "web")))}}))
	h.policy(allowClient())
	h.waitMembers(webPG, "team-a_web-1", "team-a_web-2")
	clients := own.SelectorAddressSet(clientSel, "v4")
	h.waitAddrs(clients, "10.128.0.7")
	i.Settle(t)

	// maxTxns: a pod's address and its port arrive in separate events,
	// which the controller may see together or apart.
	step := func(desc string, maxTxns, wantOps uint64, act func(), check func()) {
		t.Helper()
		d := i.Delta()
		act()
		check()
		i.Settle(t)
		if txns, ops := d(); txns > maxTxns || ops != wantOps || (wantOps > 0 && txns == 0) {
			t.Errorf("%s: %d transactions, %d ops; want at most %d, %d", desc, txns, ops, maxTxns, wantOps)
		}
	}
	step("new client", 1, 1, func() {
		h.pod(podSpec{ns: "team-a", name: "client-2", ip: "10.128.0.8", labels: clientLabels()})
	}, func() { h.waitAddrs(clients, "10.128.0.7", "10.128.0.8") })

	// A new web pod joins the policy's group and the isolation group, and
	// the address set of the other policy's peers.
	step("new web pod", 2, 3, func() {
		h.pod(podSpec{ns: "team-a", name: "web-3", ip: "10.128.0.9", labels: webLabels()})
	}, func() {
		h.waitMembers(webPG, "team-a_web-1", "team-a_web-2", "team-a_web-3")
		h.waitMembers(isoIn, "team-a_web-1", "team-a_web-2", "team-a_web-3")
		h.waitAddrs(own.SelectorAddressSet("namespace:team-a pods:app=web", "v4"), "10.128.0.5", "10.128.0.6", "10.128.0.9")
	})

	// web-1 becomes a client: it leaves three rows and joins one.
	step("relabel", 1, 4, func() { h.relabelPod("team-a", "web-1", clientLabels()) }, func() {
		h.waitMembers(webPG, "team-a_web-2", "team-a_web-3")
		h.waitMembers(isoIn, "team-a_web-2", "team-a_web-3")
		h.waitAddrs(clients, "10.128.0.5", "10.128.0.7", "10.128.0.8")
	})

	step("delete", 1, 1, func() { h.deletePod("team-a", "client-2") }, func() {
		h.waitAddrs(clients, "10.128.0.5", "10.128.0.7")
	})

	// A pod no selector matches costs nothing; neither does a label
	// change that no selector sees.
	step("unrelated pod", 0, 0, func() {
		h.pod(podSpec{ns: "team-a", name: "batch", ip: "10.128.0.20", labels: map[string]string{"app": "batch"}})
		h.relabelPod("team-a", "web-2", map[string]string{"app": "web", "version": "2"})
	}, func() {})
	// No pod change rewrote the policy's ACLs.
	if n := len(h.acls(webPG)); n != 1 {
		t.Errorf("%d ACLs, want 1", n)
	}
}

func TestPortAppearsLater(t *testing.T) {
	h := newHarness(t)
	h.namespace("team-a", nil, nil)
	h.start()
	h.policy(allowClient())
	h.pod(podSpec{ns: "team-a", name: "web-1", ip: "10.128.0.5", labels: webLabels(), noPort: true})
	h.pod(podSpec{ns: "team-a", name: "client-1", ip: "10.128.0.7", labels: clientLabels(), noPort: true})
	// The peer is in the address set at once: it has an address.
	h.waitAddrs(own.SelectorAddressSet(clientSel, "v4"), "10.128.0.7")
	h.waitMembers(webPG)
	h.port("team-a", "web-1")
	h.waitMembers(webPG, "team-a_web-1")
	h.waitMembers(isoIn, "team-a_web-1")
}

func TestNamespaceRelabel(t *testing.T) {
	h := newHarness(t)
	teamA(h)
	h.namespace("team-b", nil, nil)
	h.pod(podSpec{ns: "team-b", name: "b1", ip: "10.128.1.5", labels: clientLabels()})
	h.pod(podSpec{ns: "team-b", name: "b2", ip: "10.128.1.6"})
	i := h.start()
	h.policy(np("team-a", "from-b", networkingv1.NetworkPolicySpec{PodSelector: *sel("app", "web"),
		Ingress: []networkingv1.NetworkPolicyIngressRule{ingress(nil,
			nsPeer(sel("team", "b"), nil), nsPeer(sel("team", "b"), sel("app", "client")), podPeer(sel("app", "client")))}}))
	all := own.SelectorAddressSet("namespaces:team=b pods:<all>", "v4")
	clients := own.SelectorAddressSet("namespaces:team=b pods:app=client", "v4")
	h.waitAddrs(all)
	h.waitAddrs(clients)
	h.waitAddrs(own.SelectorAddressSet(clientSel, "v4"), "10.128.0.7")
	i.Settle(t)

	d := i.Delta()
	h.updateNamespace("team-b", func(ns *corev1.Namespace) { ns.Labels = map[string]string{"team": "b"} })
	h.waitAddrs(all, "10.128.1.5", "10.128.1.6")
	h.waitAddrs(clients, "10.128.1.5")
	i.Settle(t)
	if txns, ops := d(); txns != 1 || ops != 2 {
		t.Errorf("namespace relabel: %d transactions, %d ops; want one mutate per namespace-selector set", txns, ops)
	}
	h.updateNamespace("team-b", func(ns *corev1.Namespace) { ns.Labels = nil })
	h.waitAddrs(all)
	h.waitAddrs(clients)
	h.waitAddrs(own.SelectorAddressSet(clientSel, "v4"), "10.128.0.7")
}

func TestSharedSelectorAndDelete(t *testing.T) {
	h := newHarness(t)
	teamA(h)
	h.start()
	h.policy(allowClient())
	second := allowClient()
	second.Name = "also-client"
	second.Spec.PolicyTypes = []networkingv1.PolicyType{"Ingress", "Egress"}
	h.policy(second)
	clients := own.SelectorAddressSet(clientSel, "v4")
	h.waitMembers("kovn_np.team_a.also_client", "team-a_web-1", "team-a_web-2")
	h.waitMembers(isoOut, "team-a_web-1", "team-a_web-2")
	h.waitACL(isoOut, "egress/drop", matchIs("inport == @"+isoOut+" && ip4"))
	if n := len(nbops.Owned[nbdb.AddressSet](h.NB, own.KindPolicySelector)); n != 1 {
		t.Errorf("%d selector address sets, want 1 shared", n)
	}

	h.deletePolicy("team-a", "also-client")
	h.waitNoGroup("kovn_np.team_a.also_client")
	h.waitNoGroup(isoOut)
	h.waitAddrs(clients, "10.128.0.7")
	h.waitMembers(isoIn, "team-a_web-1", "team-a_web-2")

	h.deletePolicy("team-a", "allow-client")
	h.waitNoGroup(webPG)
	h.waitNoGroup(isoIn)
	h.waitNoSet(clients)
	ctltest.WaitFor(t, func() error {
		if n := len(h.NB.Cache().Table(nbdb.ACLTable).RowsShallow()); n != 0 {
			return fmt.Errorf("%d ACLs left", n)
		}
		return nil
	})
}

func TestPolicyUpdate(t *testing.T) {
	h := newHarness(t)
	teamA(h)
	h.start()
	p := allowClient()
	h.policy(p)
	h.waitMembers(webPG, "team-a_web-1", "team-a_web-2")

	// Now it selects the client and isolates egress too.
	p.Spec.PodSelector = *sel("app", "client")
	p.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{egress(ports(port(corev1.ProtocolUDP, 53)))}
	h.updatePolicy(p)
	h.waitMembers(webPG, "team-a_client-1")
	h.waitMembers(isoIn, "team-a_client-1")
	h.waitMembers(isoOut, "team-a_client-1")
	a := h.waitACL(webPG, "egress/0", matchIs("inport == @"+webPG+" && udp.dst == 53"))
	if a.Options["apply-after-lb"] != "true" || a.Direction != nbdb.ACLDirectionFromLport {
		t.Errorf("egress ACL %+v", a)
	}
}

func TestNamedPorts(t *testing.T) {
	h := newHarness(t)
	h.namespace("team-a", nil, nil)
	h.pod(podSpec{ns: "team-a", name: "web-1", ip: "10.128.0.5", labels: webLabels(), ports: []corev1.ContainerPort{namedPort("http", 8080)}})
	h.pod(podSpec{ns: "team-a", name: "web-2", ip: "10.128.0.6", labels: webLabels(), ports: []corev1.ContainerPort{namedPort("http", 9090)}})
	h.pod(podSpec{ns: "team-a", name: "db", ip: "10.128.0.9", labels: map[string]string{"app": "db"}, ports: []corev1.ContainerPort{namedPort("sql", 5432)}})
	h.start()
	h.policy(np("team-a", "named", networkingv1.NetworkPolicySpec{PodSelector: *sel("app", "web"),
		PolicyTypes: []networkingv1.PolicyType{"Ingress", "Egress"},
		Ingress:     []networkingv1.NetworkPolicyIngressRule{ingress(ports(port("", "http")))},
		Egress:      []networkingv1.NetworkPolicyEgressRule{egress(ports(port("", "sql")), podPeer(sel("app", "db")))},
	}))
	pgName := "kovn_np.team_a.named"
	h.waitACL(pgName, "ingress/0", matchIs("outport == @"+pgName+
		" && ((ip4.dst == 10.128.0.5 && tcp.dst == 8080) || (ip4.dst == 10.128.0.6 && tcp.dst == 9090))"))
	dbSet := "$" + own.SelectorAddressSet("namespace:team-a pods:app=db", "v4")
	h.waitACL(pgName, "egress/0", matchIs("inport == @"+pgName+" && ip4.dst == "+dbSet+" && ip4.dst == 10.128.0.9 && tcp.dst == 5432"))

	// Pods coming, going and changing labels change the resolution.
	h.pod(podSpec{ns: "team-a", name: "web-3", ip: "10.128.0.10", labels: webLabels(), ports: []corev1.ContainerPort{namedPort("http", 8080)}})
	h.waitACL(pgName, "ingress/0", matchIs("outport == @"+pgName+
		" && ((ip4.dst == {10.128.0.5, 10.128.0.10} && tcp.dst == 8080) || (ip4.dst == 10.128.0.6 && tcp.dst == 9090))"))
	h.relabelPod("team-a", "web-2", nil)
	h.waitACL(pgName, "ingress/0", matchIs("outport == @"+pgName+" && ip4.dst == {10.128.0.5, 10.128.0.10} && tcp.dst == 8080"))
	h.deletePod("team-a", "web-1")
	h.deletePod("team-a", "web-3")
	// Nothing resolves the name: the rule allows nothing.
	h.waitACL(pgName, "ingress/0", absent)
	h.relabelPod("team-a", "db", nil)
	h.waitACL(pgName, "egress/0", absent)
	h.pod(podSpec{ns: "team-a", name: "db-2", ip: "10.128.0.11", labels: map[string]string{"app": "db"}, ports: []corev1.ContainerPort{namedPort("sql", 3306)}})
	h.waitACL(pgName, "egress/0", matchIs("inport == @"+pgName+" && ip4.dst == "+dbSet+" && ip4.dst == 10.128.0.11 && tcp.dst == 3306"))
}

func TestBadInputReported(t *testing.T) {
	h := newHarness(t)
	teamA(h)
	i := h.start()
	h.policy(np("team-a", "bad", networkingv1.NetworkPolicySpec{PodSelector: *sel("app", "web"),
		Ingress: []networkingv1.NetworkPolicyIngressRule{
			ingress(nil, blockPeer("10.0.0.300/8"), podPeer(sel("app", "client"))),
			ingress(nil, blockPeer("fd00::/8")),
			ingress(ports(port("", 90, 80)), podPeer(sel("app", "client"))),
		}}))
	pgName := "kovn_np.team_a.bad"
	h.waitACL(pgName, "ingress/0", matchIs("outport == @"+pgName+" && ip4.src == $"+own.SelectorAddressSet(clientSel, "v4")))
	i.Settle(t)
	acls := h.acls(pgName)
	if len(acls) != 1 {
		t.Errorf("ACLs %v: rules whose every peer or port was invalid must allow nothing", acls)
	}
	for reason, want := range map[string]float64{ReasonInvalidIPBlock: 1, ReasonIPv6NotSupported: 1, ReasonInvalidPort: 1} {
		if got := i.problems.Count("NetworkPolicy", reason); got != want {
			t.Errorf("%s reported %v times, want %v", reason, got, want)
		}
	}
	// The pods are isolated all the same.
	h.waitMembers(isoIn, "team-a_web-1", "team-a_web-2")
}

func TestACLLogging(t *testing.T) {
	h := newHarness(t)
	teamA(h)
	h.namespace("team-x", nil, map[string]string{ACLLoggingAnnotation: `{"deny":"loud"}`})
	i := h.start()
	h.policy(allowClient())
	logged := func(sev string) func(*nbdb.ACL) error {
		return func(a *nbdb.ACL) error {
			if a == nil {
				return fmt.Errorf("no ACL")
			}
			if sev == "" {
				if a.Log || a.Severity != nil || a.Meter != nil {
					return fmt.Errorf("ACL logs: %v %v", a.Severity, a.Meter)
				}
				return nil
			}
			if !a.Log || a.Severity == nil || *a.Severity != sev || a.Meter == nil || *a.Meter != own.ACLLoggingMeter {
				return fmt.Errorf("ACL log %v severity %v meter %v, want %s", a.Log, a.Severity, a.Meter, sev)
			}
			return nil
		}
	}
	h.waitACL(webPG, "ingress/0", logged(""))
	h.updateNamespace("team-a", func(ns *corev1.Namespace) {
		ns.Annotations = map[string]string{ACLLoggingAnnotation: `{"deny":"alert","allow":"notice"}`}
	})
	h.waitACL(webPG, "ingress/0", logged("notice"))
	h.waitACL(isoIn, "ingress/drop", logged("alert"))
	h.waitACL(isoIn, "ingress/node-management", logged(""))

	h.updateNamespace("team-a", func(ns *corev1.Namespace) {
		ns.Annotations = map[string]string{ACLLoggingAnnotation: `{"deny":"alert","allow":"shout"}`}
	})
	h.waitACL(webPG, "ingress/0", logged(""))
	h.waitACL(isoIn, "ingress/drop", logged(""))
	ctltest.WaitFor(t, func() error {
		if n := i.problems.Count("Namespace", ReasonInvalidLogging); n != 2 {
			return fmt.Errorf("%v invalid logging reports, want 2 (team-x at start, team-a)", n)
		}
		return nil
	})

	// The meter exists from the start.
	m := &nbdb.Meter{Name: own.ACLLoggingMeter}
	if err := h.NB.Get(ctxBG(), m); err != nil || m.Unit != nbdb.MeterUnitPktps || len(m.Bands) != 1 {
		t.Errorf("meter %+v: %v", m, err)
	}
}

func TestNodeManagementAddresses(t *testing.T) {
	h := newHarness(t)
	node := func(name, subnet string) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{
			kube.NodeSubnetsAnnotation: kube.MarshalNodeSubnets([]netip.Prefix{netip.MustParsePrefix(subnet)})}}}
	}
	if _, err := h.KC.CoreV1().Nodes().Create(ctxBG(), node("n1", "10.128.0.0/24"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	i := h.startNoRun()
	// Start creates it, so isolation ACLs never refer to a missing set.
	h.waitAddrs(own.NodeManagementAddressSet, "10.128.0.2")
	i.Run()
	if _, err := h.KC.CoreV1().Nodes().Create(ctxBG(), node("n2", "10.128.1.0/24"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitAddrs(own.NodeManagementAddressSet, "10.128.0.2", "10.128.1.2")
	if err := h.KC.CoreV1().Nodes().Delete(ctxBG(), "n1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitAddrs(own.NodeManagementAddressSet, "10.128.1.2")
}
