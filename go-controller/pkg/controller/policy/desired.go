// Package policy enforces NetworkPolicy with OVN port groups, address sets
// and ACLs, incrementally: a pod or namespace change touches only the
// address sets and port groups its selectors reach. See
// docs/networkpolicy.md.
package policy

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// ACL priorities. Only the order matters: the allows of every policy sit
// above the default deny of isolated pods.
const (
	PriorityDefaultDeny = 1000
	PriorityAllow       = 1001
)

// ACLLoggingAnnotation on a Namespace turns on logging of its policy
// verdicts: {"deny":"alert","allow":"notice"}.
const ACLLoggingAnnotation = "kovn.io/acl-logging"

// Logging is a namespace's logging setting: the severity of logged denies
// and allows, "" for none.
type Logging struct {
	Deny  string `json:"deny,omitempty"`
	Allow string `json:"allow,omitempty"`
}

// ParseLogging reads the kovn.io/acl-logging annotation ("" is no logging).
func ParseLogging(s string) (Logging, error) {
	var l Logging
	if s == "" {
		return l, nil
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return Logging{}, fmt.Errorf("%s: want JSON like {\"deny\":\"alert\",\"allow\":\"notice\"}: %v", ACLLoggingAnnotation, err)
	}
	if _, err := dec.Token(); err != io.EOF { // Decode stops after the first value
		return Logging{}, fmt.Errorf("%s: want one JSON object like {\"deny\":\"alert\",\"allow\":\"notice\"}, found more after it", ACLLoggingAnnotation)
	}
	for _, sev := range []string{l.Deny, l.Allow} {
		switch sev {
		case "", nbdb.ACLSeverityAlert, nbdb.ACLSeverityWarning, nbdb.ACLSeverityNotice, nbdb.ACLSeverityInfo, nbdb.ACLSeverityDebug:
		default:
			return Logging{}, fmt.Errorf("%s: severity %q is not one of alert, warning, notice, info, debug", ACLLoggingAnnotation, sev)
		}
	}
	return l, nil
}

// Inputs are what a policy's ACLs depend on besides the policy.
type Inputs struct {
	// AddressSets maps a selector's Key to its address set; a selector
	// missing here is left out (allowing less, never more).
	AddressSets map[string]string
	NamedPorts  NamedPorts
	Logging     Logging
}

// Desired is the ACL set of a policy: a pure function of the policy, the
// selector → address set names, the named-port resolution and the
// namespace's logging. It also returns the problems to report.
func Desired(np *networkingv1.NetworkPolicy, in Inputs) ([]*nbdb.ACL, []Problem) {
	c := Compile(np)
	return PolicyACLs(c, in), c.Problems
}

// PolicyACLs is Desired for a compiled policy.
func PolicyACLs(c *Compiled, in Inputs) []*nbdb.ACL {
	var out []*nbdb.ACL
	for i := range c.Rules {
		out = append(out, ruleACLs(c, &c.Rules[i], in)...)
	}
	return out
}

// ruleACLs gives a rule one ACL for its selector peers together (or for
// any peer) and one per ipBlock; their union is the rule. A rule without
// valid peers or ports gets none: it allows nothing.
func ruleACLs(c *Compiled, r *Rule, in Inputs) []*nbdb.ACL {
	pg := own.PolicyPortGroup(c.Namespace, c.Name)
	portField, ipField := "outport", "ip4.src"
	if r.Dir == Egress {
		portField, ipField = "inport", "ip4.dst"
	}
	base := portField + " == @" + pg
	id := fmt.Sprintf("%s/%d", r.Dir, r.Index)
	var out []*nbdb.ACL
	add := func(id string, peer string, namedOK bool) {
		ports, ok := portsClause(r, in.NamedPorts, namedOK)
		if !ok {
			return
		}
		out = append(out, allowACL(c, r.Dir, id, and(base, peer, ports), in.Logging))
	}
	if r.AnyPeer {
		add(id, "", true)
		return out
	}
	var refs []string
	for _, s := range r.Selectors {
		if name := in.AddressSets[s.Key]; name != "" {
			refs = append(refs, "$"+name)
		}
	}
	if len(refs) > 0 {
		add(id, ipField+" == "+set(refs), true)
	}
	for _, b := range r.IPBlocks {
		// Positively, never "!= {excepts}": see IPBlock.Allowed.
		allowed := b.Allowed()
		if len(allowed) == 0 {
			continue // the excepts cover the CIDR: this peer allows nothing
		}
		peer := ipField + " == " + set(prefixStrings(allowed))
		// An egress named port resolves on destination pods; an ipBlock
		// names addresses, not pods, so it cannot resolve one.
		add(fmt.Sprintf("%s/ipblock/%d", id, b.Index), peer, r.Dir == Ingress)
	}
	return out
}

// portsClause is the ports part of a rule's match: "" and true for any
// port, false when no port is left (the rule then allows nothing).
// Single ports of one protocol share a set; a named port becomes, per
// number it resolves to, the pods resolving it to that number.
func portsClause(r *Rule, named NamedPorts, namedOK bool) (string, bool) {
	if r.AnyPort {
		return "", true
	}
	var terms []string
	singles := map[string][]int32{}
	var order []string
	for _, p := range r.Ports {
		f := ovnProto(p.Protocol)
		switch {
		case p.Name != "":
			if !namedOK {
				continue
			}
			res := named[NamedPortKey{Dir: r.Dir, Rule: r.Index, Name: p.Name, Protocol: p.Protocol}]
			for _, n := range slices.Sorted(maps.Keys(res)) {
				ips := slices.Clone(res[n])
				slices.SortFunc(ips, netip.Addr.Compare)
				ips = slices.Compact(ips)
				terms = append(terms, fmt.Sprintf("ip4.dst == %s && %s.dst == %d", set(addrStrings(ips)), f, n))
			}
		case p.Port == 0:
			terms = append(terms, f)
		case p.EndPort > p.Port:
			terms = append(terms, fmt.Sprintf("%s.dst >= %d && %s.dst <= %d", f, p.Port, f, p.EndPort))
		default:
			if singles[f] == nil {
				order = append(order, f)
			}
			singles[f] = append(singles[f], p.Port)
		}
	}
	for _, f := range order {
		nums := slices.Sorted(slices.Values(singles[f]))
		var strs []string
		for _, n := range slices.Compact(nums) {
			strs = append(strs, fmt.Sprint(n))
		}
		terms = append(terms, f+".dst == "+set(strs))
	}
	switch len(terms) {
	case 0:
		return "", false
	case 1:
		return terms[0], true
	}
	for i, t := range terms {
		if strings.Contains(t, "&&") {
			terms[i] = "(" + t + ")"
		}
	}
	return "(" + strings.Join(terms, " || ") + ")", true
}

func ovnProto(p corev1.Protocol) string { return strings.ToLower(string(p)) }

// set renders an OVN value set; one value needs no braces.
func set(vals []string) string {
	if len(vals) == 1 {
		return vals[0]
	}
	return "{" + strings.Join(vals, ", ") + "}"
}

func and(parts ...string) string {
	var kept []string
	for _, p := range parts {
		if p != "" {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, " && ")
}

func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

func addrStrings(as []netip.Addr) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

// aclName is the readable name column OVN puts into log messages; the
// schema allows 63 characters.
func aclName(s string) *string {
	if len(s) > 63 {
		s = s[:63]
	}
	return &s
}

func allowACL(c *Compiled, dir Direction, id, match string, lg Logging) *nbdb.ACL {
	acl := &nbdb.ACL{
		Name:        aclName(c.Key()),
		Priority:    PriorityAllow,
		Direction:   aclDirection(dir),
		Match:       match,
		Action:      nbdb.ACLActionAllowRelated,
		ExternalIDs: own.IDs(own.KindNetworkPolicy, c.Key(), id),
		Options:     aclOptions(dir),
	}
	setLogging(acl, lg.Allow)
	return acl
}

// aclDirection: ingress rules are checked on the way to the selected
// pod's port, egress rules on the way from it.
func aclDirection(dir Direction) string {
	if dir == Egress {
		return nbdb.ACLDirectionFromLport
	}
	return nbdb.ACLDirectionToLport
}

// aclOptions puts egress ACLs after the load balancer, so that egress to a
// Service is checked against the backend pod it chose, not the VIP.
func aclOptions(dir Direction) map[string]string {
	if dir == Egress {
		return map[string]string{"apply-after-lb": "true"}
	}
	return nil
}

func setLogging(acl *nbdb.ACL, severity string) {
	if severity == "" {
		return
	}
	sev, meter := severity, own.ACLLoggingMeter
	acl.Log, acl.Severity, acl.Meter = true, &sev, &meter
}

// IsolationACLs are the ACLs of a namespace's isolation port group for
// one direction: drop all IPv4 to (or from) its pods below every policy's
// allows. ARP and ND are not IPv4, so they pass. Ingress also admits the
// node management addresses: kubelet probes and host-network clients.
// Replies to allowed connections pass through conntrack (allow-related).
func IsolationACLs(namespace string, dir Direction, lg Logging) []*nbdb.ACL {
	pg := own.IsolationPortGroup(namespace, string(dir))
	field := "outport"
	if dir == Egress {
		field = "inport"
	}
	drop := &nbdb.ACL{
		Name:        aclName(namespace + "/isolate-" + string(dir)),
		Priority:    PriorityDefaultDeny,
		Direction:   aclDirection(dir),
		Match:       field + " == @" + pg + " && ip4",
		Action:      nbdb.ACLActionDrop,
		ExternalIDs: own.IDs(own.KindPolicyIsolation, namespace, string(dir)+"/drop"),
		Options:     aclOptions(dir),
	}
	setLogging(drop, lg.Deny)
	if dir == Egress {
		return []*nbdb.ACL{drop}
	}
	mgmt := &nbdb.ACL{
		Name:        aclName(namespace + "/node-management"),
		Priority:    PriorityAllow,
		Direction:   nbdb.ACLDirectionToLport,
		Match:       "outport == @" + pg + " && ip4.src == $" + own.NodeManagementAddressSet,
		Action:      nbdb.ACLActionAllowRelated,
		ExternalIDs: own.IDs(own.KindPolicyIsolation, namespace, "ingress/node-management"),
	}
	return []*nbdb.ACL{drop, mgmt}
}
