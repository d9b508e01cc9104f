package e2e

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Policy builders, terse on purpose so that each case reads like the YAML.

type npOpt func(*networkingv1.NetworkPolicySpec)

const (
	tcp  = corev1.ProtocolTCP
	udp  = corev1.ProtocolUDP
	sctp = corev1.ProtocolSCTP
	pIn  = networkingv1.PolicyTypeIngress
	pOut = networkingv1.PolicyTypeEgress
)

// npPolicy is a policy in namespace ns selecting podSel.
func npPolicy(ns, name string, podSel *metav1.LabelSelector, opts ...npOpt) *networkingv1.NetworkPolicy {
	p := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: networkingv1.NetworkPolicySpec{PodSelector: *podSel}}
	for _, o := range opts {
		o(&p.Spec)
	}
	return p
}

// sel is a matchLabels selector from key, value pairs; sel() selects all.
func sel(kv ...string) *metav1.LabelSelector {
	s := &metav1.LabelSelector{}
	for i := 0; i+1 < len(kv); i += 2 {
		if s.MatchLabels == nil {
			s.MatchLabels = map[string]string{}
		}
		s.MatchLabels[kv[i]] = kv[i+1]
	}
	return s
}

func selExpr(key string, op metav1.LabelSelectorOperator, values ...string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: key, Operator: op, Values: values}}}
}

func policyTypes(ts ...networkingv1.PolicyType) npOpt {
	return func(s *networkingv1.NetworkPolicySpec) { s.PolicyTypes = ts }
}

// ingress adds a rule; nil peers means from anywhere, no ports every port.
func ingress(peers []networkingv1.NetworkPolicyPeer, ports ...networkingv1.NetworkPolicyPort) npOpt {
	return func(s *networkingv1.NetworkPolicySpec) {
		s.Ingress = append(s.Ingress, networkingv1.NetworkPolicyIngressRule{From: peers, Ports: ports})
	}
}

func egress(peers []networkingv1.NetworkPolicyPeer, ports ...networkingv1.NetworkPolicyPort) npOpt {
	return func(s *networkingv1.NetworkPolicySpec) {
		s.Egress = append(s.Egress, networkingv1.NetworkPolicyEgressRule{To: peers, Ports: ports})
	}
}

func peers(p ...networkingv1.NetworkPolicyPeer) []networkingv1.NetworkPolicyPeer { return p }

func podPeer(s *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{PodSelector: s}
}

func nsPeer(s *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{NamespaceSelector: s}
}

func nsPodPeer(ns, pod *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{NamespaceSelector: ns, PodSelector: pod}
}

func cidrPeer(cidr string, except ...string) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: cidr, Except: except}}
}

func port(proto corev1.Protocol, n int) networkingv1.NetworkPolicyPort {
	p := intstr.FromInt32(int32(n))
	return networkingv1.NetworkPolicyPort{Protocol: &proto, Port: &p}
}

// portNoProto leaves the protocol out: TCP by the API's default.
func portNoProto(n int) networkingv1.NetworkPolicyPort {
	p := intstr.FromInt32(int32(n))
	return networkingv1.NetworkPolicyPort{Port: &p}
}

func portRange(proto corev1.Protocol, lo, hi int) networkingv1.NetworkPolicyPort {
	p := port(proto, lo)
	end := int32(hi)
	p.EndPort = &end
	return p
}

func namedPort(proto corev1.Protocol, name string) networkingv1.NetworkPolicyPort {
	p := intstr.FromString(name)
	return networkingv1.NetworkPolicyPort{Protocol: &proto, Port: &p}
}

// allPorts is every port of one protocol.
func allPorts(proto corev1.Protocol) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: &proto}
}

// npStep changes the cluster; the matrix is then checked against the model.
type npStep struct {
	name string
	do   func(t *testing.T, s *npSuite)
	// unchanged: the model's matrix does not change (a pod recreated with
	// a new IP must keep exactly what it had).
	unchanged bool
}

type npCase struct {
	name, covers string
	steps        []npStep
}

// applies is a step applying the policies build returns.
func applies(name string, build func(t *testing.T, s *npSuite) []*networkingv1.NetworkPolicy) npStep {
	return npStep{name: name, do: func(t *testing.T, s *npSuite) { s.apply(t, build(t, s)...) }}
}

// single is a case of one step applying policies.
func single(name, covers string, build func(t *testing.T, s *npSuite) []*networkingv1.NetworkPolicy) npCase {
	return npCase{name: name, covers: covers, steps: []npStep{applies("apply", build)}}
}

// relabel is a step setting (value nil: removing) a label of pod "x/a" or,
// with pod "", of namespace "x".
func relabel(name, pod, ns, key string, value any) npStep {
	return npStep{name: name, do: func(t *testing.T, s *npSuite) {
		s.patchLabels(t, pod, ns, map[string]any{key: value})
		s.refresh(t)
	}}
}

type pols = []*networkingv1.NetworkPolicy

func npCases() []npCase {
	app := func(v string) *metav1.LabelSelector { return sel("app", v) }
	nsl := func(v string) *metav1.LabelSelector { return sel("ns", v) }
	return []npCase{
		single("deny-all-ingress", "ingress; implicit policyTypes (Ingress only); empty podSelector = whole namespace; no rules = isolation",
			func(t *testing.T, s *npSuite) pols { return pols{npPolicy(s.ns("x"), "deny-in", sel())} }),
		single("deny-all-egress", "egress; explicit policyTypes [Egress] without rules",
			func(t *testing.T, s *npSuite) pols {
				return pols{npPolicy(s.ns("x"), "deny-out", sel(), policyTypes(pOut))}
			}),
		single("deny-all-both", "policyTypes [Ingress, Egress] without rules",
			func(t *testing.T, s *npSuite) pols {
				return pols{npPolicy(s.ns("y"), "deny-both", sel(), policyTypes(pIn, pOut))}
			}),
		single("empty-rule-union", "a rule with no peers and no ports allows everything; policies selecting one pod add up",
			func(t *testing.T, s *npSuite) pols {
				return pols{npPolicy(s.ns("x"), "deny-in", sel()), npPolicy(s.ns("x"), "open-a", app("a"), ingress(nil))}
			}),
		single("ingress-pod-selector", "podSelector peer = pods of the policy's own namespace",
			func(t *testing.T, s *npSuite) pols {
				return pols{npPolicy(s.ns("x"), "a-from-b", app("a"), ingress(peers(podPeer(app("b")))))}
			}),
		single("egress-pod-selector", "egress podSelector peer; a rule with peers and no ports",
			func(t *testing.T, s *npSuite) pols {
				return pols{npPolicy(s.ns("y"), "to-c", sel(), egress(peers(podPeer(app("c")))))}
			}),
		single("ingress-namespace-selector", "namespaceSelector peer = every pod of the selected namespaces",
			func(t *testing.T, s *npSuite) pols {
				return pols{npPolicy(s.ns("x"), "a-from-y", app("a"), ingress(peers(nsPeer(nsl("y")))))}
			}),
		single("ingress-namespace-and-pod", "namespaceSelector and podSelector in one peer: AND",
			func(t *testing.T, s *npSuite) pols {
				return pols{npPolicy(s.ns("x"), "a-from-y-b", app("a"), ingress(peers(nsPodPeer(nsl("y"), app("b")))))}
			}),
		single("ingress-namespace-or-pod", "the same selectors as two peers: OR",
			func(t *testing.T, s *npSuite) pols {
				return pols{npPolicy(s.ns("x"), "a-from-y-or-b", app("a"), ingress(peers(nsPeer(nsl("y")), podPeer(app("b")))))}
			}),
		single("egress-any-namespace-pod", "empty namespaceSelector (all namespaces) with a podSelector",
			func(t *testing.T, s *npSuite) pols {
				return pols{npPolicy(s.ns("z"), "to-any-a", sel(), policyTypes(pOut), egress(peers(nsPodPeer(sel(), app("a")))))}
			}),
		single("selector-expressions", "matchExpressions In/NotIn in podSelector and peers; the automatic kubernetes.io/metadata.name label",
			func(t *testing.T, s *npSuite) pols {
				return pols{npPolicy(s.ns("x"), "expr", selExpr("app", metav1.LabelSelectorOpNotIn, "c"),
					ingress(peers(nsPeer(selExpr("kubernetes.io/metadata.name", metav1.LabelSelectorOpIn, s.ns("y"))),
						podPeer(selExpr("app", metav1.LabelSelectorOpNotIn, "a", "b")))))}
			}),
		single("ingress-ipblock-except", "ingress ipBlock with except (a pod's /32 and a node's pod subnet)",
			func(t *testing.T, s *npSuite) pols {
				return pols{npPolicy(s.ns("x"), "a-cidr", app("a"),
					ingress(peers(cidrPeer("0.0.0.0/0", s.ip(t, "y/b")+"/32", s.subnetOf(t, "z/c")))))}
			}),
		single("egress-ipblock-except", "egress ipBlock: one node's pod subnet except one pod",
			func(t *testing.T, s *npSuite) pols {
				return pols{npPolicy(s.ns("y"), "a-cidr-out", app("a"), policyTypes(pOut),
					egress(peers(cidrPeer(s.subnetOf(t, "x/a"), s.ip(t, "x/a")+"/32"))))}
			}),
		single("port-number-no-peers", "ports by number (TCP); a rule with ports and no peers",
			func(t *testing.T, s *npSuite) pols {
				return pols{npPolicy(s.ns("x"), "tcp-80", sel(), ingress(nil, port(tcp, 80)))}
			}),
		single("port-udp-and-default-protocol", "UDP by number; a port without protocol is TCP",
			func(t *testing.T, s *npSuite) pols {
				return pols{npPolicy(s.ns("x"), "b-ports", app("b"), ingress(nil, portNoProto(81), port(udp, 80)))}
			}),
		single("protocol-without-port", "a protocol without a port = every port of it",
			func(t *testing.T, s *npSuite) pols {
				return pols{npPolicy(s.ns("y"), "c-udp", app("c"), ingress(nil, allPorts(udp)))}
			}),
		single("endport-ingress", "endPort ranges (TCP 80-81, UDP 81-100)",
			func(t *testing.T, s *npSuite) pols {
				return pols{npPolicy(s.ns("z"), "ranges", sel(), ingress(nil, portRange(tcp, 80, 81), portRange(udp, 81, 100)))}
			}),
		single("endport-egress", "egress endPort range (UDP 79-80)",
			func(t *testing.T, s *npSuite) pols {
				return pols{npPolicy(s.ns("y"), "udp-range", sel(), policyTypes(pOut), egress(nil, portRange(udp, 79, 80)))}
			}),
		single("named-port-ingress", `named port resolved per pod: "serve-80" is TCP 80 on a, TCP 81 on b, absent on c`,
			func(t *testing.T, s *npSuite) pols {
				return pols{npPolicy(s.ns("x"), "named-tcp", sel(), ingress(nil, namedPort(tcp, "serve-80")))}
			}),
		single("named-port-egress", `egress named port resolved on each destination pod ("serve-udp": UDP 80 on a, UDP 81 on b)`,
			func(t *testing.T, s *npSuite) pols {
				return pols{npPolicy(s.ns("z"), "named-udp", sel(), policyTypes(pOut), egress(nil, namedPort(udp, "serve-udp")))}
			}),
		single("named-port-protocol-mismatch", "a named port matches only with the protocol the pod gives it",
			func(t *testing.T, s *npSuite) pols {
				return pols{npPolicy(s.ns("y"), "named-mismatch", sel(), ingress(nil, namedPort(tcp, "serve-udp"), namedPort(udp, "serve-81")))}
			}),
		single("sctp-only", "SCTP: an SCTP-only rule opens no TCP or UDP (the test server does not serve SCTP)",
			func(t *testing.T, s *npSuite) pols {
				return pols{
					npPolicy(s.ns("x"), "a-sctp-in", app("a"), ingress(nil, port(sctp, 80))),
					npPolicy(s.ns("y"), "a-sctp-out", app("a"), policyTypes(pOut), egress(nil, port(sctp, 81), portRange(sctp, 80, 81))),
				}
			}),
		single("union-of-policies", "three policies select x/a: ingress rules add up, an Egress-only policy leaves ingress alone",
			func(t *testing.T, s *npSuite) pols {
				return pols{
					npPolicy(s.ns("x"), "a-from-b-tcp80", app("a"), ingress(peers(podPeer(app("b"))), port(tcp, 80))),
					npPolicy(s.ns("x"), "a-from-z-udp81", app("a"), ingress(peers(nsPeer(nsl("z"))), port(udp, 81))),
					npPolicy(s.ns("x"), "a-to-y", app("a"), policyTypes(pOut), egress(peers(nsPeer(nsl("y"))))),
				}
			}),
		single("both-directions-required", "egress of the client and ingress of the server must both allow",
			func(t *testing.T, s *npSuite) pols {
				return pols{
					npPolicy(s.ns("x"), "x-to-y", sel(), policyTypes(pOut), egress(peers(nsPeer(nsl("y"))))),
					npPolicy(s.ns("y"), "a-from-z", app("a"), ingress(peers(nsPeer(nsl("z"))))),
				}
			}),
		single("replies-pass", "isolated both ways, x/a → y/b allowed: replies pass x/a's ingress and y/b's egress isolation",
			func(t *testing.T, s *npSuite) pols {
				return pols{
					npPolicy(s.ns("x"), "a-locked", app("a"), policyTypes(pIn, pOut), egress(peers(nsPodPeer(nsl("y"), app("b"))))),
					npPolicy(s.ns("y"), "b-locked", app("b"), policyTypes(pIn, pOut), ingress(peers(nsPodPeer(nsl("x"), app("a"))))),
				}
			}),
		single("implicit-types-egress-rules", "no policyTypes but egress rules: Ingress and Egress, so ingress is denied",
			func(t *testing.T, s *npSuite) pols {
				return pols{npPolicy(s.ns("y"), "c-to-x", app("c"), egress(peers(nsPeer(nsl("x")))))}
			}),
		single("implicit-types-both-rules", "no policyTypes, ingress and egress rules",
			func(t *testing.T, s *npSuite) pols {
				return pols{npPolicy(s.ns("z"), "b-both", app("b"), ingress(peers(podPeer(app("a")))), egress(nil, port(udp, 80)))}
			}),
		{name: "policy-edited", covers: "a policy updated in place: peers, ports, policyTypes, podSelector", steps: []npStep{
			applies("create: x/a from x/b", func(t *testing.T, s *npSuite) pols {
				return pols{npPolicy(s.ns("x"), "edit", app("a"), ingress(peers(podPeer(app("b")))))}
			}),
			applies("edit: from namespace z on TCP 81", func(t *testing.T, s *npSuite) pols {
				return pols{npPolicy(s.ns("x"), "edit", app("a"), ingress(peers(nsPeer(nsl("z"))), port(tcp, 81)))}
			}),
			applies("edit: add Egress to policyTypes", func(t *testing.T, s *npSuite) pols {
				return pols{npPolicy(s.ns("x"), "edit", app("a"), policyTypes(pIn, pOut), ingress(peers(nsPeer(nsl("z"))), port(tcp, 81)))}
			}),
			applies("edit: podSelector app=a → app=b", func(t *testing.T, s *npSuite) pols {
				return pols{npPolicy(s.ns("x"), "edit", app("b"), policyTypes(pIn, pOut), ingress(peers(nsPeer(nsl("z"))), port(tcp, 81)))}
			}),
		}},
		{name: "pod-relabelled", covers: "pod labels changed after the policy exists, on the peer side and on the selected side", steps: []npStep{
			applies("y accepts only role=client pods; x isolates role=locked pods", func(t *testing.T, s *npSuite) pols {
				return pols{
					npPolicy(s.ns("y"), "from-clients", sel(), ingress(peers(nsPodPeer(sel(), sel("role", "client"))))),
					npPolicy(s.ns("x"), "lock", sel("role", "locked")),
				}
			}),
			relabel("label z/c role=client", "z/c", "", "role", "client"),
			relabel("label x/b role=locked", "x/b", "", "role", "locked"),
			relabel("remove role from z/c", "z/c", "", "role", nil),
		}},
		{name: "namespace-relabelled", covers: "namespace labels changed after the policy exists (ingress and egress namespaceSelector)", steps: []npStep{
			applies("x/a from team=blue namespaces; z only to team=blue namespaces", func(t *testing.T, s *npSuite) pols {
				return pols{
					npPolicy(s.ns("x"), "a-from-blue", app("a"), ingress(peers(nsPeer(sel("team", "blue"))))),
					npPolicy(s.ns("z"), "to-blue", sel(), policyTypes(pOut), egress(peers(nsPeer(sel("team", "blue"))))),
				}
			}),
			relabel("label namespace z team=blue", "", "z", "team", "blue"),
			relabel("label namespace x team=blue", "", "x", "team", "blue"),
			relabel("remove team from namespace z", "", "z", "team", nil),
		}},
		{name: "pod-recreated", covers: "pods deleted and recreated on another node with a new IP, as peer and as selected pod", steps: []npStep{
			applies("x/a only from app=b pods; y/c only to x/a", func(t *testing.T, s *npSuite) pols {
				return pols{
					npPolicy(s.ns("x"), "a-from-b", app("a"), ingress(peers(nsPodPeer(sel(), app("b"))))),
					npPolicy(s.ns("y"), "c-to-x-a", app("c"), policyTypes(pOut), egress(peers(nsPodPeer(nsl("x"), app("a"))))),
				}
			}),
			{name: "recreate y/b (peer) with a new IP", do: func(t *testing.T, s *npSuite) { s.recreate(t, "y/b") }, unchanged: true},
			{name: "recreate x/a (selected) with a new IP", do: func(t *testing.T, s *npSuite) { s.recreate(t, "x/a") }, unchanged: true},
		}},
	}
}
