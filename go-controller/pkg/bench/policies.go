package bench

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ovn-kubernetes/libovsdb/model"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/kovn-io/kovn/go-controller/pkg/controller/policy"
	"github.com/kovn-io/kovn/go-controller/pkg/lab"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// PoliciesPerNamespace is W3's np-0…np-19 in each namespace.
const PoliciesPerNamespace = 20

// PolicyShapes describe W3's four rule shapes, by m % 4.
var PolicyShapes = [4]string{
	"from podSelector role=r1, TCP 8080",
	"from namespaceSelector team=t1, TCP 80 and 443",
	"from namespaceSelector team=t2 AND podSelector role=r2, TCP 5432",
	"from podSelector role=r3, and namespaceSelector team=t0 AND podSelector role=r0; TCP 80 and UDP 53",
}

// PolicyRef names one policy of W3.
type PolicyRef struct {
	Namespace, Name string
	M               int
}

// Shape is the policy's rule shape, 0…3.
func (r PolicyRef) Shape() int { return r.M % 4 }

// Key is "ns/name", the policy rows' kovn.io/owner.
func (r PolicyRef) Key() string { return r.Namespace + "/" + r.Name }

// PortGroup is the policy's port group.
func (r PolicyRef) PortGroup() string { return own.PolicyPortGroup(r.Namespace, r.Name) }

// PolicyList is W3's policies, namespace by namespace: np-<m>, m < perNS,
// in each of ns0…ns9.
func PolicyList(perNS int) []PolicyRef {
	out := make([]PolicyRef, 0, perNS*Namespaces)
	for j := 0; j < Namespaces; j++ {
		for m := 0; m < perNS; m++ {
			out = append(out, PolicyRef{Namespace: NamespaceName(j), Name: fmt.Sprintf("np-%d", m), M: m})
		}
	}
	return out
}

// PolicyObj is W3's policy: podSelector app=s<m>, Ingress, one rule of
// shape m % 4 (BENCH-WORKLOADS).
func PolicyObj(r PolicyRef) *networkingv1.NetworkPolicy {
	sel := func(k, v string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{k: v}}
	}
	port := func(proto corev1.Protocol, p int32) networkingv1.NetworkPolicyPort {
		v := intstr.FromInt32(p)
		return networkingv1.NetworkPolicyPort{Protocol: &proto, Port: &v}
	}
	var rule networkingv1.NetworkPolicyIngressRule
	switch r.Shape() {
	case 0:
		rule.From = []networkingv1.NetworkPolicyPeer{{PodSelector: sel("role", "r1")}}
		rule.Ports = []networkingv1.NetworkPolicyPort{port(corev1.ProtocolTCP, 8080)}
	case 1:
		rule.From = []networkingv1.NetworkPolicyPeer{{NamespaceSelector: sel("team", "t1")}}
		rule.Ports = []networkingv1.NetworkPolicyPort{port(corev1.ProtocolTCP, 80), port(corev1.ProtocolTCP, 443)}
	case 2:
		rule.From = []networkingv1.NetworkPolicyPeer{{NamespaceSelector: sel("team", "t2"), PodSelector: sel("role", "r2")}}
		rule.Ports = []networkingv1.NetworkPolicyPort{port(corev1.ProtocolTCP, 5432)}
	case 3:
		rule.From = []networkingv1.NetworkPolicyPeer{
			{PodSelector: sel("role", "r3")},
			{NamespaceSelector: sel("team", "t0"), PodSelector: sel("role", "r0")},
		}
		rule.Ports = []networkingv1.NetworkPolicyPort{port(corev1.ProtocolTCP, 80), port(corev1.ProtocolUDP, 53)}
	}
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: r.Namespace, Name: r.Name, Labels: map[string]string{BenchLabel: "true"}},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: *sel("app", fmt.Sprintf("s%d", r.M)),
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress:     []networkingv1.NetworkPolicyIngressRule{rule},
		},
	}
}

// GroupWant is what a port group holds once its policies are programmed.
type GroupWant struct {
	ACLs  int `json:"acls"`
	Ports int `json:"ports"`
}

// PolicyExpectation is what NB holds once a set of policies is
// programmed, by the rules of docs/networkpolicy.md.
type PolicyExpectation struct {
	Groups      map[string]GroupWant // policy and isolation port groups
	AddressSets map[string]int       // selector address sets → members
	// SetsOfShape are the selector sets each shape's policies use.
	SetsOfShape map[int]map[string]bool
}

// ExpectedACLs is how many ACLs a policy's port group gets
// (docs/networkpolicy.md): per rule, one for all its selector peers (or
// for no peer clause), one per ipBlock; a rule whose ports were all
// invalid allows nothing and gets none.
func ExpectedACLs(c *policy.Compiled) int {
	n := 0
	for _, r := range c.Rules {
		if !r.AnyPort && len(r.Ports) == 0 {
			continue
		}
		if r.AnyPeer || len(r.Selectors) > 0 {
			n++
		}
		n += len(r.IPBlocks)
	}
	return n
}

// isolationACLs are the default-deny ACLs of a namespace's isolation
// group: ingress has the drop and the node-management allow, egress the drop.
var isolationACLs = map[policy.Direction]int{policy.Ingress: 2, policy.Egress: 1}

// ExpectPolicies derives, from the policies and the kept pods (pods
// without an address have no port and are in no set), every port group
// with its ACL and port counts and every selector address set with its
// member count.
func ExpectPolicies(refs []PolicyRef, kept *Kept) PolicyExpectation {
	e := PolicyExpectation{Groups: map[string]GroupWant{}, AddressSets: map[string]int{}, SetsOfShape: map[int]map[string]bool{}}
	pods := kept.All()
	isolated := map[string]map[string]bool{} // isolation group → pods
	for _, r := range refs {
		c := policy.Compile(PolicyObj(r))
		selected := 0
		for _, p := range pods {
			if p.IP == "" || p.Namespace != r.Namespace || c.PodSelector == nil || !c.PodSelector.Matches(p.Labels) {
				continue
			}
			selected++
			for dir, on := range map[policy.Direction]bool{policy.Ingress: c.Ingress, policy.Egress: c.Egress} {
				if on {
					g := own.IsolationPortGroup(r.Namespace, string(dir))
					if isolated[g] == nil {
						isolated[g] = map[string]bool{}
						e.Groups[g] = GroupWant{ACLs: isolationACLs[dir]}
					}
					isolated[g][p.Name] = true
				}
			}
		}
		e.Groups[r.PortGroup()] = GroupWant{ACLs: ExpectedACLs(c), Ports: selected}
		if e.SetsOfShape[r.Shape()] == nil {
			e.SetsOfShape[r.Shape()] = map[string]bool{}
		}
		for _, s := range c.Selectors() {
			name := own.SelectorAddressSet(s.Key, "v4")
			e.SetsOfShape[r.Shape()][name] = true
			if _, done := e.AddressSets[name]; done {
				continue
			}
			members := 0
			for _, p := range pods {
				if p.IP != "" && s.Matches(p.Namespace, p.Labels, kept.NamespaceLabels[p.Namespace], true) {
					members++
				}
			}
			e.AddressSets[name] = members
		}
	}
	for g, members := range isolated {
		w := e.Groups[g]
		w.Ports = len(members)
		e.Groups[g] = w
	}
	return e
}

func groupIs(want GroupWant) func(model.Model) bool {
	return func(m model.Model) bool {
		pg, ok := m.(*nbdb.PortGroup)
		return ok && len(pg.ACLs) == want.ACLs && len(pg.Ports) == want.Ports
	}
}

func setHas(members int) func(model.Model) bool {
	return func(m model.Model) bool {
		as, ok := m.(*nbdb.AddressSet)
		return ok && len(as.Addresses) == members
	}
}

// RowCounts counts NB rows.
type RowCounts struct {
	ACLs        int `json:"acls"`
	PortGroups  int `json:"portGroups"`
	AddressSets int `json:"addressSets"`
}

func (c RowCounts) String() string {
	return fmt.Sprintf("%d / %d / %d", c.ACLs, c.PortGroups, c.AddressSets)
}

// PoliciesResult holds the figures of a policies run. Times count from the
// first NetworkPolicy create sent; the policies are in NB when every port
// group (each policy's and each namespace's isolation group) has its ACLs
// and its ports and every selector address set its members, all as
// ExpectPolicies derives them.
type PoliciesResult struct {
	Policies int     `json:"policies"`
	Writers  int     `json:"writers"`
	Leader   Replica `json:"leader"`

	APICreateSeconds       float64 `json:"apiCreateSeconds"`
	APICreatesPerSecond    float64 `json:"apiCreatesPerSecond"`
	AllPoliciesSeconds     float64 `json:"allPoliciesSeconds"`     // first create sent → the last row as expected: W3's figure
	AfterLastCreateSeconds float64 `json:"afterLastCreateSeconds"` // last create answered → the same
	APICreateLatency       Dist    `json:"apiCreateLatency"`
	LatencyFromCreate      Dist    `json:"latencyFromCreate"` // per policy: create sent → its port group with ACL and ports
	LatencyFromAnswer      Dist    `json:"latencyFromAnswer"` // per policy: create answered → the same
	LateDetected           int     `json:"lateDetected"`
	BurstSamples                   // every policy's latencies of the three above

	NBTransactionsPerPolicy float64 `json:"nbTransactionsPerPolicy"`
	Costs                           // first create → all rows as expected

	// Expected: what ExpectPolicies derived (the run waited for it).
	// Tables: whole NB tables (ovn-kubernetes' figures count those) and
	// ByOwnerKind: the same by external_ids kovn.io/owner-kind.
	// PerShape: the rows of the run's policies of each shape (ACLs and
	// port groups they own, selector sets they use); "isolation" the
	// namespaces' isolation groups and their ACLs.
	Expected    RowCounts                 `json:"expected"`
	Tables      RowCounts                 `json:"tables"`
	ByOwnerKind map[string]map[string]int `json:"byOwnerKind"`
	PerShape    map[string]RowCounts      `json:"perShape"`
}

// PoliciesOptions configure a policies run.
type PoliciesOptions struct {
	Writers int
	Timeout time.Duration
	Perf    PerfOptions
}

// RunPolicies runs W3 on a kept pods run (and, as BENCH-WORKLOADS has
// it, on W2's services). What it creates is left in place.
func RunPolicies(ctx context.Context, l *lab.Lab, cs kubernetes.Interface, opts PoliciesOptions) (*PoliciesResult, error) {
	if opts.Writers < 1 {
		return nil, fmt.Errorf("--writers must be positive, got %d", opts.Writers)
	}
	sc := NewScraper()
	leader, err := readyLeader(ctx, l, cs, sc)
	if err != nil {
		return nil, err
	}
	kept, err := ReadKept(ctx, cs)
	if err != nil {
		return nil, err
	}
	for j := 0; j < Namespaces; j++ {
		ns := NamespaceName(j)
		if got, want := kept.NamespaceLabels[ns]["team"], NamespaceObj(j).Labels["team"]; got != want {
			return nil, fmt.Errorf("namespace %s has team=%q, W3 needs team=%s", ns, got, want)
		}
	}
	nps, err := cs.NetworkingV1().NetworkPolicies("").List(ctx, benchSelector())
	if err := noneLeft("network policies", len(nps.Items), err); err != nil {
		return nil, err
	}
	refs := PolicyList(PoliciesPerNamespace)
	exp := ExpectPolicies(refs, kept)
	res := &PoliciesResult{Policies: len(refs), Writers: opts.Writers, Leader: leader}
	for _, g := range exp.Groups {
		res.Expected.ACLs += g.ACLs
	}
	res.Expected.PortGroups, res.Expected.AddressSets = len(exp.Groups), len(exp.AddressSets)
	if svcs, err := cs.CoreV1().Services("").List(ctx, benchSelector()); err == nil && len(svcs.Items) == 0 {
		res.Warnings = append(res.Warnings, "no services of kovn-bench services: this is W3 without W2 under it")
	}
	w, err := NewWatcher(ctx, "unix:"+l.NBSocket(), PolicyTables()...)
	if err != nil {
		return nil, err
	}
	defer w.Close()

	ph, err := beginPhase(ctx, l, cs, sc, leader, opts.Perf)
	if err != nil {
		return res, err
	}
	defer ph.close()
	groups := map[string]func(model.Model) bool{}
	for name, want := range exp.Groups {
		groups[name] = groupIs(want)
	}
	sets := map[string]func(model.Model) bool{}
	for name, n := range exp.AddressSets {
		sets[name] = setHas(n)
	}
	pgWait, asWait := w.ExpectRows(nbdb.PortGroupTable, groups), w.ExpectRows(nbdb.AddressSetTable, sets)
	if at, _ := w.Times(pgWait); len(at) > 0 {
		return res, fmt.Errorf("%d of the policies' port groups were in NB before the policies were created", len(at))
	}
	if at, _ := w.Times(asWait); len(at) > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%d of the selector address sets were in NB before the run (shared with other policies)", len(at)))
	}
	sent, answered := make([]time.Time, len(refs)), make([]time.Time, len(refs))
	err = parallel(len(refs), opts.Writers, func(i int) error {
		sent[i] = time.Now()
		_, err := cs.NetworkingV1().NetworkPolicies(refs[i].Namespace).Create(ctx, PolicyObj(refs[i]), metav1.CreateOptions{})
		answered[i] = time.Now()
		if err != nil {
			return fmt.Errorf("create policy %s: %w", refs[i].Key(), err)
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	for _, wt := range []*Wait{pgWait, asWait} {
		if err := w.Until(ctx, wt, opts.Timeout); err != nil {
			return res, err
		}
	}
	if err := ph.end(ctx, &res.Costs); err != nil {
		return res, err
	}
	pgAt, late1 := w.Times(pgWait)
	asAt, late2 := w.Times(asWait)
	names := make([]string, len(refs))
	for i, r := range refs {
		names[i] = r.PortGroup()
	}
	b := measureBurst(sent, answered, timesOf(names, pgAt))
	// All of it: the isolation groups and the sets count too.
	b.lastDone = latest(b.lastDone, Last(pgAt), Last(asAt))
	res.APICreateSeconds, res.APICreatesPerSecond = b.apiSeconds(), b.apiRate()
	res.AllPoliciesSeconds, res.AfterLastCreateSeconds = b.allSeconds(), b.afterLast()
	res.APICreateLatency, res.LatencyFromCreate, res.LatencyFromAnswer = Summarise(b.api), Summarise(b.fromCreate), Summarise(b.fromAnswer)
	res.BurstSamples = b.samples()
	res.LateDetected = late1 + late2
	res.NBTransactionsPerPolicy = ratio(res.NBTransactions, float64(len(refs)))
	ph.settled(ctx, &res.Costs)
	res.Tables, res.ByOwnerKind = countRows(w)
	res.PerShape = shapeRows(w, refs, exp)
	return res, nil
}

func latest(ts ...time.Time) time.Time {
	var out time.Time
	for _, t := range ts {
		if t.After(out) {
			out = t
		}
	}
	return out
}

// countRows counts the ACL, Port_Group and Address_Set tables, whole and
// by owner kind ("" for rows without one).
func countRows(w *Watcher) (RowCounts, map[string]map[string]int) {
	by := map[string]map[string]int{}
	var total RowCounts
	for table, n := range map[string]*int{nbdb.ACLTable: &total.ACLs, nbdb.PortGroupTable: &total.PortGroups, nbdb.AddressSetTable: &total.AddressSets} {
		by[table] = map[string]int{}
		for _, m := range w.Rows(table) {
			*n++
			by[table][externalIDs(m)[own.KindKey]]++
		}
	}
	return total, by
}

// externalIDs of a row of the tables whose owners the scenarios count.
func externalIDs(m model.Model) map[string]string {
	switch r := m.(type) {
	case *nbdb.LoadBalancer:
		return r.ExternalIDs
	case *nbdb.ACL:
		return r.ExternalIDs
	case *nbdb.PortGroup:
		return r.ExternalIDs
	case *nbdb.AddressSet:
		return r.ExternalIDs
	}
	return nil
}

// shapeRows counts, per shape, the ACLs and port groups the run's policies
// own and the selector sets they use that are in NB; "isolation" has the
// run's namespaces' isolation groups and their ACLs.
func shapeRows(w *Watcher, refs []PolicyRef, exp PolicyExpectation) map[string]RowCounts {
	shapeOf := map[string]int{}
	namespaces := map[string]bool{}
	for _, r := range refs {
		shapeOf[r.Key()] = r.Shape()
		namespaces[r.Namespace] = true
	}
	out := map[string]RowCounts{}
	key := func(shape int) string { return "shape" + strconv.Itoa(shape) }
	count := func(ids map[string]string, f func(*RowCounts)) {
		switch ids[own.KindKey] {
		case own.KindNetworkPolicy:
			if s, ok := shapeOf[ids[own.OwnerKey]]; ok {
				c := out[key(s)]
				f(&c)
				out[key(s)] = c
			}
		case own.KindPolicyIsolation:
			if namespaces[ids[own.OwnerKey]] {
				c := out["isolation"]
				f(&c)
				out["isolation"] = c
			}
		}
	}
	for _, m := range w.Rows(nbdb.ACLTable) {
		count(externalIDs(m), func(c *RowCounts) { c.ACLs++ })
	}
	for _, m := range w.Rows(nbdb.PortGroupTable) {
		count(externalIDs(m), func(c *RowCounts) { c.PortGroups++ })
	}
	present := w.Names(nbdb.AddressSetTable)
	for s, sets := range exp.SetsOfShape {
		c := out[key(s)]
		for name := range sets {
			if present[name] {
				c.AddressSets++
			}
		}
		out[key(s)] = c
	}
	return out
}

func (r *PoliciesResult) rows() []row {
	rows := []row{
		{"policies", fmt.Sprintf("W3: %d NetworkPolicies (%d per namespace, 4 shapes), %d writers", r.Policies, PoliciesPerNamespace, r.Writers)},
		{"leader", fmt.Sprintf("%s (pid %d)", r.Leader.Component, r.Leader.Pid)},
	}
	if r.LatencyFromCreate.N > 0 {
		rows = append(rows, []row{
			{"API create phase", fmt.Sprintf("%s (%.0f creates/s)", fs(r.APICreateSeconds), r.APICreatesPerSecond)},
			{"all policies in NB (from first create)", fs(r.AllPoliciesSeconds)},
			{"  after the last create answered", fs(r.AfterLastCreateSeconds)},
			{"latency create → port group complete", r.LatencyFromCreate.String()},
			{"latency answered → port group complete", r.LatencyFromAnswer.String()},
		}...)
		rows = append(rows, r.Costs.rows("policy", r.Policies, "networkpolicies")...)
		rows = append(rows, row{"ACL / Port_Group / Address_Set", fmt.Sprintf("tables %s; expected of the run %s", r.Tables, r.Expected)})
		var keys []string
		for k := range r.PerShape {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v := r.PerShape[k].String()
			if s, err := strconv.Atoi(strings.TrimPrefix(k, "shape")); err == nil && s < len(PolicyShapes) {
				v += " (" + PolicyShapes[s] + ")"
			}
			rows = append(rows, row{"  " + k, v})
		}
		var kinds []string
		for t, by := range r.ByOwnerKind {
			for k, n := range by {
				kinds = append(kinds, fmt.Sprintf("%s %s=%d", t, orNone(k), n))
			}
		}
		sort.Strings(kinds)
		rows = append(rows, row{"  by owner kind", strings.Join(kinds, ", ")})
	}
	if r.LateDetected > 0 {
		rows = append(rows, row{"late-detected rows", fmt.Sprint(r.LateDetected)})
	}
	return append(rows, warningRows(r.Warnings)...)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
