package show_test

import (
	"context"
	"strings"
	"testing"

	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/kovntest"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// In underlay mode a node has no switch, cluster router port or gateway
// router (docs/underlay.md): show node says what it has instead — its
// pods' ports on the flat switch, the localnet port with its VLAN, its
// chassis — and reports nothing missing.
func TestShowNodeUnderlay(t *testing.T) {
	c := kovntest.StartUnderlay(t)
	c.AddChassis(t, "chassis-n2", "n2", "172.18.0.12", 0)
	s := newShower(t, c, kovntest.UnderlayObjects()...)
	n, err := s.Show(context.Background(), "node", "n2", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kovnctl show node n2 (underlay):\n%s", n)
	if text := n.String(); strings.Contains(text, "missing") {
		t.Errorf("underlay node reported with missing rows:\n%s", text)
	}
	if m := field(t, n, "mode"); !strings.HasPrefix(m, "underlay: pods sit on kovn_underlay") {
		t.Errorf("mode %q", m)
	}
	ls := n.Find("Logical_Switch", own.UnderlaySwitch)
	if field(t, ls, "vlan") != "100 (tag_request of lnet-kovn_underlay)" || field(t, ls, "other_config") != "subnet=172.20.0.0/24" ||
		field(t, ls, "pod ports on the node") != "2" || field(t, ls, "pod ports on the switch") != "3" ||
		field(t, ls, "load_balancer_group") != own.ClusterLBGroup {
		t.Errorf("underlay switch:\n%s", ls)
	}
	ln := ls.Find("Logical_Switch_Port", own.UnderlayLocalnetPort)
	if field(t, ln, "type") != "localnet" || field(t, ln, "tag_request") != "100" || field(t, ln, "options") != "network_name=physnet" {
		t.Errorf("localnet port:\n%s", ln)
	}
	if ch := n.Find("Chassis", "chassis-n2"); field(t, ch, "hostname") != "n2" {
		t.Errorf("chassis:\n%s", n)
	}
	for _, kind := range []string{"Logical_Router", "Logical_Router_Port"} {
		for _, c := range n.Children {
			if c.Kind == kind {
				t.Errorf("underlay node shows a %s %s", kind, c.Name)
			}
		}
	}
}
