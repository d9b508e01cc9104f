package show_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/kovntest"
	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// TestShowExternalPort: team-a/vm1, a VM on n1 labelled app=web, is
// programmed as kovn-controller does it and bound; team-a/vm2 asks for an
// address outside kovn_external's subnet and is refused.
func TestShowExternalPort(t *testing.T) {
	c := kovntest.Start(t)
	c.AddChassis(t, "chassis-n1", "n1", "172.18.0.11", 0)
	ip := netip.MustParseAddr("10.128.250.5")
	vm1 := c.AddExternalPort(t, kovntest.ExternalPortObject("team-a", "vm1", "n1", map[string]string{"app": "web"}), ip)
	c.Bind(t, "ep_team-a_vm1", "chassis-n1", true)

	vm2 := kovntest.ExternalPortObject("team-a", "vm2", "n1", nil)
	vm2.Spec.IP = "10.200.0.7"
	refusal := kovntest.Refusal(kovntest.ExternalPortSubnet, "ExternalPort:team-a/vm2", netip.MustParseAddr(vm2.Spec.IP))
	meta.SetStatusCondition(&vm2.Status.Conditions, metav1.Condition{Type: kube.ExternalPortReady, Status: metav1.ConditionFalse,
		Reason: "IPOutOfRange", Message: refusal, ObservedGeneration: 1})

	s := newShower(t, c, kovntest.Objects()...)
	s.Dyn = kovntest.Dynamic(t, vm1, vm2)
	u, err := vm2.Unstructured()
	if err != nil {
		t.Fatal(err)
	}
	kovntest.RecordWarning(t, s.Kube, u, kube.ExternalPortKind, "IPOutOfRange", refusal)
	ctx := context.Background()

	n, err := s.Show(ctx, "externalport", "vm1", "team-a")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kovnctl show externalport team-a/vm1:\n%s", n)
	if field(t, n, "spec.chassis") != "n1" || field(t, n, "status.ips") != "10.128.250.5/24" || field(t, n, "status.ifaceID") != "ep_team-a_vm1" ||
		field(t, n, "conditions") != "Ready=True Programmed: address assigned, port in OVN" {
		t.Errorf("external port facts:\n%s", n)
	}
	lsp := n.Find("Logical_Switch_Port", "ep_team-a_vm1")
	if field(t, lsp, "addresses") != "0a:58:0a:80:fa:05 10.128.250.5" || field(t, lsp, "port_security") != "0a:58:0a:80:fa:05 10.128.250.5" ||
		field(t, lsp, "options") != "requested-chassis=n1" || field(t, lsp, "note") != "" {
		t.Errorf("port:\n%s", lsp)
	}
	if pb := lsp.Find("Port_Binding", "ep_team-a_vm1"); field(t, pb, "chassis") != "chassis-n1" || field(t, pb, "up") != "true" {
		t.Errorf("binding:\n%s", pb)
	}
	if ls := n.Find("Logical_Switch", own.ExternalPortSwitch); field(t, ls, "subnet") != "10.128.250.0/24" {
		t.Errorf("switch:\n%s", n)
	}
	if m := field(t, n.Find("Port_Group", own.PolicyPortGroup("team-a", "allow-web")), "meaning"); m != "selected by NetworkPolicy team-a/allow-web" {
		t.Errorf("policy group meaning %q", m)
	}
	if m := field(t, n.Find("Port_Group", own.IsolationPortGroup("team-a", "ingress")), "meaning"); !strings.HasPrefix(m, "isolated for ingress in namespace team-a") {
		t.Errorf("isolation group meaning %q", m)
	}
	if as := n.Find("Address_Set", own.NamespaceAddressSet("team-a", "v4")); field(t, as, "contains") != "10.128.250.5" {
		t.Errorf("namespace address set:\n%s", n)
	}

	n, err = s.Show(ctx, "ep", "team-a/vm2", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kovnctl show externalport team-a/vm2:\n%s", n)
	if nb := field(t, n, "nb"); nb != "no logical switch port ep_team-a_vm2: kovn-controller refused it: IPOutOfRange: "+refusal {
		t.Errorf("nb: %q", nb)
	}
	if ev := n.Find("Event", "IPOutOfRange"); field(t, ev, "message") != refusal {
		t.Errorf("event:\n%s", n)
	}

	// Not created: rows are looked up all the same.
	n, _ = s.Show(ctx, "externalport", "team-a/gone", "")
	if field(t, n, "api") != "not found: any rows below are left from a deleted object" || !strings.HasSuffix(field(t, n, "nb"), "and no ExternalPort to explain it") {
		t.Errorf("gone:\n%s", n)
	}
}
