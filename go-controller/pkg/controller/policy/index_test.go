package policy

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// world is the state a random sequence of changes leaves behind, from
// which a fresh index is built to compare with the incremental one.
type world struct {
	namespaces map[string]*nsEntry
	pods       map[string]*podInfo
	policies   map[string]*networkingv1.NetworkPolicy
}

// indexPolicies are the policies the random test picks from: selectors
// of every kind, both directions, named ports.
func indexPolicies() []*networkingv1.NetworkPolicy {
	out := variety()
	for _, ns := range []string{"team-a", "team-b", "team-c"} {
		out = append(out,
			np(ns, "web-from-team-x", networkingv1.NetworkPolicySpec{PodSelector: *sel("app", "web"),
				Ingress: []networkingv1.NetworkPolicyIngressRule{ingress(ports(port("", "http")), nsPeer(sel("team", "x"), sel("app", "client")))},
				Egress:  []networkingv1.NetworkPolicyEgressRule{egress(ports(port("", "sql")), nsPeer(sel("team", "y"), nil))}}),
			np(ns, "egress-only", networkingv1.NetworkPolicySpec{PodSelector: *sel("app", "client"),
				PolicyTypes: []networkingv1.PolicyType{"Egress"},
				Egress:      []networkingv1.NetworkPolicyEgressRule{egress(nil, podPeer(sel("app", "db")))}}))
	}
	return out
}

func randomPod(r *rand.Rand, ns, name string) *podInfo {
	p := &podInfo{key: ns + "/" + name, ns: ns, labels: labels.Set{}}
	if app := []string{"", "web", "client", "db"}[r.IntN(4)]; app != "" {
		p.labels["app"] = app
	}
	if r.IntN(4) > 0 {
		p.ip = netip.AddrFrom4([4]byte{10, 128, 0, byte(r.IntN(12))}) // collisions on purpose
	}
	if r.IntN(3) > 0 {
		p.lsp = fmt.Sprintf("lsp-%s-%d", name, r.IntN(2))
	}
	if r.IntN(2) == 0 {
		p.ports = map[portName]int32{{"http", corev1.ProtocolTCP}: int32(8080 + r.IntN(2)), {"sql", corev1.ProtocolTCP}: 5432}
	}
	return p
}

// snapshot is every membership the index holds, for comparisons.
type snapshot struct {
	sels     map[string]map[string]netip.Addr
	users    map[string]map[string]bool
	policies map[string]map[string]bool
	pgPorts  map[string]map[string]bool // policy → its members' ports
	isoPorts map[string]map[string]bool // "ns/direction" → isolated ports
	iso      map[string][2]int
	named    map[string]NamedPorts
}

func snap(x *index) snapshot {
	s := snapshot{sels: map[string]map[string]netip.Addr{}, users: map[string]map[string]bool{},
		policies: map[string]map[string]bool{}, iso: map[string][2]int{}, named: map[string]NamedPorts{},
		pgPorts: map[string]map[string]bool{}, isoPorts: map[string]map[string]bool{}}
	for k, se := range x.selectors {
		s.sels[k] = maps.Clone(se.members)
		s.users[k] = maps.Clone(se.users)
	}
	for k, pe := range x.policies {
		s.policies[k] = maps.Clone(pe.members)
		s.named[k] = x.namedPorts(pe)
		s.pgPorts[k] = map[string]bool{}
		for pk := range pe.members {
			if p := x.pods[pk]; p != nil && p.lsp != "" {
				s.pgPorts[k][p.lsp] = true
			}
		}
	}
	for ns := range x.podsByNS {
		for _, dir := range []Direction{Ingress, Egress} {
			set := map[string]bool{}
			for _, l := range x.isolatedPorts(ns, dir) {
				set[l] = true
			}
			s.isoPorts[ns+"/"+string(dir)] = set
		}
	}
	for k, p := range x.pods {
		s.iso[k] = [2]int{p.ingress, p.egress}
	}
	return s
}

// The incremental index ends where one built from scratch does, and every
// change it reports covers all memberships that changed.
func TestIndexIncrementalEqualsRebuild(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		r := rand.New(rand.NewPCG(seed, 0))
		x, w := newIndex(), &world{namespaces: map[string]*nsEntry{}, pods: map[string]*podInfo{}, policies: map[string]*networkingv1.NetworkPolicy{}}
		pols := indexPolicies()
		for step := 0; step < 400; step++ {
			before := snap(x)
			var ch *change
			switch op := r.IntN(10); {
			case op < 2:
				ns := []string{"team-a", "team-b", "team-c"}[r.IntN(3)]
				var e *nsEntry
				if r.IntN(5) > 0 {
					e = &nsEntry{labels: labels.Set{"team": []string{"x", "y", "z"}[r.IntN(3)], "kubernetes.io/metadata.name": ns}}
				}
				ch, _ = x.setNamespace(ns, e)
				setOrDelete(w.namespaces, ns, e)
			case op < 7:
				ns := []string{"team-a", "team-b", "team-c"}[r.IntN(3)]
				name := fmt.Sprintf("p%d", r.IntN(8))
				var p *podInfo
				if r.IntN(5) > 0 {
					p = randomPod(r, ns, name)
				}
				var cp *podInfo
				if p != nil {
					c := *p
					cp = &c
				}
				ch = x.setPod(ns+"/"+name, ns, p)
				setOrDelete(w.pods, ns+"/"+name, cp)
			default:
				p := pols[r.IntN(len(pols))]
				key := p.Namespace + "/" + p.Name
				if r.IntN(3) == 0 {
					x.setPolicy(key, nil, nil)
					delete(w.policies, key)
				} else {
					x.setPolicy(key, Compile(p), &p.Spec)
					w.policies[key] = p
				}
			}
			if ch != nil {
				checkReported(t, seed, step, before, snap(x), ch)
			}
		}
		fresh := rebuildIndex(w)
		if got, want := snap(x), snap(fresh); !reflect.DeepEqual(normalize(got), normalize(want)) {
			t.Fatalf("seed %d: incremental index differs from a rebuild:\n got %+v\nwant %+v", seed, got, want)
		}
	}
}

func setOrDelete[V any](m map[string]*V, k string, v *V) {
	if v == nil {
		delete(m, k)
	} else {
		m[k] = v
	}
}

func rebuildIndex(w *world) *index {
	x := newIndex()
	for name, e := range w.namespaces {
		x.setNamespace(name, e)
	}
	for k, p := range w.pods {
		c := *p
		x.setPod(k, p.ns, &c)
	}
	for k, p := range w.policies {
		x.setPolicy(k, Compile(p), &p.Spec)
	}
	return x
}

// normalize sorts the IP lists of named-port tables, whose order follows
// map iteration.
func normalize(s snapshot) snapshot {
	for _, np := range s.named {
		for _, res := range np {
			for n, ips := range res {
				res[n] = addrs(addrStrings(sortAddrs(ips))...)
			}
		}
	}
	return s
}

func sortAddrs(ips []netip.Addr) []netip.Addr {
	out := slices.Clone(ips)
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// checkReported: every selector, port group or isolation state that
// changed must be in the change, or NB would never hear of it.
func checkReported(t *testing.T, seed uint64, step int, before, after snapshot, ch *change) {
	t.Helper()
	for k, m := range after.sels {
		if old, ok := before.sels[k]; ok && !maps.Equal(old, m) {
			if _, rep := ch.sels[k]; !rep {
				t.Fatalf("seed %d step %d: selector %s changed %v → %v, not reported", seed, step, k, old, m)
			}
		}
	}
	for k, m := range after.pgPorts {
		if old, ok := before.pgPorts[k]; ok && !maps.Equal(old, m) && len(ch.pgs[k]) == 0 {
			t.Fatalf("seed %d step %d: ports of policy %s %v → %v, not reported", seed, step, k, old, m)
		}
	}
	keys := maps.Clone(before.isoPorts)
	maps.Copy(keys, after.isoPorts)
	for k := range keys {
		ns, dir, _ := strings.Cut(k, "/")
		old, m := before.isoPorts[k], after.isoPorts[k]
		if !maps.Equal(old, m) && (ch.ns != ns || len(ch.iso[Direction(dir)]) == 0) {
			t.Fatalf("seed %d step %d: isolated ports %s %v → %v, not reported", seed, step, k, old, m)
		}
	}
	for k, np := range after.named {
		if old, ok := before.named[k]; ok && !reflect.DeepEqual(normalize(snapshot{named: map[string]NamedPorts{k: old}}).named[k],
			normalize(snapshot{named: map[string]NamedPorts{k: np}}).named[k]) && !ch.resync[k] {
			t.Fatalf("seed %d step %d: named ports of %s changed, no resync", seed, step, k)
		}
	}
}

func TestIndexCountsIsolation(t *testing.T) {
	x := newIndex()
	x.setNamespace("a", &nsEntry{})
	x.setPod("a/w", "a", &podInfo{key: "a/w", ns: "a", labels: labels.Set{"app": "web"}, lsp: "l1", ip: netip.MustParseAddr("10.0.0.1")})
	in := np("a", "in", networkingv1.NetworkPolicySpec{PodSelector: *sel("app", "web")})
	both := np("a", "both", networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{}, PolicyTypes: []networkingv1.PolicyType{"Ingress", "Egress"}})
	x.setPolicy("a/in", Compile(in), &in.Spec)
	x.setPolicy("a/both", Compile(both), &both.Spec)
	if p := x.pods["a/w"]; p.ingress != 2 || p.egress != 1 {
		t.Fatalf("counts %d %d, want 2 1", p.ingress, p.egress)
	}
	if got := x.isolatedPorts("a", Egress); !reflect.DeepEqual(got, []string{"l1"}) {
		t.Fatalf("egress isolated %v", got)
	}
	// Relabelled: only "both" still selects it; its change says so.
	ch := x.setPod("a/w", "a", &podInfo{key: "a/w", ns: "a", lsp: "l1", ip: netip.MustParseAddr("10.0.0.1")})
	if p := x.pods["a/w"]; p.ingress != 1 || p.egress != 1 || len(ch.iso) != 0 || !reflect.DeepEqual(ch.pgs, map[string][]string{"a/in": {"l1"}}) {
		t.Fatalf("counts %d %d, change %+v", p.ingress, p.egress, ch)
	}
	x.setPolicy("a/both", nil, nil)
	if x.hasDirection("a", Egress) || len(x.isolatedPorts("a", Ingress)) != 0 || !x.hasDirection("a", Ingress) {
		t.Fatal("isolation after delete")
	}
}
