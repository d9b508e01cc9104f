package policy

// Fuzz targets of NetworkPolicy → ACL translation and of the
// kovn.io/acl-logging annotation. See docs/fuzzing.md.
//
// FuzzPolicyACLs reads a scenario: lines in a small text language, applied
// in order to the controller's index (the pure desired state) as the
// informers would. Text rather than binary so that the seed corpus
// (testdata/fuzz/FuzzPolicyACLs) is readable and mutations land in
// meaningful places (a port number, a CIDR, a protocol name):
//
//	ns   <name> [l=<key>:<value>]... [log=<acl-logging annotation>]
//	pod  <ns>/<name> [ip=<addr>] [sip=<status addr>] [l=<key>:<value>]...
//	     [port=<name>:<number>[/<proto>]]... [host] [done]
//	np   <ns>/<name> [sel=<selector>] [types=ingress,egress]
//	in|eg [peer=<peer>]... [port=[<proto>][:<port>[-<endPort>]]]...
//	del  ns|pod|np <key>
//
// A peer is '+'-joined parts: p:<selector> (podSelector), n:<selector>
// (namespaceSelector), c:<cidr> (ipBlock), x:<cidr> (an except). A
// selector is ','-joined items: k=v (matchLabels) or k~Op~v1/v2
// (matchExpressions); empty selects everything. in/eg lines add rules to
// the np above them. Names and pod/namespace labels that the API server
// would reject make the line be skipped (such objects cannot exist);
// everything in a policy's spec is passed on raw, since Compile must
// cope with whatever it is given.

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// Bounds keep one input fast.
const (
	maxScenarioLines = 120
	maxLineTokens    = 24
)

// scenario is the state a scenario leaves: the index, and the specs of the
// policies still present in input order.
type scenario struct {
	x        *index
	policies []*networkingv1.NetworkPolicy
}

// runScenario applies a scenario to a fresh index.
func runScenario(text string) *scenario {
	sc := &scenario{x: newIndex()}
	var cur *networkingv1.NetworkPolicy
	flush := func() {
		if cur == nil {
			return
		}
		key := cur.Namespace + "/" + cur.Name
		sc.x.setPolicy(key, Compile(cur), &cur.Spec)
		sc.policies = slices.DeleteFunc(sc.policies, func(p *networkingv1.NetworkPolicy) bool {
			return p.Namespace+"/"+p.Name == key
		})
		sc.policies = append(sc.policies, cur)
		cur = nil
	}
	lines := strings.Split(text, "\n")
	if len(lines) > maxScenarioLines {
		lines = lines[:maxScenarioLines]
	}
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) > maxLineTokens {
			f = f[:maxLineTokens]
		}
		switch f[0] {
		case "in", "eg":
			if cur != nil {
				addRule(cur, f[0] == "eg", f[1:])
			}
			continue
		}
		flush()
		switch f[0] {
		case "ns":
			if len(f) > 1 {
				sc.namespace(f[1], f[2:])
			}
		case "pod":
			if len(f) > 1 {
				sc.pod(f[1], f[2:])
			}
		case "np":
			if len(f) > 1 {
				cur = newPolicy(f[1], f[2:])
			}
		case "del":
			if len(f) > 2 {
				sc.del(f[1], f[2])
			}
		}
	}
	flush()
	return sc
}

func splitKey(key string) (ns, name string, ok bool) {
	ns, name, ok = strings.Cut(key, "/")
	return ns, name, ok && len(validation.IsDNS1123Label(ns)) == 0 && len(validation.IsDNS1123Subdomain(name)) == 0
}

// objectLabels reads l=k:v tokens, dropping what the API would reject.
func objectLabels(args []string) map[string]string {
	out := map[string]string{}
	for _, a := range args {
		if kv, ok := strings.CutPrefix(a, "l="); ok {
			k, v, _ := strings.Cut(kv, ":")
			if len(validation.IsQualifiedName(k)) == 0 && len(validation.IsValidLabelValue(v)) == 0 {
				out[k] = v
			}
		}
	}
	return out
}

func (sc *scenario) namespace(name string, args []string) {
	if len(validation.IsDNS1123Label(name)) != 0 {
		return
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: objectLabels(args), Annotations: map[string]string{}}}
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "log="); ok {
			ns.Annotations[ACLLoggingAnnotation] = v
		}
	}
	e, _ := namespaceEntry(ns) // an invalid setting logs nothing, as in syncNamespace
	sc.x.setNamespace(name, e)
}

// pod builds the Pod and reads it as Controller.podInfo does (the port
// UUID, which podInfo reads from NB, is made up).
func (sc *scenario) pod(key string, args []string) {
	ns, name, ok := splitKey(key)
	if !ok {
		return
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: objectLabels(args), Annotations: map[string]string{}},
		Spec:       corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c"}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		switch k {
		case "ip":
			if !strings.Contains(v, "/") {
				v += "/24"
			}
			pn := &kube.PodNetwork{IPs: []string{v}, MAC: "0a:58:0a:80:00:05", Gateway: []string{"10.128.0.1"}, MTU: 1400}
			s, _ := pn.Marshal()
			pod.Annotations[kube.PodNetworkAnnotation] = s
		case "sip":
			pod.Status.PodIPs = append(pod.Status.PodIPs, corev1.PodIP{IP: v})
		case "port":
			// The API admits IANA service names, 1-65535 and TCP/UDP/SCTP only.
			pname, rest, _ := strings.Cut(v, ":")
			num, proto, _ := strings.Cut(rest, "/")
			n, err := strconv.ParseInt(num, 10, 32)
			if len(validation.IsValidPortName(pname)) != 0 || err != nil || n < 1 || n > 65535 {
				continue
			}
			switch corev1.Protocol(proto) {
			case "", corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP:
			default:
				continue
			}
			pod.Spec.Containers[0].Ports = append(pod.Spec.Containers[0].Ports,
				corev1.ContainerPort{Name: pname, ContainerPort: int32(n), Protocol: corev1.Protocol(proto)})
		case "host":
			pod.Spec.HostNetwork = true
		case "done":
			pod.Status.Phase = corev1.PodSucceeded
		}
	}
	info := podInfoOf(pod)
	if onNetwork(pod) {
		info.lsp = "lsp-" + ns + "-" + name
	}
	sc.x.setPod(ns+"/"+name, ns, info)
}

func (sc *scenario) del(kind, key string) {
	switch kind {
	case "ns":
		sc.x.setNamespace(key, nil)
	case "pod":
		if ns, _, ok := strings.Cut(key, "/"); ok {
			sc.x.setPod(key, ns, nil)
		}
	case "np":
		sc.x.setPolicy(key, nil, nil)
		sc.policies = slices.DeleteFunc(sc.policies, func(p *networkingv1.NetworkPolicy) bool {
			return p.Namespace+"/"+p.Name == key
		})
	}
}

// selectorOf reads k=v,k~Op~a/b.
func selectorOf(s string) *metav1.LabelSelector {
	sel := &metav1.LabelSelector{}
	if s == "" {
		return sel
	}
	for _, item := range strings.Split(s, ",") {
		if parts := strings.Split(item, "~"); len(parts) >= 2 {
			req := metav1.LabelSelectorRequirement{Key: parts[0], Operator: metav1.LabelSelectorOperator(parts[1])}
			if len(parts) > 2 {
				req.Values = strings.Split(parts[2], "/")
			}
			sel.MatchExpressions = append(sel.MatchExpressions, req)
			continue
		}
		k, v, _ := strings.Cut(item, "=")
		if sel.MatchLabels == nil {
			sel.MatchLabels = map[string]string{}
		}
		sel.MatchLabels[k] = v
	}
	return sel
}

func newPolicy(key string, args []string) *networkingv1.NetworkPolicy {
	ns, name, ok := splitKey(key)
	if !ok {
		return nil
	}
	p := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		switch k {
		case "sel":
			p.Spec.PodSelector = *selectorOf(v)
		case "types":
			p.Spec.PolicyTypes = []networkingv1.PolicyType{}
			for _, t := range strings.Split(v, ",") {
				switch strings.ToLower(t) {
				case "ingress":
					t = string(networkingv1.PolicyTypeIngress)
				case "egress":
					t = string(networkingv1.PolicyTypeEgress)
				}
				p.Spec.PolicyTypes = append(p.Spec.PolicyTypes, networkingv1.PolicyType(t))
			}
		}
	}
	return p
}

func peerOf(s string) networkingv1.NetworkPolicyPeer {
	var peer networkingv1.NetworkPolicyPeer
	for _, part := range strings.Split(s, "+") {
		k, v, _ := strings.Cut(part, ":")
		switch k {
		case "p":
			peer.PodSelector = selectorOf(v)
		case "n":
			peer.NamespaceSelector = selectorOf(v)
		case "c":
			if peer.IPBlock == nil {
				peer.IPBlock = &networkingv1.IPBlock{}
			}
			peer.IPBlock.CIDR = v
		case "x":
			if peer.IPBlock == nil {
				peer.IPBlock = &networkingv1.IPBlock{}
			}
			peer.IPBlock.Except = append(peer.IPBlock.Except, v)
		}
	}
	return peer
}

// portOf reads [proto][:port[-end]]; a port that is not a 32-bit number
// is a named port.
func portOf(s string) networkingv1.NetworkPolicyPort {
	var out networkingv1.NetworkPolicyPort
	proto, rest, hasPort := strings.Cut(s, ":")
	if proto != "" {
		pr := corev1.Protocol(proto)
		out.Protocol = &pr
	}
	if !hasPort {
		return out
	}
	num, end, hasEnd := strings.Cut(rest, "-")
	if num != "" {
		var p intstr.IntOrString
		if n, err := strconv.ParseInt(num, 10, 32); err == nil {
			p = intstr.FromInt32(int32(n))
		} else {
			p = intstr.FromString(num)
		}
		out.Port = &p
	}
	if hasEnd {
		if n, err := strconv.ParseInt(end, 10, 32); err == nil {
			e := int32(n)
			out.EndPort = &e
		}
	}
	return out
}

func addRule(p *networkingv1.NetworkPolicy, egress bool, args []string) {
	var peers []networkingv1.NetworkPolicyPeer
	var ports []networkingv1.NetworkPolicyPort
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		switch k {
		case "peer":
			peers = append(peers, peerOf(v))
		case "port":
			ports = append(ports, portOf(v))
		}
	}
	if egress {
		p.Spec.Egress = append(p.Spec.Egress, networkingv1.NetworkPolicyEgressRule{To: peers, Ports: ports})
	} else {
		p.Spec.Ingress = append(p.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{From: peers, Ports: ports})
	}
}

// scenarioACL is one desired ACL and the port group it belongs to.
type scenarioACL struct {
	pg  string
	acl *nbdb.ACL
}

// desired computes every ACL the scenario's state asks for, as build.policy
// and build.isolation do, and the address sets and port groups NB would
// hold alongside.
func (sc *scenario) desired() (acls []scenarioACL, problems map[string][]Problem, checker *matchChecker) {
	x := sc.x
	checker = &matchChecker{addressSets: map[string]bool{own.NodeManagementAddressSet: true}, portGroups: map[string]bool{}}
	problems = map[string][]Problem{}
	nsDone := map[string]bool{}
	for _, np := range sc.policies {
		key := np.Namespace + "/" + np.Name
		pe := x.policies[key]
		if pe == nil {
			continue
		}
		addrSets := map[string]string{}
		for _, s := range pe.c.Selectors() {
			se := x.selectors[s.Key]
			addrSets[s.Key] = se.asName
			checker.addressSets[se.asName] = true
		}
		pg := own.PolicyPortGroup(np.Namespace, np.Name)
		checker.portGroups[pg] = true
		for _, a := range PolicyACLs(pe.c, Inputs{AddressSets: addrSets, NamedPorts: x.namedPorts(pe), Logging: x.logging(np.Namespace)}) {
			acls = append(acls, scenarioACL{pg, a})
		}
		problems[key] = pe.c.Problems
		if nsDone[np.Namespace] {
			continue
		}
		nsDone[np.Namespace] = true
		for _, dir := range []Direction{Ingress, Egress} {
			if x.hasDirection(np.Namespace, dir) {
				ipg := own.IsolationPortGroup(np.Namespace, string(dir))
				checker.portGroups[ipg] = true
				for _, a := range IsolationACLs(np.Namespace, dir, x.logging(np.Namespace)) {
					acls = append(acls, scenarioACL{ipg, a})
				}
			}
		}
	}
	return acls, problems, checker
}

var knownReasons = map[string]bool{
	ReasonInvalidSelector: true, ReasonInvalidPeer: true, ReasonInvalidIPBlock: true,
	ReasonIPv6NotSupported: true, ReasonInvalidPort: true,
}

// checkScenarioACL is what NB and OVN need of one row.
func checkScenarioACL(a *nbdb.ACL, checker *matchChecker) error {
	if err := checker.check(a.Match); err != nil {
		return fmt.Errorf("match %q: %v", a.Match, err)
	}
	if a.Name == nil || len(*a.Name) > 63 || !utf8.ValidString(*a.Name) {
		return fmt.Errorf("name %v", a.Name)
	}
	if a.Direction != nbdb.ACLDirectionToLport && a.Direction != nbdb.ACLDirectionFromLport {
		return fmt.Errorf("direction %q", a.Direction)
	}
	if a.Action != nbdb.ACLActionAllowRelated && a.Action != nbdb.ACLActionDrop {
		return fmt.Errorf("action %q", a.Action)
	}
	if a.Priority < 0 || a.Priority > 32767 {
		return fmt.Errorf("priority %d", a.Priority)
	}
	if a.Log != (a.Severity != nil) || a.Log != (a.Meter != nil) {
		return fmt.Errorf("log %v severity %v meter %v", a.Log, a.Severity, a.Meter)
	}
	if a.Severity != nil {
		switch *a.Severity {
		case nbdb.ACLSeverityAlert, nbdb.ACLSeverityWarning, nbdb.ACLSeverityNotice, nbdb.ACLSeverityInfo, nbdb.ACLSeverityDebug:
		default:
			return fmt.Errorf("severity %q", *a.Severity)
		}
	}
	for k, v := range a.ExternalIDs {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return fmt.Errorf("external_ids %q=%q not UTF-8", k, v)
		}
	}
	if a.ExternalIDs[own.IDKey] == "" {
		return fmt.Errorf("no %s: %v", own.IDKey, a.ExternalIDs)
	}
	return nil
}

// checkProblems: every part of a rule that is dropped is reported, once,
// with a known reason, so a bad spec gives an Event, never a bad row or a
// silently missing allow.
func checkProblems(t *testing.T, np *networkingv1.NetworkPolicy, c *Compiled) {
	t.Helper()
	count := func(prefix string) int {
		n := 0
		for _, p := range c.Problems {
			if strings.HasPrefix(p.Message, prefix+":") || strings.HasPrefix(p.Message, prefix+" ") {
				n++
			}
		}
		return n
	}
	for _, p := range c.Problems {
		if !knownReasons[p.Reason] || p.Message == "" {
			t.Fatalf("%s: problem %+v", c.Key(), p)
		}
	}
	if (c.PodSelector == nil) != (count("podSelector") == 1) {
		t.Fatalf("%s: podSelector %v, problems %+v", c.Key(), c.PodSelector, c.Problems)
	}
	for _, r := range c.Rules {
		var peers []networkingv1.NetworkPolicyPeer
		var ports []networkingv1.NetworkPolicyPort
		if r.Dir == Ingress {
			peers, ports = np.Spec.Ingress[r.Index].From, np.Spec.Ingress[r.Index].Ports
		} else {
			peers, ports = np.Spec.Egress[r.Index].To, np.Spec.Egress[r.Index].Ports
		}
		where := fmt.Sprintf("%s rule %d", r.Dir, r.Index)
		for j := range ports {
			if count(fmt.Sprintf("%s, port %d", where, j)) > 1 {
				t.Fatalf("%s port %d reported twice: %+v", where, j, c.Problems)
			}
		}
		if bad := count(fmt.Sprintf("%s, port", where)); len(r.Ports)+bad != len(ports) {
			t.Fatalf("%s %s: %d ports, %d valid, %d reported: %+v", c.Key(), where, len(ports), len(r.Ports), bad, c.Problems)
		}
		badPeers := 0
		for j := range peers {
			n := count(fmt.Sprintf("%s, peer %d", where, j))
			if n > 1 {
				t.Fatalf("%s peer %d reported twice: %+v", where, j, c.Problems)
			}
			badPeers += n
		}
		selPeers := len(peers) - len(r.IPBlocks) - badPeers
		if selPeers < len(r.Selectors) || (selPeers > 0) != (len(r.Selectors) > 0) {
			t.Fatalf("%s %s: %d peers, %d ipBlocks, %d selectors, %d reported: %+v",
				c.Key(), where, len(peers), len(r.IPBlocks), len(r.Selectors), badPeers, c.Problems)
		}
		if r.AnyPeer != (len(peers) == 0) || r.AnyPort != (len(ports) == 0) {
			t.Fatalf("%s %s: AnyPeer %v AnyPort %v for %d peers %d ports", c.Key(), where, r.AnyPeer, r.AnyPort, len(peers), len(ports))
		}
		for _, b := range r.IPBlocks {
			if !b.CIDR.Addr().Is4() || b.CIDR.Masked() != b.CIDR {
				t.Fatalf("%s: ipBlock %v", where, b.CIDR)
			}
			for _, e := range b.Except {
				if !b.CIDR.Contains(e.Addr()) || e.Bits() < b.CIDR.Bits() {
					t.Fatalf("%s: except %v outside %v", where, e, b.CIDR)
				}
			}
		}
		for _, p := range r.Ports {
			if p.Name == "" && (p.Port < 0 || p.Port > 65535 || (p.EndPort != 0 && (p.EndPort <= p.Port || p.EndPort > 65535))) {
				t.Fatalf("%s: port %+v", where, p)
			}
		}
	}
}

// checkScenario asserts the properties of a scenario's desired state.
func checkScenario(t *testing.T, sc *scenario) []scenarioACL {
	t.Helper()
	acls, _, checker := sc.desired()
	ids := map[string]string{} // port group + id → match
	for _, sa := range acls {
		if err := checkScenarioACL(sa.acl, checker); err != nil {
			t.Fatalf("port group %s, ACL %v: %v", sa.pg, sa.acl.ExternalIDs, err)
		}
		id := sa.pg + " " + sa.acl.ExternalIDs[own.IDKey]
		if m, dup := ids[id]; dup {
			t.Fatalf("two ACLs with id %s: %q and %q", id, m, sa.acl.Match)
		}
		ids[id] = sa.acl.Match
	}
	// Pure: the same state gives the same rows.
	again, _, _ := sc.desired()
	if len(again) != len(acls) {
		t.Fatalf("desired state not deterministic: %d then %d ACLs", len(acls), len(again))
	}
	for i := range acls {
		if !reflect.DeepEqual(acls[i].acl, again[i].acl) {
			t.Fatalf("desired state not deterministic:\n%+v\n%+v", acls[i].acl, again[i].acl)
		}
	}
	for _, np := range sc.policies {
		checkProblems(t, np, Compile(np))
	}
	return acls
}

// policySeeds are the f.Add seeds; testdata/fuzz/FuzzPolicyACLs holds more.
var policySeeds = []string{
	"ns team-a l=team:a\npod team-a/web-1 ip=10.128.0.5 l=app:web port=http:8080\nnp team-a/web sel=app=web\nin peer=p:app=client port=TCP:80\n",
	"ns a\nnp a/p types=Ingress,Egress\nin port=UDP:53 port=SCTP:9 port=:1000-2000 port=TCP:http\neg peer=c:10.0.0.0/8+x:10.1.0.0/16 peer=n:team=b+p:app~In~x/y\n",
	"np a/bad sel=app~Bogus~x\nin peer= peer=c:10.0.0.0/8+p:x=y peer=c:fd00::/64 peer=c:nonsense port=XYZ:1 port=TCP:0 port=TCP:70000 port=TCP:80-79 port=TCP:http-90 port=:-5\n",
}

// FuzzPolicyACLs: any scenario gives, without panicking, ACLs whose
// matches pass the structural OVN check (referring only to port groups
// and address sets that the desired state holds), with unique ids per
// port group, deterministically; every dropped part of a spec is a
// Problem with a known reason.
func FuzzPolicyACLs(f *testing.F) {
	for _, s := range policySeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkScenario(t, runScenario(string(data)))
	})
}

// FuzzParseLogging: any kovn.io/acl-logging value. An error, or one JSON
// object whose severities are OVN's, which round-trips through JSON.
func FuzzParseLogging(f *testing.F) {
	f.Add(`{"deny":"alert","allow":"notice"}`)
	f.Add(`{"deny":"debug"}`)
	f.Add(`{"allow":"loud"}`)
	f.Add(``)
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLogging(s)
		if err != nil {
			if l != (Logging{}) {
				t.Fatalf("error %v with a value %+v", err, l)
			}
			if !strings.Contains(err.Error(), ACLLoggingAnnotation) {
				t.Fatalf("error %q does not name the annotation", err)
			}
			return
		}
		if s != "" && !json.Valid([]byte(s)) {
			t.Fatalf("accepted %q, which is not one JSON value", s)
		}
		for _, sev := range []string{l.Deny, l.Allow} {
			switch sev {
			case "", nbdb.ACLSeverityAlert, nbdb.ACLSeverityWarning, nbdb.ACLSeverityNotice, nbdb.ACLSeverityInfo, nbdb.ACLSeverityDebug:
			default:
				t.Fatalf("accepted severity %q", sev)
			}
		}
		b, _ := json.Marshal(l)
		if again, err := ParseLogging(string(b)); err != nil || again != l {
			t.Fatalf("round trip of %+v: %+v, %v", l, again, err)
		}
		// What the ACLs get from it passes the row check.
		for _, a := range IsolationACLs("ns", Ingress, l) {
			if err := checkScenarioACL(a, &matchChecker{addressSets: map[string]bool{own.NodeManagementAddressSet: true},
				portGroups: map[string]bool{own.IsolationPortGroup("ns", "ingress"): true}}); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// The scenario reader must see what it is given: a quick self-check of the
// decoder, so that a silently skipped line cannot make the fuzzer vacuous.
func TestScenarioDecoder(t *testing.T) {
	sc := runScenario(policySeeds[0] + policySeeds[1])
	if len(sc.policies) != 2 || len(sc.x.pods) != 1 || len(sc.x.namespaces) != 2 {
		t.Fatalf("policies %d pods %d namespaces %d", len(sc.policies), len(sc.x.pods), len(sc.x.namespaces))
	}
	if ip := sc.x.pods["team-a/web-1"].ip; ip != netip.MustParseAddr("10.128.0.5") {
		t.Fatalf("pod ip %v", ip)
	}
	acls := checkScenario(t, sc)
	var got []string
	for _, a := range acls {
		got = append(got, a.pg+": "+a.acl.Match)
	}
	want := []string{
		"kovn_np.team_a.web: outport == @kovn_np.team_a.web && ip4.src == $" +
			own.SelectorAddressSet("namespace:team-a pods:app=client", "v4") + " && tcp.dst == 80",
		"kovn_isolate_ingress.team_a: outport == @kovn_isolate_ingress.team_a && ip4",
		"kovn_isolate_ingress.team_a: outport == @kovn_isolate_ingress.team_a && ip4.src == $kovn_node_mgmt_v4",
		"kovn_np.a.p: outport == @kovn_np.a.p && ((tcp.dst >= 1000 && tcp.dst <= 2000) || udp.dst == 53 || sctp.dst == 9)",
		"kovn_np.a.p: inport == @kovn_np.a.p && ip4.dst == $" + own.SelectorAddressSet("namespaces:team=b pods:app in (x,y)", "v4"),
		"kovn_np.a.p: inport == @kovn_np.a.p && ip4.dst == {10.0.0.0/16, 10.2.0.0/15, 10.4.0.0/14, 10.8.0.0/13, 10.16.0.0/12, 10.32.0.0/11, 10.64.0.0/10, 10.128.0.0/9}",
		"kovn_isolate_ingress.a: outport == @kovn_isolate_ingress.a && ip4",
		"kovn_isolate_ingress.a: outport == @kovn_isolate_ingress.a && ip4.src == $kovn_node_mgmt_v4",
		"kovn_isolate_egress.a: inport == @kovn_isolate_egress.a && ip4",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("ACLs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	bad := runScenario(policySeeds[2])
	if c := Compile(bad.policies[0]); len(c.Problems) != 11 {
		t.Fatalf("problems of the bad seed: %d\n%+v", len(c.Problems), c.Problems)
	}
}
