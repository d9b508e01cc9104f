package bench

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kovn-io/kovn/go-controller/pkg/controller/policy"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
	"github.com/kovn-io/kovn/go-controller/pkg/testenv"
)

// keptW1 is what a kept W1 run leaves, every pod with an address.
func keptW1() *Kept {
	k := &Kept{NamespaceLabels: map[string]labels.Set{}, Pods: map[string][]KeptPod{}}
	for j := 0; j < Namespaces; j++ {
		k.NamespaceLabels[NamespaceName(j)] = labels.Set(NamespaceObj(j).Labels)
	}
	for i, r := range W1().PodList() {
		p := PodObj(r, "img")
		k.Pods[r.Namespace] = append(k.Pods[r.Namespace], KeptPod{Namespace: r.Namespace, Name: r.Name, K: r.K,
			Labels: labels.Set(p.Labels), IP: fmt.Sprintf("10.128.%d.%d", i/250, 2+i%250)})
	}
	return k
}

func TestW2Shape(t *testing.T) {
	kept := keptW1()
	refs, err := W2().ServiceList(kept.PodsIn)
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 200 {
		t.Fatalf("W2 has %d services", len(refs))
	}
	perNS := map[string]int{}
	for _, r := range refs {
		perNS[r.Namespace]++
		// W2: the endpoints of svc-s<m> are the pods with app=s<m>.
		for _, k := range r.Pods {
			if app := kept.Pods[r.Namespace][k].Labels["app"]; app != fmt.Sprintf("s%d", r.M) {
				t.Fatalf("%s/%s has pod %d with app=%s", r.Namespace, r.Name, k, app)
			}
		}
	}
	if len(perNS) != 10 || perNS["ns9"] != 20 {
		t.Errorf("per namespace %v", perNS)
	}
	r := refs[67] // ns3, svc-s7
	if r.Namespace != "ns3" || r.Name != "svc-s7" || !slices.Equal(r.Pods, []int{35, 36, 37, 38, 39}) || r.LBName() != "Service_ns3/svc-s7_TCP" {
		t.Errorf("service 67: %+v %s", r, r.LBName())
	}
	// The 500 × 5 figure: 50 services per namespace, pods reused modulo 100.
	big, err := ServiceShape{Services: 500, Endpoints: 5, Writers: 1}.ServiceList(kept.PodsIn)
	if err != nil || len(big) != 500 || big[49].Name != "svc-s49" || !slices.Equal(big[20].Pods, []int{0, 1, 2, 3, 4}) {
		t.Errorf("500 × 5: %d, %+v, %v", len(big), big[20], err)
	}
	odd, _ := ServiceShape{Services: 13, Endpoints: 3, Writers: 1}.ServiceList(kept.PodsIn)
	if len(odd) != 13 || odd[1].Name != "svc-s1" || odd[1].Namespace != "ns0" || odd[2].Namespace != "ns1" {
		t.Errorf("13 services: %+v", odd)
	}
	if _, err := (ServiceShape{Services: 10, Endpoints: 101, Writers: 1}).ServiceList(kept.PodsIn); err == nil {
		t.Error("101 endpoints of 100 pods accepted")
	}
}

func TestServiceAndSlice(t *testing.T) {
	r := ServiceRef{Namespace: "ns1", Name: "svc-s3", M: 3, Pods: []int{15, 16}}
	svc := ServiceObj(r, false)
	if svc.Spec.Selector != nil || svc.Spec.Ports[0].Port != 80 || svc.Spec.Ports[0].TargetPort.IntValue() != 8080 || svc.Labels[BenchLabel] != "true" {
		t.Errorf("service %+v", svc)
	}
	if sel := ServiceObj(r, true).Spec.Selector; sel["app"] != "s3" {
		t.Errorf("selector %v", sel)
	}
	es := SliceObj(r, []string{"10.128.0.9", "10.128.0.10"})
	if es.Labels[discoveryv1.LabelServiceName] != "svc-s3" || es.Labels[discoveryv1.LabelManagedBy] != SliceManager ||
		es.Namespace != "ns1" || es.AddressType != discoveryv1.AddressTypeIPv4 {
		t.Errorf("slice meta %+v", es.ObjectMeta)
	}
	if p := es.Ports[0]; *p.Port != 8080 || *p.Name != "" || *p.Protocol != "TCP" {
		t.Errorf("slice port %+v", p)
	}
	if len(es.Endpoints) != 2 || es.Endpoints[1].Addresses[0] != "10.128.0.10" || !*es.Endpoints[1].Conditions.Ready {
		t.Errorf("endpoints %+v", es.Endpoints)
	}
	want := BackendsValue([]string{"10.128.0.9", "10.128.0.10"})
	if want != "10.128.0.10:8080,10.128.0.9:8080" {
		t.Errorf("value %q", want)
	}
	ok := hasBackends(want)
	lb := &nbdb.LoadBalancer{Vips: map[string]string{"10.96.0.5:80": "10.128.0.9:8080,10.128.0.10:8080"}}
	if !ok(lb) {
		t.Error("same backends in another order refused")
	}
	lb.Vips["10.96.0.5:80"] = "10.128.0.9:8080"
	if ok(lb) || ok(&nbdb.PortGroup{}) {
		t.Error("fewer backends accepted")
	}
}

func TestUpdatePlan(t *testing.T) {
	kept := keptW1()
	refs, _ := W2().ServiceList(kept.PodsIn)
	plan, err := UpdatePlan(refs, 100, func(ns string) int { return len(kept.Pods[ns]) })
	if err != nil || len(plan) != 100 {
		t.Fatalf("%d updates, %v", len(plan), err)
	}
	seen := map[int]bool{}
	for _, u := range plan {
		r := refs[u.Service]
		if seen[u.Service] || slices.Contains(r.Pods, u.NewPod) || u.NewPod >= 100 {
			t.Errorf("update %+v of %+v", u, r)
		}
		seen[u.Service] = true
	}
	if plan[1].Service != 2 || plan[1].NewPod != 15 {
		t.Errorf("second update %+v", plan[1])
	}
	if p, _ := UpdatePlan(refs[:3], 10, func(string) int { return 100 }); len(p) != 3 {
		t.Errorf("more updates than services: %v", p)
	}
	// The last service's next pod wraps around past its own endpoints.
	wrap := []ServiceRef{{Namespace: "ns0", Name: "svc-s1", Pods: []int{3, 4, 0}}}
	if p, err := UpdatePlan(wrap, 1, func(string) int { return 5 }); err != nil || p[0].NewPod != 1 {
		t.Errorf("wrap: %v %v", p, err)
	}
	if _, err := UpdatePlan(wrap, 1, func(string) int { return 3 }); err == nil {
		t.Error("no free pod accepted")
	}
}

func TestUpdateLatencies(t *testing.T) {
	t0 := time.Now()
	var sent, answered, changed []time.Time
	for i := 0; i < 100; i++ {
		s := t0.Add(time.Duration(i) * time.Second)
		sent = append(sent, s)
		answered = append(answered, s.Add(10*time.Millisecond))
		changed = append(changed, s.Add(10*time.Millisecond+time.Duration(i+1)*time.Millisecond))
	}
	changed[0] = answered[0].Add(-time.Millisecond) // the watch beat the reply
	api, fromAnswer, fromSent := updateLatencies(sent, answered, changed)
	if api.P50Ms != 10 || api.N != 100 {
		t.Errorf("api %+v", api)
	}
	if fromAnswer.P50Ms != 50 || fromAnswer.P99Ms != 99 || fromAnswer.MaxMs != 100 {
		t.Errorf("from answer %+v", fromAnswer)
	}
	if fromSent.MaxMs != 110 || fromSent.P50Ms != 60 {
		t.Errorf("from sent %+v", fromSent)
	}
}

func TestW3Shape(t *testing.T) {
	refs := PolicyList(PoliciesPerNamespace)
	if len(refs) != 200 || refs[45].Namespace != "ns2" || refs[45].Name != "np-5" || refs[45].Shape() != 1 {
		t.Fatalf("%d policies, 45: %+v", len(refs), refs[45])
	}
	if g := refs[45].PortGroup(); g != "kovn_np.ns2.np_5" {
		t.Errorf("port group %s", g)
	}
	for m := 0; m < 4; m++ {
		np := PolicyObj(PolicyRef{Namespace: "ns0", Name: "np", M: m + 4})
		if np.Spec.PodSelector.MatchLabels["app"] != fmt.Sprintf("s%d", m+4) || len(np.Spec.Ingress) != 1 || np.Spec.PolicyTypes[0] != "Ingress" {
			t.Errorf("shape %d: %+v", m, np.Spec)
		}
		c := policy.Compile(np)
		if len(c.Problems) > 0 || ExpectedACLs(c) != 1 {
			t.Errorf("shape %d: %v, %d ACLs", m, c.Problems, ExpectedACLs(c))
		}
		peers, ports := len(np.Spec.Ingress[0].From), len(np.Spec.Ingress[0].Ports)
		if want := [4][2]int{{1, 1}, {1, 2}, {1, 1}, {2, 2}}[m]; peers != want[0] || ports != want[1] {
			t.Errorf("shape %d: %d peers, %d ports", m, peers, ports)
		}
	}
	three := PolicyObj(PolicyRef{Namespace: "ns0", Name: "np-3", M: 3}).Spec.Ingress[0]
	if three.From[1].NamespaceSelector.MatchLabels["team"] != "t0" || three.From[1].PodSelector.MatchLabels["role"] != "r0" || *three.Ports[1].Protocol != "UDP" {
		t.Errorf("shape 3: %+v", three)
	}
}

func TestExpectPolicies(t *testing.T) {
	refs := PolicyList(PoliciesPerNamespace)
	e := ExpectPolicies(refs, keptW1())
	if len(e.Groups) != 210 || len(e.AddressSets) != 23 {
		t.Fatalf("%d groups, %d sets", len(e.Groups), len(e.AddressSets))
	}
	acls := 0
	for _, g := range e.Groups {
		acls += g.ACLs
	}
	if acls != 220 {
		t.Errorf("%d ACLs", acls)
	}
	if g := e.Groups["kovn_np.ns4.np_7"]; g != (GroupWant{ACLs: 1, Ports: 5}) {
		t.Errorf("np-7 %+v", g)
	}
	if g := e.Groups[own.IsolationPortGroup("ns4", "ingress")]; g != (GroupWant{ACLs: 2, Ports: 100}) {
		t.Errorf("isolation %+v", g)
	}
	members := map[string]int{
		"namespace:ns3 pods:role=r1":      25,  // shape 0
		"namespaces:team=t1 pods:<all>":   300, // shape 1: ns1, ns4, ns7
		"namespaces:team=t2 pods:role=r2": 75,  // shape 2: ns2, ns5, ns8
		"namespace:ns3 pods:role=r3":      25,  // shape 3
		"namespaces:team=t0 pods:role=r0": 100, // shape 3: ns0, ns3, ns6, ns9
	}
	for key, n := range members {
		if got, ok := e.AddressSets[own.SelectorAddressSet(key, "v4")]; !ok || got != n {
			t.Errorf("%s: %d members (%v), want %d", key, got, ok, n)
		}
	}
	if len(e.SetsOfShape[0]) != 10 || len(e.SetsOfShape[1]) != 1 || len(e.SetsOfShape[2]) != 1 || len(e.SetsOfShape[3]) != 11 {
		t.Errorf("sets per shape %v", e.SetsOfShape)
	}
	// A pod without an address has no port and is in no set.
	k := keptW1()
	k.Pods["ns1"][0].IP = ""
	e = ExpectPolicies(refs, k)
	if e.Groups["kovn_np.ns1.np_0"].Ports != 4 || e.Groups[own.IsolationPortGroup("ns1", "ingress")].Ports != 99 ||
		e.AddressSets[own.SelectorAddressSet("namespaces:team=t1 pods:<all>", "v4")] != 299 {
		t.Errorf("pod without address counted")
	}
}

func TestPodIndex(t *testing.T) {
	if k, ok := podIndex("pod-3-42", 3); !ok || k != 42 {
		t.Errorf("%d %v", k, ok)
	}
	for _, bad := range []string{"pod-4-42", "pod-3-x", "web", "pod-3--1"} {
		if _, ok := podIndex(bad, 3); ok {
			t.Errorf("%s accepted", bad)
		}
	}
}

// TestWatcherPredicates runs the Watcher against an in-memory NB: a row
// waited on with a predicate is done when an update makes it true, and a
// deleted row ends a gone wait.
func TestWatcherPredicates(t *testing.T) {
	db := testenv.StartInMemoryNB(t)
	ctx := context.Background()
	w, err := NewWatcher(ctx, db.Addr, ServiceTables()...)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	transact := func(ops []ovsdb.Operation, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		res, err := db.Client.Transact(ctx, ops...)
		if err != nil || len(res) == 0 || res[0].Error != "" {
			t.Fatalf("transact: %v %+v", err, res)
		}
		return res[0].UUID.GoUUID
	}
	want := BackendsValue([]string{"10.0.0.1", "10.0.0.2"})
	wait := w.ExpectRows(nbdb.LoadBalancerTable, map[string]func(model.Model) bool{"lb": hasBackends(want), "other": nil})
	lb := &nbdb.LoadBalancer{Name: "lb", Vips: map[string]string{"10.96.0.1:80": "10.0.0.1:8080"}}
	uuid := transact(db.Client.Create(lb))
	transact(db.Client.Create(&nbdb.LoadBalancer{Name: "other"}))
	time.Sleep(200 * time.Millisecond)
	if at, _ := w.Times(wait); len(at) != 1 || at["other"].IsZero() {
		t.Fatalf("before the update: %v", at)
	}
	lb.UUID, lb.Vips = uuid, map[string]string{"10.96.0.1:80": "10.0.0.2:8080,10.0.0.1:8080"}
	transact(db.Client.Where(lb).Update(lb, &lb.Vips))
	if err := w.Until(ctx, wait, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if at, late := w.Times(wait); at["lb"].IsZero() || late != 0 {
		t.Errorf("after the update: %v, %d late", at, late)
	}
	// Already true when expected: counts from now; then gone.
	if again := w.ExpectRows(nbdb.LoadBalancerTable, map[string]func(model.Model) bool{"lb": hasBackends(want)}); len(again.pending) != 0 {
		t.Error("a row already as wanted is pending")
	}
	gone := w.Expect(nbdb.LoadBalancerTable, []string{"lb"}, true)
	transact(db.Client.Where(lb).Delete())
	if err := w.Until(ctx, gone, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := w.RowCounts()[nbdb.LoadBalancerTable]; n != 1 {
		t.Errorf("%d load balancers left", n)
	}
	short := w.ExpectRows(nbdb.LoadBalancerTable, map[string]func(model.Model) bool{"other": hasBackends(want)})
	if err := w.Until(ctx, short, 10*time.Millisecond); err == nil {
		t.Error("a row never as wanted was accepted")
	}
}
