package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

func np(ns, name string, spec networkingv1.NetworkPolicySpec) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}
}

func sel(kv ...string) *metav1.LabelSelector {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return &metav1.LabelSelector{MatchLabels: m}
}

func podPeer(s *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{PodSelector: s}
}

func nsPeer(ns, pod *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{NamespaceSelector: ns, PodSelector: pod}
}

func blockPeer(cidr string, except ...string) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: cidr, Except: except}}
}

func port(proto corev1.Protocol, p any, end ...int32) networkingv1.NetworkPolicyPort {
	out := networkingv1.NetworkPolicyPort{}
	if proto != "" {
		out.Protocol = &proto
	}
	switch v := p.(type) {
	case int:
		ip := intstr.FromInt32(int32(v))
		out.Port = &ip
	case string:
		sp := intstr.FromString(v)
		out.Port = &sp
	}
	if len(end) > 0 {
		out.EndPort = &end[0]
	}
	return out
}

func ingress(ports []networkingv1.NetworkPolicyPort, from ...networkingv1.NetworkPolicyPeer) networkingv1.NetworkPolicyIngressRule {
	return networkingv1.NetworkPolicyIngressRule{Ports: ports, From: from}
}

func egress(ports []networkingv1.NetworkPolicyPort, to ...networkingv1.NetworkPolicyPeer) networkingv1.NetworkPolicyEgressRule {
	return networkingv1.NetworkPolicyEgressRule{Ports: ports, To: to}
}

func ports(p ...networkingv1.NetworkPolicyPort) []networkingv1.NetworkPolicyPort { return p }

// allSets names every selector's address set as the controller does.
func allSets(p *networkingv1.NetworkPolicy) map[string]string {
	out := map[string]string{}
	for _, s := range Compile(p).Selectors() {
		out[s.Key] = own.SelectorAddressSet(s.Key, "v4")
	}
	return out
}

func as(key string) string { return "$" + own.SelectorAddressSet(key, "v4") }

// summary is an ACL in one comparable line.
func summary(a *nbdb.ACL) string {
	s := fmt.Sprintf("%s %s %d %s: %s", a.ExternalIDs[own.IDKey], a.Direction, a.Priority, a.Action, a.Match)
	if len(a.Options) > 0 {
		s += fmt.Sprintf(" %v", a.Options)
	}
	if a.Log {
		s += fmt.Sprintf(" log=%s meter=%s", *a.Severity, *a.Meter)
	}
	return s
}

const pg = "@kovn_np.team_a.web"

// desiredCase is one policy and the ACLs and problems it must give.
type desiredCase struct {
	name     string
	spec     networkingv1.NetworkPolicySpec
	named    NamedPorts
	logging  Logging
	want     []string
	problems []string
}

func runDesired(t *testing.T, cases []desiredCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := np("team-a", "web", tc.spec)
			acls, problems := Desired(p, Inputs{AddressSets: allSets(p), NamedPorts: tc.named, Logging: tc.logging})
			var got []string
			for _, a := range acls {
				got = append(got, summary(a))
				checkACL(t, a, "team-a/web")
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("ACLs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			var reasons []string
			for _, pr := range problems {
				reasons = append(reasons, pr.Reason)
				if pr.Message == "" {
					t.Errorf("problem %s without message", pr.Reason)
				}
			}
			if !slices.Equal(reasons, tc.problems) {
				t.Errorf("problems %v, want %v", problems, tc.problems)
			}
		})
	}
}

const (
	clientKey = "namespace:team-a pods:app=client"
	tcp       = corev1.ProtocolTCP
	udp       = corev1.ProtocolUDP
	sctp      = corev1.ProtocolSCTP
)

func TestDesiredIngress(t *testing.T) {
	runDesired(t, []desiredCase{{
		name: "pod selector peer and a port",
		spec: networkingv1.NetworkPolicySpec{PodSelector: *sel("app", "web"), Ingress: []networkingv1.NetworkPolicyIngressRule{
			ingress(ports(port("", 80)), podPeer(sel("app", "client")))}},
		want: []string{"ingress/0 to-lport 1001 allow-related: outport == " + pg + " && ip4.src == " + as(clientKey) + " && tcp.dst == 80"},
	}, {
		name: "no rules: isolation only",
		spec: networkingv1.NetworkPolicySpec{PodSelector: *sel("app", "web"), PolicyTypes: []networkingv1.PolicyType{"Ingress", "Egress"}},
	}, {
		name: "empty rule allows everything",
		spec: networkingv1.NetworkPolicySpec{PodSelector: *sel("app", "web"), Ingress: []networkingv1.NetworkPolicyIngressRule{{}}},
		want: []string{"ingress/0 to-lport 1001 allow-related: outport == " + pg},
	}, {
		name: "no peers, ports only",
		spec: networkingv1.NetworkPolicySpec{PodSelector: *sel("app", "web"), Ingress: []networkingv1.NetworkPolicyIngressRule{
			ingress(ports(port(udp, 53)))}},
		want: []string{"ingress/0 to-lport 1001 allow-related: outport == " + pg + " && udp.dst == 53"},
	}, {
		name: "several peers are a union",
		spec: networkingv1.NetworkPolicySpec{PodSelector: *sel("app", "web"), Ingress: []networkingv1.NetworkPolicyIngressRule{
			ingress(nil, podPeer(sel("app", "client")), nsPeer(sel("team", "b"), nil),
				blockPeer("10.0.0.0/8", "10.1.0.0/16", "10.2.0.0/16"), nsPeer(&metav1.LabelSelector{}, sel("role", "mon")),
				blockPeer("192.168.1.7/24"))}},
		want: []string{
			"ingress/0 to-lport 1001 allow-related: outport == " + pg + " && ip4.src == {" + as(clientKey) + ", " +
				as("namespaces:team=b pods:<all>") + ", " + as("namespaces:<all> pods:role=mon") + "}",
			"ingress/0/ipblock/2 to-lport 1001 allow-related: outport == " + pg + " && ip4.src == {10.0.0.0/16, 10.3.0.0/16, 10.4.0.0/14, 10.8.0.0/13, 10.16.0.0/12, 10.32.0.0/11, 10.64.0.0/10, 10.128.0.0/9}",
			"ingress/0/ipblock/4 to-lport 1001 allow-related: outport == " + pg + " && ip4.src == 192.168.1.0/24",
		},
	}, {
		name: "excepts covering the whole CIDR allow nothing",
		spec: networkingv1.NetworkPolicySpec{PodSelector: *sel("app", "web"), Ingress: []networkingv1.NetworkPolicyIngressRule{
			ingress(nil, blockPeer("10.0.0.0/24", "10.0.0.0/25", "10.0.0.128/25"), blockPeer("10.1.0.0/16", "10.1.0.0/16"))}},
	}, {
		name: "ports: sets per protocol, ranges, protocol only, SCTP",
		spec: networkingv1.NetworkPolicySpec{PodSelector: *sel("app", "web"), Ingress: []networkingv1.NetworkPolicyIngressRule{
			ingress(ports(port(tcp, 443), port("", 80), port(udp, 53), port(tcp, 1000, 2000), port(sctp, 9), port(tcp, 80),
				port(udp, nil), port(tcp, 7, 7)))}},
		want: []string{"ingress/0 to-lport 1001 allow-related: outport == " + pg +
			" && ((tcp.dst >= 1000 && tcp.dst <= 2000) || udp || tcp.dst == {7, 80, 443} || udp.dst == 53 || sctp.dst == 9)"},
	}, {
		name: "named port resolved per number on the selected pods",
		spec: networkingv1.NetworkPolicySpec{PodSelector: *sel("app", "web"), Ingress: []networkingv1.NetworkPolicyIngressRule{
			ingress(ports(port("", "http"), port(udp, "dns"), port("", 22)), podPeer(sel("app", "client")))}},
		named: NamedPorts{
			{Ingress, 0, "http", tcp}: {8080: addrs("10.128.0.6", "10.128.0.5"), 9090: addrs("10.128.1.7")},
		},
		want: []string{"ingress/0 to-lport 1001 allow-related: outport == " + pg + " && ip4.src == " + as(clientKey) +
			" && ((ip4.dst == {10.128.0.5, 10.128.0.6} && tcp.dst == 8080) || (ip4.dst == 10.128.1.7 && tcp.dst == 9090) || tcp.dst == 22)"},
	}, {
		name: "a named port resolving nowhere allows nothing",
		spec: networkingv1.NetworkPolicySpec{PodSelector: *sel("app", "web"), Ingress: []networkingv1.NetworkPolicyIngressRule{
			ingress(ports(port("", "http"))), ingress(ports(port("", "http"), port("", 22)))}},
		want: []string{"ingress/1 to-lport 1001 allow-related: outport == " + pg + " && tcp.dst == 22"},
	}, {
		name:    "logging of allows",
		spec:    networkingv1.NetworkPolicySpec{PodSelector: *sel("app", "web"), Ingress: []networkingv1.NetworkPolicyIngressRule{{}}},
		logging: Logging{Deny: "alert", Allow: "notice"},
		want:    []string{"ingress/0 to-lport 1001 allow-related: outport == " + pg + " log=notice meter=kovn-acl-logging"},
	}})
}

func TestDesiredEgress(t *testing.T) {
	runDesired(t, []desiredCase{{
		name: "egress: from-lport after the load balancer, implicit type",
		spec: networkingv1.NetworkPolicySpec{PodSelector: *sel("app", "web"), Egress: []networkingv1.NetworkPolicyEgressRule{
			egress(ports(port(tcp, 5432)), podPeer(sel("app", "db"))), egress(nil, blockPeer("0.0.0.0/0", "10.0.0.0/8"))}},
		want: []string{
			"egress/0 from-lport 1001 allow-related: inport == " + pg + " && ip4.dst == " + as("namespace:team-a pods:app=db") +
				" && tcp.dst == 5432 map[apply-after-lb:true]",
			"egress/1/ipblock/0 from-lport 1001 allow-related: inport == " + pg + " && ip4.dst == {0.0.0.0/5, 8.0.0.0/7, 11.0.0.0/8, 12.0.0.0/6, 16.0.0.0/4, 32.0.0.0/3, 64.0.0.0/2, 128.0.0.0/1} map[apply-after-lb:true]",
		},
	}, {
		name: "egress named port: peers resolve it, an ipBlock cannot",
		spec: networkingv1.NetworkPolicySpec{PodSelector: *sel("app", "web"), PolicyTypes: []networkingv1.PolicyType{"Egress"},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{}},
			Egress: []networkingv1.NetworkPolicyEgressRule{
				egress(ports(port("", "http")), podPeer(sel("app", "db")), blockPeer("10.0.0.0/8")),
				egress(ports(port("", "http"), port("", 80)), blockPeer("10.0.0.0/8")),
				egress(ports(port("", "http")))}},
		named: NamedPorts{
			{Egress, 0, "http", tcp}: {8080: addrs("10.128.0.9")},
			{Egress, 2, "http", tcp}: {8080: addrs("10.128.0.9", "10.128.3.3")},
		},
		want: []string{
			"egress/0 from-lport 1001 allow-related: inport == " + pg + " && ip4.dst == " + as("namespace:team-a pods:app=db") +
				" && ip4.dst == 10.128.0.9 && tcp.dst == 8080 map[apply-after-lb:true]",
			"egress/1/ipblock/0 from-lport 1001 allow-related: inport == " + pg + " && ip4.dst == 10.0.0.0/8 && tcp.dst == 80 map[apply-after-lb:true]",
			"egress/2 from-lport 1001 allow-related: inport == " + pg + " && ip4.dst == {10.128.0.9, 10.128.3.3} && tcp.dst == 8080 map[apply-after-lb:true]",
		},
	}, {
		name: "egress only: ingress rules are ignored",
		spec: networkingv1.NetworkPolicySpec{PodSelector: *sel("app", "web"), PolicyTypes: []networkingv1.PolicyType{"Egress"},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{}}},
	}})
}

func TestDesiredBadInput(t *testing.T) {
	runDesired(t, []desiredCase{{
		name: "bad input is skipped, the rest programmed",
		spec: networkingv1.NetworkPolicySpec{PodSelector: *sel("app", "web"), Ingress: []networkingv1.NetworkPolicyIngressRule{
			ingress(nil, blockPeer("10.0.0.0"), blockPeer("fd00::/64"), blockPeer("10.0.0.0/8", "11.0.0.0/16"), blockPeer("10.0.0.0/16", "10.0.0.0/8")),
			ingress(nil, blockPeer("nonsense"), podPeer(sel("app", "client"))),
			ingress(ports(port("", 0), port("", 70000), port("", 90, 80), port("", "x", 9), port("SCTPX", 1))),
			ingress(ports(port("", 0), port(udp, 53))),
			ingress(nil, networkingv1.NetworkPolicyPeer{}, networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: "1.0.0.0/8"}, PodSelector: sel("app", "web")}),
		}},
		want: []string{
			"ingress/1 to-lport 1001 allow-related: outport == " + pg + " && ip4.src == " + as(clientKey),
			"ingress/3 to-lport 1001 allow-related: outport == " + pg + " && udp.dst == 53",
		},
		problems: []string{ReasonInvalidIPBlock, ReasonIPv6NotSupported, ReasonInvalidIPBlock, ReasonInvalidIPBlock,
			ReasonInvalidIPBlock, ReasonInvalidPort, ReasonInvalidPort, ReasonInvalidPort, ReasonInvalidPort, ReasonInvalidPort,
			ReasonInvalidPort, ReasonInvalidPeer, ReasonInvalidPeer},
	}})
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

// checkACL checks what every policy ACL carries.
func checkACL(t *testing.T, a *nbdb.ACL, owner string) {
	t.Helper()
	if a.ExternalIDs[own.KindKey] != own.KindNetworkPolicy || a.ExternalIDs[own.OwnerKey] != owner || a.ExternalIDs[own.IDKey] == "" {
		t.Errorf("external_ids %v", a.ExternalIDs)
	}
	if a.Name == nil || len(*a.Name) > 63 || !strings.HasPrefix(owner, *a.Name) {
		t.Errorf("name %v, want %q (at most 63 characters)", a.Name, owner)
	}
	if a.Log != (a.Severity != nil) || a.Log != (a.Meter != nil) {
		t.Errorf("log %v severity %v meter %v", a.Log, a.Severity, a.Meter)
	}
}

func TestSelectorKeys(t *testing.T) {
	p := np("team-a", "web", networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{
		ingress(nil, podPeer(&metav1.LabelSelector{}), podPeer(sel("app", "x")), nsPeer(&metav1.LabelSelector{}, nil),
			nsPeer(sel("team", "b"), sel("app", "x")), podPeer(sel("app", "x")),
			nsPeer(&metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "env", Operator: "In", Values: []string{"a", "b"}}}}, nil)),
	}})
	var keys []string
	for _, s := range Compile(p).Selectors() {
		keys = append(keys, s.Key)
	}
	want := []string{"namespace:team-a pods:<all>", "namespace:team-a pods:app=x", "namespaces:<all> pods:<all>",
		"namespaces:team=b pods:app=x", "namespaces:env in (a,b) pods:<all>"}
	if !slices.Equal(keys, want) {
		t.Errorf("keys %q, want %q", keys, want)
	}
	// A selector missing from the address set map allows less, never more.
	acls, _ := Desired(p, Inputs{AddressSets: map[string]string{want[1]: "s1"}})
	if len(acls) != 1 || acls[0].Match != "outport == "+pg+" && ip4.src == $s1" {
		t.Errorf("ACLs %v", acls)
	}
	acls, _ = Desired(p, Inputs{})
	if len(acls) != 0 {
		t.Errorf("without address sets: %v, want none", acls)
	}
}

func TestSelectorMatches(t *testing.T) {
	c := Compile(np("a", "p", networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{
		ingress(nil, podPeer(sel("app", "x")), nsPeer(sel("team", "b"), nil), nsPeer(sel("team", "b"), sel("app", "x")))}}))
	s := c.Selectors()
	app := map[string]string{"app": "x"}
	team := map[string]string{"team": "b"}
	for i, tc := range []struct {
		sel      *Selector
		ns       string
		pod, nsl map[string]string
		known    bool
		want     bool
	}{
		{s[0], "a", app, nil, false, true},  // same namespace, known or not
		{s[0], "b", app, team, true, false}, // other namespace
		{s[0], "a", nil, nil, true, false},
		{s[1], "b", nil, team, true, true},
		{s[1], "b", nil, team, false, false}, // namespace not known yet
		{s[1], "c", app, nil, true, false},
		{s[2], "b", app, team, true, true},
		{s[2], "b", nil, team, true, false},
	} {
		if got := tc.sel.Matches(tc.ns, tc.pod, tc.nsl, tc.known); got != tc.want {
			t.Errorf("%d: %s matches %s/%v (ns %v): %v, want %v", i, tc.sel.Key, tc.ns, tc.pod, tc.nsl, got, tc.want)
		}
	}
}

func TestPolicyTypes(t *testing.T) {
	for _, tc := range []struct {
		spec            networkingv1.NetworkPolicySpec
		ingress, egress bool
	}{
		{networkingv1.NetworkPolicySpec{}, true, false},
		{networkingv1.NetworkPolicySpec{Egress: []networkingv1.NetworkPolicyEgressRule{{}}}, true, true},
		{networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{"Egress"}}, false, true},
		{networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{"Ingress"}, Egress: []networkingv1.NetworkPolicyEgressRule{{}}}, true, false},
	} {
		c := Compile(np("a", "p", tc.spec))
		if c.Ingress != tc.ingress || c.Egress != tc.egress {
			t.Errorf("%+v: ingress %v egress %v, want %v %v", tc.spec, c.Ingress, c.Egress, tc.ingress, tc.egress)
		}
	}
	c := Compile(np("a", "p", networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{
		MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Bogus"}}}}))
	if c.PodSelector != nil || len(c.Problems) != 1 || c.Problems[0].Reason != ReasonInvalidSelector {
		t.Errorf("invalid podSelector: selector %v problems %v", c.PodSelector, c.Problems)
	}
}

func TestACLNameTruncated(t *testing.T) {
	long := strings.Repeat("n", 63)
	acls, _ := Desired(np("team-a", long, networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{}}}), Inputs{})
	if len(acls) != 1 || *acls[0].Name != ("team-a/" + long)[:63] {
		t.Fatalf("ACLs %v", acls)
	}
	if acls[0].ExternalIDs[own.OwnerKey] != "team-a/"+long {
		t.Errorf("owner %q, want the full key", acls[0].ExternalIDs[own.OwnerKey])
	}
}

func TestIsolationACLs(t *testing.T) {
	var got []string
	for _, dir := range []Direction{Ingress, Egress} {
		for _, a := range IsolationACLs("team-a", dir, Logging{Deny: "warning", Allow: "info"}) {
			got = append(got, summary(a))
			if a.ExternalIDs[own.KindKey] != own.KindPolicyIsolation || a.ExternalIDs[own.OwnerKey] != "team-a" {
				t.Errorf("external_ids %v", a.ExternalIDs)
			}
		}
	}
	want := []string{
		"ingress/drop to-lport 1000 drop: outport == @kovn_isolate_ingress.team_a && ip4 log=warning meter=kovn-acl-logging",
		"ingress/node-management to-lport 1001 allow-related: outport == @kovn_isolate_ingress.team_a && ip4.src == $kovn_node_mgmt_v4",
		"egress/drop from-lport 1000 drop: inport == @kovn_isolate_egress.team_a && ip4 map[apply-after-lb:true] log=warning meter=kovn-acl-logging",
	}
	if !slices.Equal(got, want) {
		t.Errorf("ACLs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if a := IsolationACLs("x", Ingress, Logging{})[0]; a.Log || a.Severity != nil || a.Meter != nil {
		t.Errorf("logging without a setting: %+v", a)
	}
}

func TestParseLogging(t *testing.T) {
	for s, want := range map[string]Logging{
		"":                                  {},
		`{"deny":"alert","allow":"notice"}`: {Deny: "alert", Allow: "notice"},
		`{"deny":"debug"}`:                  {Deny: "debug"},
		`{"allow":"info","deny":"warning"}`: {Deny: "warning", Allow: "info"},
	} {
		got, err := ParseLogging(s)
		if err != nil || got != want {
			t.Errorf("%q: %+v %v, want %+v", s, got, err, want)
		}
	}
	for _, s := range []string{`{"deny":"loud"}`, `deny=alert`, `{"denied":"alert"}`, `{"allow":"ALERT"}`} {
		if got, err := ParseLogging(s); err == nil {
			t.Errorf("%q: %+v, want an error", s, got)
		}
	}
}

// The port group names keep distinct policies apart.
func TestNamesUnique(t *testing.T) {
	seen := map[string][2]string{}
	for _, k := range [][2]string{{"a-b", "c"}, {"a", "b-c"}, {"a", "b.c"}, {"a-b", "c.d"}, {"a", "b-c.d"}, {"ab", "c"}, {"a", "bc"}} {
		name := own.PolicyPortGroup(k[0], k[1])
		if prev, dup := seen[name]; dup {
			t.Errorf("%v and %v share %s", k, prev, name)
		}
		seen[name] = k
		for _, r := range name {
			if !(r == '_' || r == '.' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
				t.Errorf("%s: %q is not allowed in OVN names", name, r)
			}
		}
	}
}
