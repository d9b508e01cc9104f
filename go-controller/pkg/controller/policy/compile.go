package policy

import (
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Direction of a rule, also the prefix of its ACLs' ids.
type Direction string

// The two directions of NetworkPolicy.
const (
	Ingress Direction = "ingress"
	Egress  Direction = "egress"
)

// Problem reasons, as Event reasons and metric labels.
const (
	ReasonInvalidSelector  = "InvalidSelector"
	ReasonInvalidPeer      = "InvalidPeer"
	ReasonInvalidIPBlock   = "InvalidIPBlock"
	ReasonIPv6NotSupported = "IPv6NotSupported"
	ReasonInvalidPort      = "InvalidPort"
	ReasonInvalidLogging   = "InvalidACLLogging"
)

// Problem is a part of a policy that cannot be programmed; the rest is.
type Problem struct {
	Reason, Message string
}

// Selector is a peer selector: the pods its address set holds.
type Selector struct {
	// Key is the canonical, readable text of the selector; equal keys
	// share one address set.
	Key string
	// Namespace restricts a podSelector-only peer to the policy's
	// namespace; it is empty when NamespaceSelector is set.
	Namespace         string
	NamespaceSelector labels.Selector
	PodSelector       labels.Selector
}

// Matches tells whether a pod with these labels, in a namespace with
// these labels (nsKnown false: the namespace is not known yet), is selected.
func (s *Selector) Matches(podNS string, podLabels, nsLabels labels.Set, nsKnown bool) bool {
	if s.NamespaceSelector == nil {
		if podNS != s.Namespace {
			return false
		}
	} else if !nsKnown || !s.NamespaceSelector.Matches(nsLabels) {
		return false
	}
	return s.PodSelector.Matches(podLabels)
}

// IPBlock is a valid IPv4 ipBlock peer; Index is its place in the rule's
// peers, which names its ACL.
type IPBlock struct {
	Index  int
	CIDR   netip.Prefix
	Except []netip.Prefix
}

// Port is a valid rule port. Port 0 and no Name: any port of Protocol.
type Port struct {
	Protocol      corev1.Protocol
	Port, EndPort int32
	Name          string
}

// Rule is one ingress or egress rule with its invalid parts dropped.
// AnyPeer: from/to was empty (any source or destination); otherwise
// only the valid peers remain, and a rule left without any allows
// nothing. AnyPort likewise.
type Rule struct {
	Dir       Direction
	Index     int
	AnyPeer   bool
	Selectors []*Selector
	IPBlocks  []IPBlock
	AnyPort   bool
	Ports     []Port
}

// Compiled is a policy checked and reduced to what kovn programs.
type Compiled struct {
	Namespace, Name string
	// PodSelector is nil when the policy's selector is invalid: it then
	// selects (and isolates) no pod.
	PodSelector     labels.Selector
	Ingress, Egress bool
	Rules           []Rule
	Problems        []Problem
}

// Key is "namespace/name".
func (c *Compiled) Key() string { return c.Namespace + "/" + c.Name }

// Compile checks a policy and reduces it to its valid parts. It is pure.
func Compile(np *networkingv1.NetworkPolicy) *Compiled {
	c := &Compiled{Namespace: np.Namespace, Name: np.Name}
	if sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector); err != nil {
		c.problem(ReasonInvalidSelector, "podSelector: %v", err)
	} else {
		c.PodSelector = sel
	}
	c.Ingress, c.Egress = policyTypes(&np.Spec)
	if c.Ingress {
		for i, r := range np.Spec.Ingress {
			c.Rules = append(c.Rules, c.rule(Ingress, i, r.From, r.Ports))
		}
	}
	if c.Egress {
		for i, r := range np.Spec.Egress {
			c.Rules = append(c.Rules, c.rule(Egress, i, r.To, r.Ports))
		}
	}
	return c
}

// policyTypes applies the API's defaulting: without policyTypes a policy
// is always an ingress policy, and an egress one when it has egress rules.
func policyTypes(spec *networkingv1.NetworkPolicySpec) (ingress, egress bool) {
	if len(spec.PolicyTypes) == 0 {
		return true, len(spec.Egress) > 0
	}
	for _, t := range spec.PolicyTypes {
		switch t {
		case networkingv1.PolicyTypeIngress:
			ingress = true
		case networkingv1.PolicyTypeEgress:
			egress = true
		}
	}
	return ingress, egress
}

func (c *Compiled) problem(reason, format string, args ...any) {
	c.Problems = append(c.Problems, Problem{Reason: reason, Message: fmt.Sprintf(format, args...)})
}

func (c *Compiled) rule(dir Direction, i int, peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort) Rule {
	r := Rule{Dir: dir, Index: i, AnyPeer: len(peers) == 0, AnyPort: len(ports) == 0}
	where := fmt.Sprintf("%s rule %d", dir, i)
	seen := map[string]bool{}
	for j := range peers {
		p := &peers[j]
		if p.IPBlock != nil {
			if p.PodSelector != nil || p.NamespaceSelector != nil {
				c.problem(ReasonInvalidPeer, "%s, peer %d: ipBlock together with a selector", where, j)
				continue
			}
			if b, ok := c.ipBlock(fmt.Sprintf("%s, peer %d", where, j), j, p.IPBlock); ok {
				r.IPBlocks = append(r.IPBlocks, b)
			}
			continue
		}
		s, ok := c.selector(fmt.Sprintf("%s, peer %d", where, j), p)
		if ok && !seen[s.Key] {
			seen[s.Key] = true
			r.Selectors = append(r.Selectors, s)
		}
	}
	for j := range ports {
		if p, ok := c.port(fmt.Sprintf("%s, port %d", where, j), &ports[j]); ok {
			r.Ports = append(r.Ports, p)
		}
	}
	return r
}

// selector builds a peer's selector: podSelector alone selects in the
// policy's namespace, a namespaceSelector in the namespaces it matches.
func (c *Compiled) selector(where string, p *networkingv1.NetworkPolicyPeer) (*Selector, bool) {
	if p.PodSelector == nil && p.NamespaceSelector == nil {
		c.problem(ReasonInvalidPeer, "%s: no podSelector, namespaceSelector or ipBlock", where)
		return nil, false
	}
	s := &Selector{PodSelector: labels.Everything()}
	if p.PodSelector != nil {
		sel, err := metav1.LabelSelectorAsSelector(p.PodSelector)
		if err != nil {
			c.problem(ReasonInvalidSelector, "%s: podSelector: %v", where, err)
			return nil, false
		}
		s.PodSelector = sel
	}
	if p.NamespaceSelector == nil {
		s.Namespace = c.Namespace
		s.Key = "namespace:" + c.Namespace + " pods:" + selectorText(s.PodSelector)
		return s, true
	}
	sel, err := metav1.LabelSelectorAsSelector(p.NamespaceSelector)
	if err != nil {
		c.problem(ReasonInvalidSelector, "%s: namespaceSelector: %v", where, err)
		return nil, false
	}
	s.NamespaceSelector = sel
	s.Key = "namespaces:" + selectorText(sel) + " pods:" + selectorText(s.PodSelector)
	return s, true
}

// selectorText is a selector's canonical string; label selector strings
// hold no ':', so the keys built from them cannot be confused.
func selectorText(s labels.Selector) string {
	if s.Empty() {
		return "<all>"
	}
	return s.String()
}

// ipBlock checks an ipBlock. A bad except drops the whole peer: ignoring
// only the except would allow more than the policy says.
func (c *Compiled) ipBlock(where string, index int, b *networkingv1.IPBlock) (IPBlock, bool) {
	cidr, err := netip.ParsePrefix(b.CIDR)
	if err != nil {
		c.problem(ReasonInvalidIPBlock, "%s: cidr %q is not a CIDR", where, b.CIDR)
		return IPBlock{}, false
	}
	if !cidr.Addr().Is4() {
		c.problem(ReasonIPv6NotSupported, "%s: ipBlock %s skipped: kovn programs IPv4 only", where, b.CIDR)
		return IPBlock{}, false
	}
	out := IPBlock{Index: index, CIDR: cidr.Masked()}
	for _, e := range b.Except {
		ex, err := netip.ParsePrefix(e)
		if err != nil {
			c.problem(ReasonInvalidIPBlock, "%s: except %q is not a CIDR; peer skipped", where, e)
			return IPBlock{}, false
		}
		ex = ex.Masked()
		if !ex.Addr().Is4() || ex.Bits() < out.CIDR.Bits() || !out.CIDR.Contains(ex.Addr()) {
			c.problem(ReasonInvalidIPBlock, "%s: except %s is not inside cidr %s; peer skipped", where, e, b.CIDR)
			return IPBlock{}, false
		}
		out.Except = append(out.Except, ex)
	}
	return out, true
}

func (c *Compiled) port(where string, p *networkingv1.NetworkPolicyPort) (Port, bool) {
	out := Port{Protocol: corev1.ProtocolTCP}
	if p.Protocol != nil {
		out.Protocol = *p.Protocol
	}
	switch out.Protocol {
	case corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP:
	default:
		c.problem(ReasonInvalidPort, "%s: protocol %q is not TCP, UDP or SCTP", where, out.Protocol)
		return Port{}, false
	}
	switch {
	case p.Port == nil:
		if p.EndPort != nil {
			c.problem(ReasonInvalidPort, "%s: endPort without port", where)
			return Port{}, false
		}
	case p.Port.Type == intstr.String:
		if p.Port.StrVal == "" || p.EndPort != nil {
			c.problem(ReasonInvalidPort, "%s: named port %q: empty, or with endPort", where, p.Port.StrVal)
			return Port{}, false
		}
		out.Name = p.Port.StrVal
	default:
		out.Port = p.Port.IntVal
		if out.Port < 1 || out.Port > 65535 {
			c.problem(ReasonInvalidPort, "%s: port %d out of range 1-65535", where, out.Port)
			return Port{}, false
		}
		if p.EndPort != nil {
			if *p.EndPort < out.Port || *p.EndPort > 65535 {
				c.problem(ReasonInvalidPort, "%s: endPort %d is below port %d or above 65535", where, *p.EndPort, out.Port)
				return Port{}, false
			}
			if *p.EndPort > out.Port {
				out.EndPort = *p.EndPort
			}
		}
	}
	return out, true
}

// Selectors are the distinct peer selectors of all rules, in rule order.
func (c *Compiled) Selectors() []*Selector {
	seen := map[string]bool{}
	var out []*Selector
	for _, r := range c.Rules {
		for _, s := range r.Selectors {
			if !seen[s.Key] {
				seen[s.Key] = true
				out = append(out, s)
			}
		}
	}
	return out
}

// NamedPortKey asks which pod IPs resolve a named port, by number. For
// an ingress rule the pods are those the policy selects (the
// destinations); for an egress rule, the rule's peer pods, or every pod
// when the rule has no peers. Egress ipBlock peers resolve nothing.
type NamedPortKey struct {
	Dir      Direction
	Rule     int
	Name     string
	Protocol corev1.Protocol
}

// NamedPorts is the resolution table: key → port number → pod IPs.
type NamedPorts map[NamedPortKey]map[int32][]netip.Addr

// NamedPortKeys lists what the policy's ACLs need resolved.
func (c *Compiled) NamedPortKeys() []NamedPortKey {
	var out []NamedPortKey
	for _, r := range c.Rules {
		if r.Dir == Egress && !r.AnyPeer && len(r.Selectors) == 0 {
			continue
		}
		for _, p := range r.Ports {
			if p.Name != "" {
				out = append(out, NamedPortKey{Dir: r.Dir, Rule: r.Index, Name: p.Name, Protocol: p.Protocol})
			}
		}
	}
	return out
}
