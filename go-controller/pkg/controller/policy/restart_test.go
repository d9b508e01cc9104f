package policy

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// variety is a set of policies using every feature, for tests that need
// many kinds of rows.
func variety() []*networkingv1.NetworkPolicy {
	return []*networkingv1.NetworkPolicy{
		allowClient(),
		np("team-a", "deny-all", networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{"Ingress", "Egress"}}),
		np("team-a", "many.peers", networkingv1.NetworkPolicySpec{PodSelector: *sel("app", "web"),
			Ingress: []networkingv1.NetworkPolicyIngressRule{
				ingress(ports(port(tcp, 80), port(tcp, 443), port(udp, 53), port(sctp, 9), port(tcp, 1000, 2000), port(udp, nil)),
					podPeer(sel("app", "client")), nsPeer(sel("team", "b"), nil), nsPeer(sel("team", "b"), sel("app", "client")),
					blockPeer("192.168.0.0/16", "192.168.1.0/24", "192.168.2.0/24"), blockPeer("172.16.0.0/12")),
				ingress(ports(port("", "http"), port(udp, "dns"))),
			},
			Egress: []networkingv1.NetworkPolicyEgressRule{
				egress(ports(port("", "sql")), podPeer(sel("app", "db"))),
				egress(ports(port("", "http"))),
				egress(ports(port(udp, 53)), nsPeer(&metav1.LabelSelector{}, nil)),
				egress(nil, blockPeer("0.0.0.0/0", "10.0.0.0/8")),
			}}),
		np("team-b", "from-a", networkingv1.NetworkPolicySpec{
			Ingress: []networkingv1.NetworkPolicyIngressRule{ingress(nil, nsPeer(sel("kubernetes.io/metadata.name", "team-a"), sel("app", "client")))}}),
	}
}

func populate(h *harness) {
	teamA(h)
	h.namespace("team-b", map[string]string{"team": "b"}, map[string]string{ACLLoggingAnnotation: `{"deny":"info","allow":"debug"}`})
	h.pod(podSpec{ns: "team-b", name: "b1", ip: "10.128.1.5", labels: clientLabels(),
		ports: []corev1.ContainerPort{namedPort("http", 8081), {Name: "dns", ContainerPort: 5353, Protocol: corev1.ProtocolUDP}}})
	h.pod(podSpec{ns: "team-a", name: "db", ip: "10.128.0.9", labels: map[string]string{"app": "db"},
		ports: []corev1.ContainerPort{namedPort("sql", 5432), namedPort("http", 8080)}})
}

func TestRestartIsQuiet(t *testing.T) {
	h := newHarness(t)
	populate(h)
	first := h.start()
	for _, p := range variety() {
		h.policy(p)
	}
	h.waitMembers("kovn_np.team_b.from_a", "team-b_b1")
	h.waitACL("kovn_np.team_a.many.peers", "egress/0", func(a *nbdb.ACL) error {
		if a == nil {
			return fmt.Errorf("no egress/0")
		}
		return nil
	})
	first.Settle(t)
	if txns, _ := first.Tx.Stats(); txns == 0 {
		t.Fatal("first instance sent nothing")
	}
	first.Stop()

	second := h.startNoRun()
	if txns, ops := second.Tx.Stats(); txns != 0 {
		t.Errorf("Start on a converged database sent %d transactions (%d ops)", txns, ops)
	}
	second.Run()
	second.Settle(t)
	if txns, ops := second.Tx.Stats(); txns != 0 {
		t.Errorf("syncs after a converged restart sent %d transactions (%d ops)", txns, ops)
	}
}

func TestStartDeletesStale(t *testing.T) {
	h := newHarness(t)
	populate(h)
	first := h.start()
	for _, p := range variety() {
		h.policy(p)
	}
	h.waitMembers("kovn_np.team_b.from_a", "team-b_b1")
	first.Settle(t)
	first.Stop()

	// While no controller runs: one policy goes, another changes.
	h.deletePolicy("team-b", "from-a")
	h.deletePolicy("team-a", "deny-all")
	p := allowClient()
	p.Spec.Ingress = nil
	h.updatePolicy(p)
	// Rows of other owners stay.
	h.apply("someone else's", func() ([]ovsdbOp, error) {
		ops, _, err := nbops.EnsurePortGroup(h.NB, &nbdb.PortGroup{Name: "other", ExternalIDs: own.IDs("Other", "team-b/from-a", "")})
		return ops, err
	})

	second := h.startNoRun()
	if txns, _ := second.Tx.Stats(); txns != 1 {
		t.Errorf("Start sent %d transactions, want 1", txns)
	}
	h.waitNoGroup("kovn_np.team_b.from_a")
	h.waitNoGroup("kovn_isolate_ingress.team_b")
	h.waitNoSet(own.SelectorAddressSet("namespaces:kubernetes.io/metadata.name=team-a pods:app=client", "v4"))
	h.waitMembers("other")
	// Still used: kept by Start (the namespace's isolation by many.peers).
	h.waitMembers("kovn_isolate_egress.team_a", "team-a_web-1", "team-a_web-2", "team-a_client-1", "team-a_db")
	second.Run()
	// The changed policy is fixed by its sync; deny-all's pods are no
	// longer isolated in egress.
	h.waitACL(webPG, "ingress/0", absent)
	h.waitMembers("kovn_isolate_egress.team_a", "team-a_web-1", "team-a_web-2")
	second.Settle(t)
}
