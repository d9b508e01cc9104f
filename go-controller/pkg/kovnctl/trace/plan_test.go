package trace

import (
	"context"
	"strings"
	"testing"

	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/nbview"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// testView: node switches n1 and n2 on the cluster router, pods
// team-a/web-1 and team-a/client on n1, team-b/x on n2; team-a/web-1 is
// selected by team-a/allow-web and isolated for ingress.
func testView() *nbview.View {
	lsp := func(uuid, name, addr string) *nbdb.LogicalSwitchPort {
		return &nbdb.LogicalSwitchPort{UUID: uuid, Name: name, Addresses: []string{addr}}
	}
	rtr := func(uuid, node string) *nbdb.LogicalSwitchPort {
		return &nbdb.LogicalSwitchPort{UUID: uuid, Name: "stos-" + node, Type: "router", Addresses: []string{"router"},
			Options: map[string]string{"router-port": "rtos-" + node}}
	}
	drop := &nbdb.ACL{UUID: "7ac4130c-8a0e-4ca7-8610-e7f3941a8813", Direction: "to-lport", Priority: 1000, Action: "drop",
		Match:       "outport == @pg_iso && ip4",
		ExternalIDs: own.IDs(own.KindPolicyIsolation, "team-a", "ingress/drop")}
	allow := &nbdb.ACL{UUID: "7464276a-9559-4c54-8edc-840cf22d76ce", Direction: "to-lport", Priority: 1001, Action: "allow-related",
		Match:       "outport == @pg_np && ip4.src == 10.128.1.6 && tcp.dst == 80",
		ExternalIDs: own.IDs(own.KindNetworkPolicy, "team-a/allow-web", "ingress/0")}
	return nbview.Build(nbview.Rows{
		Switches: []*nbdb.LogicalSwitch{
			{UUID: "ls1", Name: "n1", Ports: []string{"p-stos1", "p-web", "p-cli"}},
			{UUID: "ls2", Name: "n2", Ports: []string{"p-stos2", "p-x"}},
		},
		SwitchPorts: []*nbdb.LogicalSwitchPort{
			rtr("p-stos1", "n1"), rtr("p-stos2", "n2"),
			lsp("p-web", "team-a_web-1", "0a:58:0a:80:01:05 10.128.1.5"),
			lsp("p-cli", "team-a_client", "0a:58:0a:80:01:06 10.128.1.6"),
			lsp("p-x", "team-b_x", "0a:58:0a:80:02:05 10.128.2.5"),
		},
		Routers: []*nbdb.LogicalRouter{{UUID: "lr", Name: own.ClusterRouter, Ports: []string{"r1", "r2"}}},
		RouterPorts: []*nbdb.LogicalRouterPort{
			{UUID: "r1", Name: "rtos-n1", MAC: "0a:58:0a:80:01:01", Networks: []string{"10.128.1.1/24"}},
			{UUID: "r2", Name: "rtos-n2", MAC: "0a:58:0a:80:02:01", Networks: []string{"10.128.2.1/24"}},
		},
		PortGroups: []*nbdb.PortGroup{
			{UUID: "pg1", Name: "pg_iso", Ports: []string{"p-web"}, ACLs: []string{drop.UUID},
				ExternalIDs: own.IDs(own.KindPolicyIsolation, "team-a", "ingress")},
			{UUID: "pg2", Name: "pg_np", Ports: []string{"p-web"}, ACLs: []string{allow.UUID},
				ExternalIDs: own.IDs(own.KindNetworkPolicy, "team-a/allow-web", "")},
		},
		ACLs: []*nbdb.ACL{drop, allow},
	})
}

func TestPlanSameSwitch(t *testing.T) {
	p, err := MakePlan(testView(), Request{From: "team-a/client", To: "team-a/web-1", Port: 80})
	if err != nil {
		t.Fatal(err)
	}
	want := `inport == "team-a_client" && eth.src == 0a:58:0a:80:01:06 && eth.dst == 0a:58:0a:80:01:05 && ` +
		`ip4.src == 10.128.1.6 && ip4.dst == 10.128.1.5 && ip.ttl == 64 && tcp.src == 40000 && tcp.dst == 80`
	if p.Microflow != want || p.Datapath != "n1" || p.Gateway != "" || p.Proto != "tcp" {
		t.Errorf("plan %+v\nmicroflow %s\nwant      %s", p, p.Microflow, want)
	}
	if p.Describe() != "team-a/client (10.128.1.6) → team-a/web-1 (10.128.1.5) tcp/80" {
		t.Errorf("describe %q", p.Describe())
	}
}

func TestPlanRoutedAndIP(t *testing.T) {
	v := testView()
	p, err := MakePlan(v, Request{From: "team-b/x", To: "team-a/web-1", Proto: "udp", Port: 53})
	if err != nil {
		t.Fatal(err)
	}
	if p.Gateway != "rtos-n2" || p.EthDst != "0a:58:0a:80:02:01" || p.Datapath != "n2" ||
		!strings.HasSuffix(p.Microflow, "udp.src == 40000 && udp.dst == 53") {
		t.Errorf("plan %+v", p)
	}
	// An IP on the source's own switch is reached at layer 2, anything
	// else through the gateway; no port means ICMP echo.
	p, err = MakePlan(v, Request{From: "team-a/client", To: "10.128.1.5"})
	if err != nil {
		t.Fatal(err)
	}
	if p.EthDst != "0a:58:0a:80:01:05" || p.Dst.Port != "team-a_web-1" || !strings.HasSuffix(p.Microflow, "icmp4.type == 8 && icmp4.code == 0") {
		t.Errorf("plan %+v", p)
	}
	p, err = MakePlan(v, Request{From: "team-a/client", To: "8.8.8.8", Port: 443})
	if err != nil {
		t.Fatal(err)
	}
	if p.EthDst != "0a:58:0a:80:01:01" || p.Gateway != "rtos-n1" {
		t.Errorf("plan %+v", p)
	}
}

func TestPlanErrors(t *testing.T) {
	v := testView()
	for _, r := range []Request{
		{From: "team-a", To: "team-a/web-1"},
		{From: "team-a/nope", To: "team-a/web-1"},
		{From: "team-a/client", To: "team-a/nope"},
		{From: "team-a/client", To: "fd00::1"},
		{From: "team-a/client", To: "team-a/web-1", Proto: "tcp"},
		{From: "team-a/client", To: "team-a/web-1", Proto: "icmp", Port: 5},
		{From: "team-a/client", To: "team-a/web-1", Proto: "sctp", Port: 5},
	} {
		if p, err := MakePlan(v, r); err == nil {
			t.Errorf("%+v: no error, plan %+v", r, p)
		}
	}
}

// Ties flows to ACLs: by stage-hint when SB answers, by match text when
// it cannot; a hint shared by two flows is not guessed at.
func TestExplainer(t *testing.T) {
	v := testView()
	p := load(t, "denied_cross_node.txt")
	hints := func(_ context.Context, stages []string) (map[string]string, error) {
		return map[string]string{"dc56df1f-1111-2222-3333-444444444444": "7ac4130c"}, nil
	}
	e := &Explainer{View: v, Hints: hints, Dst: Endpoint{Pod: "team-a/web-1", Port: "team-a_web-1"}}
	acls, err := e.ACLs(context.Background(), p)
	if err != nil || len(acls) != 1 || acls[0].By != "stage-hint" || acls[0].OwnerKind != own.KindPolicyIsolation || acls[0].PortGroup != "pg_iso" {
		t.Fatalf("acls %+v err %v", acls, err)
	}
	want := "default deny of namespace team-a for ingress: team-a/web-1 is isolated for ingress by NetworkPolicy team-a/allow-web, and no rule of them allows this traffic"
	if acls[0].Reason != want {
		t.Errorf("reason\n%q\nwant\n%q", acls[0].Reason, want)
	}
	decided, because := decide(Decide(p), acls)
	if len(decided) != 1 || because != "denied by "+want {
		t.Errorf("decide: %v %q", decided, because)
	}

	// Without SB, the match text ties the allow of the allowed trace.
	e.Hints = nil
	acls, _ = e.ACLs(context.Background(), load(t, "allowed.txt"))
	if len(acls) != 1 || acls[0].By != "match" || acls[0].Reason != "NetworkPolicy team-a/allow-web, ingress rule 0" {
		t.Fatalf("acls %+v", acls)
	}
	if _, because := decide(Decide(load(t, "allowed.txt")), acls); because != "allowed by NetworkPolicy team-a/allow-web, ingress rule 0" {
		t.Errorf("because %q", because)
	}

	// A policy that the API says is egress-only does not isolate ingress.
	e.PolicyTypes = func(ns, name string) (bool, bool, bool) { return false, true, true }
	if r := e.isolationReason("team-a", "ingress", nil); !strings.Contains(r, "by policies of namespace team-a") {
		t.Errorf("reason %q", r)
	}
}
