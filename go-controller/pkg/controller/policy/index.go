package policy

import (
	"maps"
	"net/netip"
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/labels"

	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// The index is the controller's desired state, kept incrementally: which
// pods each peer selector and each policy select. Every change of a pod,
// namespace or policy updates it under mu and reports exactly what it
// changed, so the NB ops can be built for those rows only; building them
// also happens under mu, so two syncs never build from interleaved
// states (the transactions themselves run concurrently, outside mu).

type portName struct {
	name  string
	proto corev1.Protocol
}

// podInfo is what policies need of a pod.
type podInfo struct {
	key, ns string
	labels  labels.Set
	ip      netip.Addr // IPv4; invalid when the pod has none or is host-network or finished
	lsp     string     // its logical switch port's UUID, "" until the port exists
	ports   map[portName]int32
	// How many ingress and egress policies select it: it is isolated in a
	// direction while its count is above zero.
	ingress, egress int
}

// sameAs compares what the pod is, not the counts derived from policies.
func (p *podInfo) sameAs(o *podInfo) bool {
	if p == nil || o == nil {
		return p == o
	}
	return p.ip == o.ip && p.lsp == o.lsp && maps.Equal(p.labels, o.labels) && maps.Equal(p.ports, o.ports)
}

func lspOf(p *podInfo) string {
	if p == nil {
		return ""
	}
	return p.lsp
}

func (p *podInfo) isolated(dir Direction) bool {
	if p == nil || p.lsp == "" {
		return false
	}
	if dir == Ingress {
		return p.ingress > 0
	}
	return p.egress > 0
}

// selEntry is a peer selector with its members, shared by its users.
type selEntry struct {
	*Selector
	asName  string
	members map[string]netip.Addr // pod key → IP
	ipCount map[netip.Addr]int    // two pods may briefly hold one IP
	users   map[string]bool       // policy keys
}

func (s *selEntry) add(key string, ip netip.Addr) {
	s.members[key] = ip
	s.ipCount[ip]++
}

func (s *selEntry) remove(key string) {
	ip, ok := s.members[key]
	if !ok {
		return
	}
	delete(s.members, key)
	if s.ipCount[ip]--; s.ipCount[ip] <= 0 {
		delete(s.ipCount, ip)
	}
}

func (s *selEntry) has(ip netip.Addr) bool { return s.ipCount[ip] > 0 }

func (s *selEntry) addresses() []string {
	ips := slices.SortedFunc(maps.Keys(s.ipCount), netip.Addr.Compare)
	return addrStrings(ips)
}

type policyEntry struct {
	c       *Compiled
	named   []NamedPortKey // c.NamedPortKeys()
	spec    *networkingv1.NetworkPolicySpec
	members map[string]bool // pod keys its podSelector selects
	// reported: its problems have been reported since it was compiled.
	reported bool
}

func (pe *policyEntry) selects(p *podInfo) bool {
	return pe.c.PodSelector != nil && pe.c.PodSelector.Matches(p.labels)
}

// namedScope tells whether a pod is within the named-port resolution of
// the policy: selected by it (ingress) or a peer of an egress rule
// naming a port (all pods for a rule without peers).
func (pe *policyEntry) namedScope(x *index, p *podInfo) bool {
	for _, k := range pe.named {
		if k.Dir == Ingress && pe.members[p.key] {
			return true
		}
		if k.Dir != Egress {
			continue
		}
		r := pe.c.findRule(k.Dir, k.Rule)
		if r.AnyPeer {
			return true
		}
		for _, s := range r.Selectors {
			if se := x.selectors[s.Key]; se != nil {
				if _, ok := se.members[p.key]; ok {
					return true
				}
			}
		}
	}
	return false
}

// findRule finds a compiled rule.
func (c *Compiled) findRule(dir Direction, index int) *Rule {
	for i := range c.Rules {
		if c.Rules[i].Dir == dir && c.Rules[i].Index == index {
			return &c.Rules[i]
		}
	}
	return &Rule{}
}

type nsEntry struct {
	labels  labels.Set
	logging Logging
}

type index struct {
	mu           sync.Mutex
	pods         map[string]*podInfo
	podsByNS     map[string]map[string]*podInfo
	namespaces   map[string]*nsEntry
	selectors    map[string]*selEntry
	selByNS      map[string]map[string]*selEntry // podSelector-only peers, by namespace
	nsSelectors  map[string]*selEntry            // peers with a namespaceSelector
	policies     map[string]*policyEntry
	policiesByNS map[string]map[string]*policyEntry
	named        map[string]*policyEntry // policies with named ports
	// orphans are address sets of selectors no policy uses any more,
	// deleted by the next policy sync.
	orphans map[string]bool
	// pending counts, by name, shared rows (selector address sets,
	// isolation port groups) a transaction in flight inserts or deletes;
	// another sync must not build on them until it lands.
	pending map[string]int
	// settled is closed (and replaced) whenever a pending row's
	// transaction ends, waking the syncs that wait for it.
	settled chan struct{}
}

func newIndex() *index {
	return &index{
		pods: map[string]*podInfo{}, podsByNS: map[string]map[string]*podInfo{},
		namespaces: map[string]*nsEntry{}, selectors: map[string]*selEntry{},
		selByNS: map[string]map[string]*selEntry{}, nsSelectors: map[string]*selEntry{},
		policies: map[string]*policyEntry{}, policiesByNS: map[string]map[string]*policyEntry{},
		named: map[string]*policyEntry{}, orphans: map[string]bool{}, pending: map[string]int{},
		settled: make(chan struct{}),
	}
}

func putIn[V any](m map[string]map[string]V, outer, inner string, v V) {
	if m[outer] == nil {
		m[outer] = map[string]V{}
	}
	m[outer][inner] = v
}

func dropFrom[V any](m map[string]map[string]V, outer, inner string) {
	delete(m[outer], inner)
	if len(m[outer]) == 0 {
		delete(m, outer)
	}
}

// selectorsOf calls f for every selector that may select pods of ns.
func (x *index) selectorsOf(ns string, f func(*selEntry)) {
	for _, s := range x.selByNS[ns] {
		f(s)
	}
	for _, s := range x.nsSelectors {
		f(s)
	}
}

// selMatches: a selector holds a pod when it selects it and the pod has
// an address.
func (x *index) selMatches(s *selEntry, p *podInfo) bool {
	if !p.ip.IsValid() {
		return false
	}
	ns, known := x.namespaces[p.ns]
	var nsLabels labels.Set
	if known {
		nsLabels = ns.labels
	}
	return s.Matches(p.ns, p.labels, nsLabels, known)
}

func (x *index) logging(ns string) Logging {
	if e := x.namespaces[ns]; e != nil {
		return e.logging
	}
	return Logging{}
}

// change is what one update of the index touched.
type change struct {
	// sels: selectors whose members changed, with the IPs concerned.
	sels map[string][]netip.Addr
	// pgs: policies whose port group members changed, with the ports.
	pgs map[string][]string
	// iso: isolation groups (by direction) of ns whose members changed.
	ns  string
	iso map[Direction][]string
	// resync: named-port policies whose resolution may have changed.
	resync map[string]bool
}

func newChange(ns string) *change {
	return &change{ns: ns, sels: map[string][]netip.Addr{}, pgs: map[string][]string{},
		iso: map[Direction][]string{}, resync: map[string]bool{}}
}

func (ch *change) empty() bool {
	return len(ch.sels) == 0 && len(ch.pgs) == 0 && len(ch.iso) == 0 && len(ch.resync) == 0
}

// setPod replaces what the index knows of the pod key (nil: gone) and
// reports the selectors, port groups and isolation groups whose members
// changed — only those its labels, namespace and address reach.
func (x *index) setPod(key, ns string, nw *podInfo) *change {
	ch := newChange(ns)
	old := x.pods[key]
	oldSel := map[string]netip.Addr{}
	oldPG := map[string]bool{}
	if old != nil {
		x.selectorsOf(ns, func(s *selEntry) {
			if ip, ok := s.members[key]; ok {
				oldSel[s.Key] = ip
				s.remove(key)
			}
		})
		for pk, pe := range x.policiesByNS[ns] {
			if pe.members[key] {
				oldPG[pk] = true
				delete(pe.members, key)
			}
		}
		delete(x.pods, key)
		dropFrom(x.podsByNS, ns, key)
	}
	if nw != nil {
		nw.ingress, nw.egress = 0, 0
		x.selectorsOf(ns, func(s *selEntry) {
			if x.selMatches(s, nw) {
				s.add(key, nw.ip)
				if ip, was := oldSel[s.Key]; !was || ip != nw.ip {
					ch.sels[s.Key] = appendValid(ch.sels[s.Key], ip, nw.ip)
				}
				delete(oldSel, s.Key)
			}
		})
		for pk, pe := range x.policiesByNS[ns] {
			if pe.selects(nw) {
				pe.members[key] = true
				nw.ingress += b2i(pe.c.Ingress)
				nw.egress += b2i(pe.c.Egress)
				if !oldPG[pk] || old.lsp != nw.lsp {
					ch.pgs[pk] = appendPorts(ch.pgs[pk], old, nw)
				}
				delete(oldPG, pk)
			}
		}
		x.pods[key] = nw
		putIn(x.podsByNS, ns, key, nw)
	}
	for sk, ip := range oldSel { // left the selector
		ch.sels[sk] = appendValid(ch.sels[sk], ip)
	}
	for pk := range oldPG {
		ch.pgs[pk] = appendPorts(ch.pgs[pk], old, nil)
	}
	for _, dir := range []Direction{Ingress, Egress} {
		if old.isolated(dir) != nw.isolated(dir) || (old.isolated(dir) && old.lsp != lspOf(nw)) {
			ch.iso[dir] = appendPorts(nil, old, nw)
		}
	}
	x.namedResync(ch, old, nw)
	return ch
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func appendValid(ips []netip.Addr, add ...netip.Addr) []netip.Addr {
	for _, ip := range add {
		if ip.IsValid() && !slices.Contains(ips, ip) {
			ips = append(ips, ip)
		}
	}
	return ips
}

func appendPorts(ports []string, pods ...*podInfo) []string {
	for _, p := range pods {
		if p != nil && p.lsp != "" && !slices.Contains(ports, p.lsp) {
			ports = append(ports, p.lsp)
		}
	}
	return ports
}

// namedResync marks the named-port policies whose resolution the pod's
// change may alter: a pod naming no port never resolves one.
func (x *index) namedResync(ch *change, old, nw *podInfo) {
	if (old == nil || len(old.ports) == 0) && (nw == nil || len(nw.ports) == 0) {
		return
	}
	if old != nil && nw != nil && old.ip == nw.ip && maps.Equal(old.ports, nw.ports) &&
		maps.Equal(old.labels, nw.labels) {
		return
	}
	for pk, pe := range x.named {
		_, oldPG := ch.pgs[pk]
		if oldPG || (nw != nil && pe.namedScope(x, nw)) || (old != nil && x.wasInScope(pe, old, ch)) {
			ch.resync[pk] = true
		}
	}
}

// wasInScope: the old pod was in the policy's named-port scope if it
// selected it or one of the selectors it just left is a peer of the policy.
func (x *index) wasInScope(pe *policyEntry, old *podInfo, ch *change) bool {
	if pe.c.Namespace == old.ns && pe.selects(old) {
		return true
	}
	for _, s := range pe.c.Selectors() {
		if _, ok := ch.sels[s.Key]; ok {
			return true
		}
	}
	for _, k := range pe.named {
		if k.Dir == Egress && pe.c.findRule(k.Dir, k.Rule).AnyPeer {
			return true
		}
	}
	return false
}

// setNamespace records a namespace's labels and logging (nil: gone) and
// updates the members of the selectors with a namespaceSelector — the
// only ones its labels reach. It reports whether logging changed.
func (x *index) setNamespace(name string, n *nsEntry) (*change, bool) {
	ch := newChange(name)
	old := x.namespaces[name]
	if n == nil {
		delete(x.namespaces, name)
	} else {
		x.namespaces[name] = n
	}
	var oldLog, newLog Logging
	if old != nil {
		oldLog = old.logging
	}
	if n != nil {
		newLog = n.logging
	}
	if old != nil && n != nil && maps.Equal(old.labels, n.labels) {
		return ch, oldLog != newLog
	}
	for _, s := range x.nsSelectors {
		for key, p := range x.podsByNS[name] {
			_, was := s.members[key]
			is := x.selMatches(s, p)
			switch {
			case was && !is:
				s.remove(key)
			case is && !was:
				s.add(key, p.ip)
			default:
				continue
			}
			ch.sels[s.Key] = appendValid(ch.sels[s.Key], p.ip)
		}
	}
	for pk, pe := range x.named {
		for _, k := range pe.named {
			for _, s := range pe.c.findRule(k.Dir, k.Rule).Selectors {
				if _, ok := ch.sels[s.Key]; ok && k.Dir == Egress {
					ch.resync[pk] = true
				}
			}
		}
	}
	return ch, oldLog != newLog
}

// setPolicy records a compiled policy (nil: gone). An unchanged spec
// changes nothing. Selectors it stops using and no other policy uses
// become orphans; new selectors get their members from the pods known.
func (x *index) setPolicy(key string, c *Compiled, spec *networkingv1.NetworkPolicySpec) {
	old := x.policies[key]
	if old != nil && c != nil && apiequality.Semantic.DeepEqual(old.spec, spec) {
		return
	}
	var oldSels []string
	if old != nil {
		for k := range old.members {
			if p := x.pods[k]; p != nil {
				p.ingress -= b2i(old.c.Ingress)
				p.egress -= b2i(old.c.Egress)
			}
		}
		for _, s := range old.c.Selectors() {
			oldSels = append(oldSels, s.Key)
		}
		delete(x.policies, key)
		delete(x.named, key)
		dropFrom(x.policiesByNS, old.c.Namespace, key)
	}
	if c != nil {
		pe := &policyEntry{c: c, named: c.NamedPortKeys(), spec: spec.DeepCopy(), members: map[string]bool{}}
		for _, s := range c.Selectors() {
			se := x.selectors[s.Key]
			if se == nil {
				se = x.addSelector(s)
			}
			se.users[key] = true
		}
		for k, p := range x.podsByNS[c.Namespace] {
			if pe.selects(p) {
				pe.members[k] = true
				p.ingress += b2i(c.Ingress)
				p.egress += b2i(c.Egress)
			}
		}
		x.policies[key] = pe
		if len(pe.named) > 0 {
			x.named[key] = pe
		}
		putIn(x.policiesByNS, c.Namespace, key, pe)
	}
	for _, sk := range oldSels {
		se := x.selectors[sk]
		if se == nil {
			continue
		}
		if pe := x.policies[key]; pe == nil || !slices.ContainsFunc(pe.c.Selectors(), func(s *Selector) bool { return s.Key == sk }) {
			delete(se.users, key)
		}
		if len(se.users) == 0 {
			x.dropSelector(se)
		}
	}
}

func (x *index) addSelector(s *Selector) *selEntry {
	se := &selEntry{Selector: s, asName: own.SelectorAddressSet(s.Key, "v4"),
		members: map[string]netip.Addr{}, ipCount: map[netip.Addr]int{}, users: map[string]bool{}}
	x.selectors[s.Key] = se
	delete(x.orphans, se.asName)
	scan := func(ns string) {
		for k, p := range x.podsByNS[ns] {
			if x.selMatches(se, p) {
				se.add(k, p.ip)
			}
		}
	}
	if s.NamespaceSelector == nil {
		putIn(x.selByNS, s.Namespace, s.Key, se)
		scan(s.Namespace)
		return se
	}
	x.nsSelectors[s.Key] = se
	for ns, n := range x.namespaces {
		if s.NamespaceSelector.Matches(n.labels) {
			scan(ns)
		}
	}
	return se
}

func (x *index) dropSelector(se *selEntry) {
	delete(x.selectors, se.Key)
	if se.NamespaceSelector == nil {
		dropFrom(x.selByNS, se.Namespace, se.Key)
	} else {
		delete(x.nsSelectors, se.Key)
	}
	x.orphans[se.asName] = true
}

// namedPorts resolves the named ports a policy's ACLs need.
func (x *index) namedPorts(pe *policyEntry) NamedPorts {
	if len(pe.named) == 0 {
		return nil
	}
	out := NamedPorts{}
	for _, k := range pe.named {
		res := map[int32][]netip.Addr{}
		visit := func(p *podInfo) {
			if p == nil || !p.ip.IsValid() {
				return
			}
			if n, ok := p.ports[portName{k.Name, k.Protocol}]; ok {
				res[n] = append(res[n], p.ip)
			}
		}
		switch r := pe.c.findRule(k.Dir, k.Rule); {
		case k.Dir == Ingress:
			for pk := range pe.members {
				visit(x.pods[pk])
			}
		case r.AnyPeer:
			for _, p := range x.pods {
				visit(p)
			}
		default:
			seen := map[string]bool{}
			for _, s := range r.Selectors {
				for pk := range x.selectors[s.Key].members {
					if !seen[pk] {
						seen[pk] = true
						visit(x.pods[pk])
					}
				}
			}
		}
		out[k] = res
	}
	return out
}

// isolatedPorts lists the ports of ns's pods isolated in dir.
func (x *index) isolatedPorts(ns string, dir Direction) []string {
	var out []string
	for _, p := range x.podsByNS[ns] {
		if p.isolated(dir) {
			out = append(out, p.lsp)
		}
	}
	slices.Sort(out)
	return out
}

// hasDirection tells whether any policy of ns isolates in dir.
func (x *index) hasDirection(ns string, dir Direction) bool {
	for _, pe := range x.policiesByNS[ns] {
		if (dir == Ingress && pe.c.Ingress) || (dir == Egress && pe.c.Egress) {
			return true
		}
	}
	return false
}
