package show_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/kovntest"
	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/nbview"
	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/ovndb"
	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/sbview"
	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/show"
	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/tree"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// newShower connects as the command does, with a fake API holding objs.
func newShower(t *testing.T, c *kovntest.Cluster, objs ...runtime.Object) *show.Shower {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), kovntest.Timeout)
	defer cancel()
	nb, err := ovndb.NB(ctx, c.OVN.NBAddr, nil, nbview.Tables()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nb.Close)
	sb, err := ovndb.SB(ctx, c.OVN.SBAddr, nil, sbview.Tables()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	return &show.Shower{Kube: fake.NewSimpleClientset(objs...), NB: nbview.FromClient(nb), SB: sbview.FromClient(sb)}
}

// field returns a node's field as text ("" when absent).
func field(t *testing.T, n *tree.Node, key string) string {
	t.Helper()
	if n == nil {
		t.Fatalf("no node for field %q", key)
	}
	v, _ := n.Get(key)
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case []string:
		return strings.Join(x, ", ")
	case map[string]string:
		return tree.MapString(x)
	}
	b, _ := json.Marshal(v)
	return strings.Trim(string(b), `"`)
}

func TestShowAgainstOVN(t *testing.T) {
	c := kovntest.Start(t)
	c.AddChassis(t, "chassis-n1", "n1", "172.18.0.11", 0)
	c.Bind(t, "team-a_web-1", "chassis-n1", true)
	c.WaitSB(t, "Port_Binding", "up", "true")
	s := newShower(t, c, kovntest.Objects()...)
	ctx := context.Background()

	t.Run("pod", func(t *testing.T) {
		n, err := s.Show(ctx, "pod", "team-a/web-1", "")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("kovnctl show pod team-a/web-1:\n%s", n)
		if field(t, n, "node") != "n1" || !strings.HasPrefix(field(t, n, "pod-network"), "ips 10.128.1.5/24 mac 0a:58:0a:80:01:05") {
			t.Errorf("pod facts:\n%s", n)
		}
		lsp := n.Find("Logical_Switch_Port", "team-a_web-1")
		if field(t, lsp, "addresses") != "0a:58:0a:80:01:05 10.128.1.5" || field(t, lsp, "port_security") != "0a:58:0a:80:01:05 10.128.1.5" ||
			field(t, lsp, "options") != "iface-id-ver=uid-team-a-web-1 requested-chassis=n1" {
			t.Errorf("port:\n%s", lsp)
		}
		pb := n.Find("Port_Binding", "team-a_web-1")
		if field(t, pb, "chassis") != "chassis-n1" || field(t, pb, "up") != "true" {
			t.Errorf("binding:\n%s", pb)
		}
		if field(t, n.Find("Logical_Switch", "n1"), "subnet") != "10.128.1.0/24" {
			t.Errorf("switch:\n%s", n)
		}
		if m := field(t, n.Find("Port_Group", own.PolicyPortGroup("team-a", "allow-web")), "meaning"); m != "selected by NetworkPolicy team-a/allow-web" {
			t.Errorf("policy group meaning %q", m)
		}
		if m := field(t, n.Find("Port_Group", own.IsolationPortGroup("team-a", "ingress")), "meaning"); !strings.HasPrefix(m, "isolated for ingress in namespace team-a") {
			t.Errorf("isolation group meaning %q", m)
		}
		if n.Find("Address_Set", own.NamespaceAddressSet("team-a", "v4")) == nil {
			t.Errorf("namespace address set missing:\n%s", n)
		}
		// An unbound pod says so.
		n, _ = s.Show(ctx, "pod", "client", "team-a")
		if ch := field(t, n.Find("Port_Binding", "team-a_client"), "chassis"); !strings.HasPrefix(ch, "none") {
			t.Errorf("client binding chassis %q", ch)
		}
	})

	t.Run("service", func(t *testing.T) {
		n, err := s.Show(ctx, "svc", "team-a/web", "")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("kovnctl show service team-a/web:\n%s", n)
		lb := n.Find("Load_Balancer", own.ServiceLB("team-a", "web", "TCP"))
		if field(t, lb, "vips") != "10.96.0.10:80 → 10.128.1.5:8080" || field(t, lb, "protocol") != "tcp" {
			t.Errorf("load balancer:\n%s", n)
		}
		g := lb.Find("Load_Balancer_Group", own.ClusterLBGroup)
		if field(t, g, "switches") != "n1, n2" || field(t, g, "routers") != "GR_n1, GR_n2" {
			t.Errorf("group:\n%s", g)
		}
		if field(t, n, "ports") != "http 80/TCP → 8080" {
			t.Errorf("service facts:\n%s", n)
		}
	})

	t.Run("policy", func(t *testing.T) {
		n, err := s.Show(ctx, "policy", "team-a/allow-web", "")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("kovnctl show policy team-a/allow-web:\n%s", n)
		pg := n.Find("Port_Group", own.PolicyPortGroup("team-a", "allow-web"))
		if field(t, pg, "ports") != "team-a_web-1" {
			t.Errorf("policy group:\n%s", pg)
		}
		acl := pg.Find("ACL", "to-lport 1001 allow-related")
		if acl == nil || field(t, acl, "id") != "ingress/0" || !strings.Contains(field(t, acl, "match"), "tcp.dst == 80") {
			t.Fatalf("allow ACL:\n%s", pg)
		}
		var sets []string
		for _, ch := range pg.Children {
			if ch.Kind == "Address_Set" {
				sets = append(sets, ch.Name+" = "+field(t, ch, "addresses")+" ("+field(t, ch, "meaning")+")")
			}
		}
		want := []string{own.SelectorAddressSet("namespace:team-a pods:app=client", "v4") + " = 10.128.2.5 (peer selector namespace:team-a pods:app=client)"}
		if !slices.Equal(sets, want) {
			t.Errorf("address sets %q, want %q", sets, want)
		}
		iso := n.Find("Port_Group", own.IsolationPortGroup("team-a", "ingress"))
		if iso == nil || iso.Find("ACL", "to-lport 1000 drop") == nil || iso.Find("ACL", "to-lport 1001 allow-related") == nil {
			t.Errorf("isolation group:\n%s", iso)
		}
		if field(t, n, "policyTypes") != "Ingress" || field(t, n, "podSelector") != "app=web" {
			t.Errorf("policy facts:\n%s", n)
		}
	})

	t.Run("node", func(t *testing.T) {
		n, err := s.Show(ctx, "node", "n1", "")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("kovnctl show node n1:\n%s", n)
		ls := n.Find("Logical_Switch", "n1")
		if field(t, ls, "other_config") != "exclude_ips=10.128.1.2 subnet=10.128.1.0/24" || field(t, ls, "pod ports") != "1" ||
			ls.Find("Logical_Switch_Port", "kovn-mp-n1") == nil || ls.Find("Logical_Switch_Port", "stos-n1") == nil {
			t.Errorf("node switch:\n%s", ls)
		}
		if field(t, n.Find("Logical_Router_Port", "rtos-n1"), "networks") != "10.128.1.1/24" {
			t.Errorf("router port:\n%s", n)
		}
		gr := n.Find("Logical_Router", "GR_n1")
		if !strings.Contains(field(t, gr, "options"), "chassis=chassis-n1") || gr.Find("Logical_Router_Port", "rtoj-GR_n1") == nil ||
			field(t, gr, "nat") != "snat 10.128.1.0/24 → 172.18.0.11 ports 61440-65535" {
			t.Errorf("gateway router:\n%s", gr)
		}
		if n.Find("Logical_Switch", "ext_n1").Find("Logical_Switch_Port", "lnet-n1") == nil {
			t.Errorf("external switch:\n%s", n)
		}
		ch := n.Find("Chassis", "chassis-n1")
		if field(t, ch, "hostname") != "n1" || field(t, ch, "encaps") != "geneve 172.18.0.11" {
			t.Errorf("chassis:\n%s", ch)
		}
		if field(t, n.Find("Chassis_Template_Var", "chassis-n1"), "variables") != "KOVN_NODEIP=172.18.0.11" {
			t.Errorf("template var:\n%s", n)
		}
		// n2 has no chassis registered.
		n, _ = s.Show(ctx, "node", "n2", "")
		if st := field(t, n.Find("Chassis", "chassis-n2"), "state"); !strings.HasPrefix(st, "absent in SB") {
			t.Errorf("n2 chassis state %q", st)
		}
	})

	t.Run("pod refused by the controller", func(t *testing.T) {
		// team-b/bad asks for an address outside n2's subnet: no
		// address, no port, and kovn-controller's Warning Event says why.
		s := newShower(t, c, append(kovntest.Objects(), kovntest.RefusedPod())...)
		msg := kovntest.Refusal(kovntest.Nodes[1].Subnet, "team-b/bad", kovntest.RefusedIP)
		kovntest.RecordWarning(t, s.Kube, kovntest.RefusedPod(), "Pod", "IPOutOfRange", msg)
		n, err := s.Show(ctx, "pod", "team-b/bad", "")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("kovnctl show pod team-b/bad:\n%s", n)
		if nb := field(t, n, "nb"); nb != "no logical switch port team-b_bad: kovn-controller refused to give it an address: its Warning Event below says why" {
			t.Errorf("nb: %q", nb)
		}
		ev := n.Find("Event", "IPOutOfRange")
		if field(t, ev, "message") != msg || field(t, ev, "type") != "Warning" || field(t, ev, "from") != "kovn-controller" || field(t, ev, "count") != "1" {
			t.Errorf("event:\n%s", n)
		}
	})

	t.Run("gone and unknown", func(t *testing.T) {
		n, err := s.Show(ctx, "pod", "team-a/ghost", "")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(field(t, n, "api"), "not found") || !strings.HasPrefix(field(t, n, "nb"), "no logical switch port team-a_ghost") {
			t.Errorf("ghost pod:\n%s", n)
		}
		n, err = s.Show(ctx, "externalport", "x", "")
		if err != nil || field(t, n, "api") != "not consulted (no kubeconfig)" ||
			field(t, n, "nb") != "no logical switch port ep_default_x: and no ExternalPort to explain it" {
			t.Errorf("externalport without an API: %v\n%s", err, n)
		}
		if _, err := s.Show(ctx, "gadget", "x", ""); err == nil {
			t.Error("unknown kind accepted")
		}
	})
}
