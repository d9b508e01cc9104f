package e2e

// An independent model of Kubernetes NetworkPolicy, written from the API
// documentation (networking.k8s.io/v1 NetworkPolicy reference and the
// "Network Policies" concept page), not from kovn's code. It predicts
// whether a connection from one pod to another on a protocol and port is
// allowed:
//
//   - A pod is isolated for ingress (egress) if any NetworkPolicy in its
//     namespace selects it (spec.podSelector; empty selects every pod of
//     the namespace) and has Ingress (Egress) in its policyTypes.
//   - policyTypes, when not given, is Ingress, plus Egress if the policy
//     has any egress rule.
//   - A connection is allowed iff egress from the client is allowed and
//     ingress to the server is allowed. A direction is allowed if the pod
//     is not isolated in it, or if at least one rule of that direction, of
//     any policy selecting the pod with that type, matches: policies add
//     up (union), order does not matter. Replies of an allowed connection
//     are always allowed (the model only judges connections).
//   - A rule matches if its peers (from/to) match the other side and its
//     ports match the destination port; no peers means every peer, no
//     ports means every port and protocol.
//   - A peer with podSelector only selects pods of the policy's namespace;
//     with namespaceSelector only, every pod of the selected namespaces;
//     with both, pods matching podSelector in namespaces matching
//     namespaceSelector (AND). An empty selector selects everything, a
//     missing one restricts nothing beyond the rules above.
//   - ipBlock matches an address inside cidr and outside every except.
//   - A port has protocol TCP unless given; no port means every port of
//     that protocol; endPort makes port..endPort an inclusive range; a
//     named port matches the destination pod's container port with that
//     name and protocol (each pod resolves the name on its own).
//   - Traffic from a pod to itself is always allowed: the docs state pods
//     cannot block localhost access, and a pod reaching its own IP never
//     leaves its network namespace (upstream's e2e netpol suite likewise
//     expects loopback to follow no policy).

import (
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// mPod is what the model needs of a pod.
type mPod struct {
	Namespace, Name string
	Labels          map[string]string
	IP              netip.Addr
	Ports           []corev1.ContainerPort // of all containers, for named ports
}

func (p *mPod) key() string { return p.Namespace + "/" + p.Name }

// npModel is a cluster as the model sees it.
type npModel struct {
	Namespaces map[string]map[string]string // name → labels
	Policies   []*networkingv1.NetworkPolicy
}

// Allowed says whether client may open a connection to server's IP on
// proto/port.
func (m *npModel) Allowed(client, server *mPod, proto corev1.Protocol, port int32) bool {
	if client.key() == server.key() {
		return true
	}
	return m.allowedDir(client, server, server, false, proto, port) &&
		m.allowedDir(server, client, server, true, proto, port)
}

// allowedDir judges one direction for subject (the pod whose policies
// apply): ingress when ingress, with peer the client; egress otherwise,
// with peer the server. dst is the destination pod (named ports).
func (m *npModel) allowedDir(subject, peer, dst *mPod, ingress bool, proto corev1.Protocol, port int32) bool {
	isolated := false
	for _, p := range m.Policies {
		if p.Namespace != subject.Namespace || !selects(&p.Spec.PodSelector, subject.Labels) {
			continue
		}
		in, eg := effectiveTypes(p)
		if ingress && !in || !ingress && !eg {
			continue
		}
		isolated = true
		if ingress {
			for _, r := range p.Spec.Ingress {
				if m.peersMatch(p.Namespace, r.From, peer) && portsMatch(r.Ports, dst, proto, port) {
					return true
				}
			}
		} else {
			for _, r := range p.Spec.Egress {
				if m.peersMatch(p.Namespace, r.To, peer) && portsMatch(r.Ports, dst, proto, port) {
					return true
				}
			}
		}
	}
	return !isolated
}

// effectiveTypes applies the documented default when spec.policyTypes is
// empty: Ingress always, Egress if there are egress rules.
func effectiveTypes(p *networkingv1.NetworkPolicy) (ingress, egress bool) {
	if len(p.Spec.PolicyTypes) == 0 {
		return true, len(p.Spec.Egress) > 0
	}
	for _, t := range p.Spec.PolicyTypes {
		switch t {
		case networkingv1.PolicyTypeIngress:
			ingress = true
		case networkingv1.PolicyTypeEgress:
			egress = true
		}
	}
	return ingress, egress
}

// selects: a nil selector selects nothing here (callers handle "missing"
// themselves), an empty one everything.
func selects(sel *metav1.LabelSelector, l map[string]string) bool {
	if sel == nil {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false
	}
	return s.Matches(labels.Set(l))
}

func (m *npModel) peersMatch(policyNS string, peers []networkingv1.NetworkPolicyPeer, other *mPod) bool {
	if len(peers) == 0 {
		return true
	}
	for i := range peers {
		if m.peerMatches(policyNS, &peers[i], other) {
			return true
		}
	}
	return false
}

func (m *npModel) peerMatches(policyNS string, peer *networkingv1.NetworkPolicyPeer, other *mPod) bool {
	if b := peer.IPBlock; b != nil {
		cidr, err := netip.ParsePrefix(b.CIDR)
		if err != nil || !cidr.Contains(other.IP) {
			return false
		}
		for _, ex := range b.Except {
			if e, err := netip.ParsePrefix(ex); err != nil || e.Contains(other.IP) {
				return false
			}
		}
		return true
	}
	if peer.PodSelector == nil && peer.NamespaceSelector == nil {
		return false // invalid: the API requires one of the three
	}
	if peer.NamespaceSelector == nil {
		if other.Namespace != policyNS {
			return false
		}
	} else if !selects(peer.NamespaceSelector, m.Namespaces[other.Namespace]) {
		return false
	}
	return peer.PodSelector == nil || selects(peer.PodSelector, other.Labels)
}

func portsMatch(ports []networkingv1.NetworkPolicyPort, dst *mPod, proto corev1.Protocol, port int32) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		pp := corev1.ProtocolTCP
		if p.Protocol != nil {
			pp = *p.Protocol
		}
		if pp != proto {
			continue
		}
		switch {
		case p.Port == nil:
			return true
		case p.Port.Type == intstr.Int:
			hi := p.Port.IntVal
			if p.EndPort != nil {
				hi = *p.EndPort
			}
			if port >= p.Port.IntVal && port <= hi {
				return true
			}
		default:
			for _, cp := range dst.Ports {
				cpp := cp.Protocol
				if cpp == "" {
					cpp = corev1.ProtocolTCP
				}
				if cp.Name == p.Port.StrVal && cpp == proto && cp.ContainerPort == port {
					return true
				}
			}
		}
	}
	return false
}

// TestNetpolModel checks the model itself on hand-computed cases; it needs
// no lab.
func TestNetpolModel(t *testing.T) {
	nsLabels := map[string]map[string]string{"x": {"ns": "x"}, "y": {"ns": "y"}, "z": {"ns": "z"}}
	mk := func(ns, name, ip string, ports ...corev1.ContainerPort) *mPod {
		return &mPod{Namespace: ns, Name: name, Labels: map[string]string{"app": name}, IP: netip.MustParseAddr(ip), Ports: ports}
	}
	xa := mk("x", "a", "10.0.1.10", corev1.ContainerPort{Name: "serve-80", ContainerPort: 80, Protocol: tcp}, corev1.ContainerPort{Name: "serve-udp", ContainerPort: 80, Protocol: udp})
	xb := mk("x", "b", "10.0.2.10", corev1.ContainerPort{Name: "serve-80", ContainerPort: 81}) // protocol defaults to TCP
	ya := mk("y", "a", "10.0.1.20")
	yb := mk("y", "b", "10.0.2.20")
	zc := mk("z", "c", "10.0.3.30")
	app := func(v string) *metav1.LabelSelector { return sel("app", v) }
	type probe struct {
		from, to *mPod
		proto    corev1.Protocol
		port     int32
		want     bool
	}
	for _, tc := range []struct {
		name   string
		pols   pols
		probes []probe
	}{
		{"no policy", nil, []probe{{xa, yb, tcp, 80, true}, {zc, xa, udp, 81, true}}},
		{"deny-all ingress", pols{npPolicy("x", "p", sel())}, []probe{
			{ya, xa, tcp, 80, false}, {xb, xa, udp, 80, false}, {xa, ya, tcp, 80, true}, {xa, xa, tcp, 80, true}, {ya, yb, tcp, 80, true},
		}},
		{"deny-all egress", pols{npPolicy("x", "p", sel(), policyTypes(pOut))}, []probe{
			{xa, ya, tcp, 80, false}, {xa, xb, udp, 81, false}, {ya, xa, tcp, 80, true}, {xa, xa, udp, 80, true},
		}},
		{"policy of another namespace", pols{npPolicy("y", "p", sel(), policyTypes(pIn, pOut))}, []probe{
			{xa, xb, tcp, 80, true}, {xa, ya, tcp, 80, false}, {ya, xa, tcp, 80, false},
		}},
		{"explicit [Egress]: ingress rules ignored, ingress open", pols{npPolicy("x", "p", app("a"), policyTypes(pOut), ingress(peers(podPeer(app("b")))))}, []probe{
			{ya, xa, tcp, 80, true}, {xa, ya, tcp, 80, false},
		}},
		{"implicit types with egress rules: ingress isolated too", pols{npPolicy("x", "p", app("a"), egress(peers(nsPeer(sel("ns", "y")))))}, []probe{
			{ya, xa, tcp, 80, false}, {xb, xa, tcp, 80, false}, {xa, ya, tcp, 80, true}, {xa, zc, tcp, 80, false}, {xb, ya, tcp, 80, true},
		}},
		{"empty rule", pols{npPolicy("x", "p", sel(), ingress(nil))}, []probe{{zc, xa, udp, 81, true}}},
		{"namespace AND pod in one peer", pols{npPolicy("x", "p", app("a"), ingress(peers(nsPodPeer(sel("ns", "y"), app("b")))))}, []probe{
			{yb, xa, tcp, 80, true}, {ya, xa, tcp, 80, false}, {xb, xa, tcp, 80, false},
		}},
		{"namespace OR pod as two peers", pols{npPolicy("x", "p", app("a"), ingress(peers(nsPeer(sel("ns", "y")), podPeer(app("b")))))}, []probe{
			{ya, xa, tcp, 80, true}, {yb, xa, tcp, 80, true}, {xb, xa, tcp, 80, true}, {zc, xa, tcp, 80, false},
		}},
		{"podSelector alone = own namespace", pols{npPolicy("x", "p", app("a"), ingress(peers(podPeer(app("b")))))}, []probe{
			{xb, xa, tcp, 80, true}, {yb, xa, tcp, 80, false},
		}},
		{"empty namespaceSelector = all namespaces", pols{npPolicy("x", "p", app("a"), ingress(peers(nsPodPeer(sel(), app("b")))))}, []probe{
			{xb, xa, tcp, 80, true}, {yb, xa, tcp, 80, true}, {ya, xa, tcp, 80, false},
		}},
		{"ipBlock except", pols{npPolicy("x", "p", app("a"), ingress(peers(cidrPeer("10.0.0.0/16", "10.0.2.0/24"))))}, []probe{
			{ya, xa, tcp, 80, true}, {yb, xa, tcp, 80, false}, {zc, xa, tcp, 80, true},
		}},
		{"egress ipBlock", pols{npPolicy("x", "p", app("a"), policyTypes(pOut), egress(peers(cidrPeer("10.0.2.0/24"))))}, []probe{
			{xa, yb, tcp, 80, true}, {xa, xb, udp, 80, true}, {xa, ya, tcp, 80, false},
		}},
		{"port by number", pols{npPolicy("x", "p", app("a"), ingress(nil, port(tcp, 80)))}, []probe{
			{ya, xa, tcp, 80, true}, {ya, xa, tcp, 81, false}, {ya, xa, udp, 80, false},
		}},
		{"default protocol TCP, protocol without port", pols{npPolicy("x", "p", app("a"), ingress(nil, portNoProto(81), allPorts(udp)))}, []probe{
			{ya, xa, tcp, 81, true}, {ya, xa, tcp, 80, false}, {ya, xa, udp, 80, true}, {ya, xa, udp, 5353, true},
		}},
		{"endPort", pols{npPolicy("x", "p", app("a"), ingress(nil, portRange(udp, 80, 81), portRange(tcp, 81, 90)))}, []probe{
			{ya, xa, udp, 79, false}, {ya, xa, udp, 80, true}, {ya, xa, udp, 81, true}, {ya, xa, udp, 82, false},
			{ya, xa, tcp, 80, false}, {ya, xa, tcp, 90, true}, {ya, xa, tcp, 91, false},
		}},
		{"named port per destination pod", pols{npPolicy("x", "p", sel(), ingress(nil, namedPort(tcp, "serve-80")))}, []probe{
			{ya, xa, tcp, 80, true}, {ya, xa, tcp, 81, false}, {ya, xb, tcp, 81, true}, {ya, xb, tcp, 80, false}, {ya, xa, udp, 80, false},
		}},
		{"named port, wrong protocol", pols{npPolicy("x", "p", sel(), ingress(nil, namedPort(udp, "serve-80"), namedPort(tcp, "serve-udp")))}, []probe{
			{ya, xa, tcp, 80, false}, {ya, xa, udp, 80, false}, {ya, xb, tcp, 81, false},
		}},
		{"egress named port resolved on the destination", pols{npPolicy("y", "p", sel(), policyTypes(pOut), egress(nil, namedPort(udp, "serve-udp")))}, []probe{
			{ya, xa, udp, 80, true}, {ya, xa, udp, 81, false}, {ya, xb, udp, 80, false}, {ya, xa, tcp, 80, false},
		}},
		{"SCTP-only rule", pols{npPolicy("x", "p", app("a"), ingress(nil, port(sctp, 80)))}, []probe{
			{ya, xa, tcp, 80, false}, {ya, xa, udp, 80, false}, {ya, xa, sctp, 80, true},
		}},
		{"union", pols{
			npPolicy("x", "p1", app("a"), ingress(peers(podPeer(app("b"))), port(tcp, 80))),
			npPolicy("x", "p2", app("a"), ingress(peers(nsPeer(sel("ns", "y"))), port(udp, 81))),
		}, []probe{
			{xb, xa, tcp, 80, true}, {xb, xa, udp, 81, false}, {ya, xa, udp, 81, true}, {ya, xa, tcp, 80, false}, {zc, xa, udp, 81, false},
		}},
		{"egress of client and ingress of server both needed", pols{
			npPolicy("x", "out", sel(), policyTypes(pOut), egress(peers(nsPeer(sel("ns", "y"))))),
			npPolicy("y", "in", app("a"), ingress(peers(nsPeer(sel("ns", "z"))))),
		}, []probe{
			{xa, ya, tcp, 80, false}, {xa, yb, tcp, 80, true}, {zc, ya, tcp, 80, true}, {xa, zc, tcp, 80, false},
		}},
		{"selector expressions", pols{npPolicy("x", "p", selExpr("app", metav1.LabelSelectorOpNotIn, "b"),
			ingress(peers(nsPodPeer(selExpr("ns", metav1.LabelSelectorOpIn, "y", "z"), selExpr("app", metav1.LabelSelectorOpExists)))))}, []probe{
			{ya, xa, tcp, 80, true}, {zc, xa, tcp, 80, true}, {xb, xa, tcp, 80, false}, {ya, xb, tcp, 80, true},
		}},
	} {
		m := &npModel{Namespaces: nsLabels}
		for _, p := range tc.pols {
			m.Policies = append(m.Policies, p)
		}
		for _, p := range tc.probes {
			if got := m.Allowed(p.from, p.to, p.proto, p.port); got != p.want {
				t.Errorf("%s: %s → %s %s/%d = %v, want %v", tc.name, p.from.key(), p.to.key(), p.proto, p.port, got, p.want)
			}
		}
	}
}
