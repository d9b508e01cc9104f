package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/ovn-kubernetes/libovsdb/model"

	"github.com/kovn-io/kovn/go-controller/pkg/lab"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// Service ports of the workload: every service is TCP 80 → 8080.
const (
	ServicePort = 80
	TargetPort  = 8080
	// SliceManager is the EndpointSlice managed-by label value of the
	// benchmark's slices: Kubernetes' own slice controllers leave slices
	// of another manager alone.
	SliceManager = "kovn-bench"
)

// ServiceShape is a services run.
type ServiceShape struct {
	Name      string `json:"name"`      // "w2" or "custom"
	Services  int    `json:"services"`  // spread over ns0…ns9
	Endpoints int    `json:"endpoints"` // per service
	Writers   int    `json:"writers"`
	Updates   int    `json:"updates"` // EndpointSlice updates timed one at a time after convergence
	// Selector gives the services W2's selector app=s<m>. The pods are
	// simulated (never ready), so kube-controller-manager then adds slices
	// of its own (with no ready endpoint) beside the benchmark's: off by
	// default, the services have no selector and only the benchmark's
	// slices.
	Selector bool `json:"selector"`
}

// W2 is BENCH-WORKLOADS' services workload: 200 services (20 per
// namespace) of 5 endpoints.
func W2() ServiceShape {
	return ServiceShape{Name: "w2", Services: 200, Endpoints: 5, Writers: 32, Updates: 100}
}

// Validate rejects shapes that cannot be run.
func (s ServiceShape) Validate() error {
	switch {
	case s.Services < 1:
		return fmt.Errorf("--services must be positive, got %d", s.Services)
	case s.Endpoints < 1:
		return fmt.Errorf("--endpoints must be positive, got %d", s.Endpoints)
	case s.Writers < 1:
		return fmt.Errorf("--writers must be positive, got %d", s.Writers)
	case s.Updates < 0:
		return fmt.Errorf("--updates must not be negative, got %d", s.Updates)
	}
	return nil
}

// ServiceRef names one service of the run and the pods behind it.
type ServiceRef struct {
	Namespace, Name string
	M               int   // index in its namespace: svc-s<m>
	Pods            []int // k of the endpoint pods pod-<j>-<k>, in slice order
}

// LBName is the service's load balancer.
func (r ServiceRef) LBName() string {
	return own.ServiceLB(r.Namespace, r.Name, string(corev1.ProtocolTCP))
}

// ServiceList spreads the services over ns0…ns9 as PodList spreads pods
// (the remainder to the first namespaces). Service m of namespace j is
// svc-s<m> and its endpoints are pods m·K … m·K+K−1, modulo the pods of
// the namespace (podsIn(j)): for W2 on W1 exactly the pods with app=s<m>.
func (s ServiceShape) ServiceList(podsIn func(j int) int) ([]ServiceRef, error) {
	out := make([]ServiceRef, 0, s.Services)
	for j := 0; j < Namespaces; j++ {
		n := s.Services / Namespaces
		if j < s.Services%Namespaces {
			n++
		}
		pods := podsIn(j)
		if n > 0 && pods < s.Endpoints {
			return nil, fmt.Errorf("%s has %d pods, fewer than the %d endpoints of a service", NamespaceName(j), pods, s.Endpoints)
		}
		for m := 0; m < n; m++ {
			r := ServiceRef{Namespace: NamespaceName(j), Name: fmt.Sprintf("svc-s%d", m), M: m}
			for i := 0; i < s.Endpoints; i++ {
				r.Pods = append(r.Pods, (m*s.Endpoints+i)%pods)
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// ServiceObj is a ClusterIP service of the workload, TCP 80 → 8080; with
// selector, W2's selector app=s<m>.
func ServiceObj(r ServiceRef, selector bool) *corev1.Service {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: r.Namespace, Name: r.Name, Labels: map[string]string{BenchLabel: "true"}},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeClusterIP,
			Ports: []corev1.ServicePort{{
				Protocol: corev1.ProtocolTCP, Port: ServicePort, TargetPort: intstr.FromInt32(TargetPort),
			}},
		},
	}
	if selector {
		svc.Spec.Selector = map[string]string{"app": fmt.Sprintf("s%d", r.M)}
	}
	return svc
}

// SliceObj is the service's one EndpointSlice, listing ips as ready
// endpoints of port 8080 (unnamed, as the service port). It carries the
// service-name label kovn indexes slices by, and a managed-by of its own
// so that kube-controller-manager's slice controllers leave it alone.
func SliceObj(r ServiceRef, ips []string) *discoveryv1.EndpointSlice {
	name, proto, port := "", corev1.ProtocolTCP, int32(TargetPort)
	es := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: r.Namespace, Name: r.Name + "-bench", Labels: map[string]string{
			discoveryv1.LabelServiceName: r.Name,
			discoveryv1.LabelManagedBy:   SliceManager,
			BenchLabel:                   "true",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &name, Protocol: &proto, Port: &port}},
	}
	setEndpoints(es, ips)
	return es
}

func setEndpoints(es *discoveryv1.EndpointSlice, ips []string) {
	es.Endpoints = make([]discoveryv1.Endpoint, len(ips))
	for i, ip := range ips {
		ready := true
		es.Endpoints[i] = discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}
	}
}

// BackendsValue is the VIP value a load balancer carries for these
// endpoints: "ip:8080" sorted and comma-separated (docs/services.md).
func BackendsValue(ips []string) string {
	b := make([]string, len(ips))
	for i, ip := range ips {
		b[i] = fmt.Sprintf("%s:%d", ip, TargetPort)
	}
	slices.Sort(b)
	return strings.Join(b, ",")
}

// hasBackends accepts a load balancer with a VIP whose backends are
// exactly those of want (in any order).
func hasBackends(want string) func(model.Model) bool {
	norm := func(v string) string {
		parts := strings.Split(v, ",")
		slices.Sort(parts)
		return strings.Join(parts, ",")
	}
	want = norm(want)
	return func(m model.Model) bool {
		lb, ok := m.(*nbdb.LoadBalancer)
		if !ok {
			return false
		}
		for _, v := range lb.Vips {
			if norm(v) == want {
				return true
			}
		}
		return false
	}
}

// EndpointUpdate replaces, in service Service of the list, the endpoint
// in slot Slot by pod NewPod of the same namespace.
type EndpointUpdate struct {
	Service, Slot, NewPod int
}

// UpdatePlan picks n services spread evenly over the list (at most one
// update each) and, for each, a pod of its namespace that is not yet one
// of its endpoints: the one after its last endpoint, or the next free.
func UpdatePlan(refs []ServiceRef, n int, podsIn func(ns string) int) ([]EndpointUpdate, error) {
	n = min(n, len(refs))
	out := make([]EndpointUpdate, 0, n)
	for i := 0; i < n; i++ {
		si := i * len(refs) / n
		r := refs[si]
		pods := podsIn(r.Namespace)
		if pods <= len(r.Pods) {
			return nil, fmt.Errorf("%s has %d pods: none is free to replace an endpoint of %s", r.Namespace, pods, r.Name)
		}
		next := r.Pods[len(r.Pods)-1]
		for slices.Contains(r.Pods, next) {
			next = (next + 1) % pods
		}
		out = append(out, EndpointUpdate{Service: si, Slot: 0, NewPod: next})
	}
	return out, nil
}

// ServicesResult holds the figures of a services run. Times count from
// the first Service create sent; the load balancer of a service is done
// when one of its VIPs carries exactly its endpoints.
type ServicesResult struct {
	Shape  ServiceShape `json:"shape"`
	Leader Replica      `json:"leader"`

	APICreateSeconds       float64 `json:"apiCreateSeconds"`        // first Service create sent → last EndpointSlice create answered
	APICreatesPerSecond    float64 `json:"apiCreatesPerSecond"`     // services (each a Service and a slice) per second
	AllLBsSeconds          float64 `json:"allLoadBalancersSeconds"` // first create sent → last LB with its backends: W2's figure
	AfterLastCreateSeconds float64 `json:"afterLastCreateSeconds"`  // last create answered → last LB: ovn-kubernetes' 17 ms
	APICreateLatency       Dist    `json:"apiCreateLatency"`        // per service: Service create sent → its slice's create answered
	LatencyFromCreate      Dist    `json:"latencyFromCreate"`       // per service: Service create sent → LB with backends
	LatencyFromAnswer      Dist    `json:"latencyFromAnswer"`       // per service: slice create answered → LB with backends
	LateDetected           int     `json:"lateDetected"`
	BurstSamples                   // every service's latencies of the three above

	NBTransactionsPerService float64 `json:"nbTransactionsPerService"`
	NBOperationsPerService   float64 `json:"nbOperationsPerService"`
	// Rows owned by the run's services (external_ids kovn.io/owner), and
	// the members of the cluster-wide load balancer group.
	LoadBalancers    int     `json:"loadBalancers"`
	NBRowsPerService float64 `json:"nbRowsPerService"`
	GroupMembers     int     `json:"groupMembers"`
	Costs                    // first create → every LB with its backends

	Updates *UpdatesResult `json:"endpointUpdates,omitempty"`
}

// UpdatesResult times EndpointSlice updates made one at a time on the
// converged services: each replaces one endpoint by another pod.
type UpdatesResult struct {
	Updates           int  `json:"updates"`
	APILatency        Dist `json:"apiLatency"`        // update sent → answered
	LatencyFromAnswer Dist `json:"latencyFromAnswer"` // update answered → the LB's VIP value changed in NB
	LatencyFromSent   Dist `json:"latencyFromSent"`   // update sent → changed
	LateDetected      int  `json:"lateDetected"`
	// LatencyFromAnswer's samples, in ms in update order, so that
	// kovn-bench plot can draw the whole distribution.
	LatencyFromAnswerMs []float64 `json:"latencyFromAnswerMs,omitempty"`
	Costs
}

// ServicesOptions configure a services run.
type ServicesOptions struct {
	Shape   ServiceShape
	Timeout time.Duration
	Perf    PerfOptions // profile of the creates (the updates are one at a time, mostly idle)
}

// RunServices runs the services scenario on a kept pods run. What it
// creates is left in place (kovn-bench cleanup removes it with the
// namespaces), also when it fails.
func RunServices(ctx context.Context, l *lab.Lab, cs kubernetes.Interface, opts ServicesOptions) (*ServicesResult, error) {
	shape := opts.Shape
	if err := shape.Validate(); err != nil {
		return nil, err
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
	svcs, err := cs.CoreV1().Services("").List(ctx, benchSelector())
	if err := noneLeft("services", len(svcs.Items), err); err != nil {
		return nil, err
	}
	refs, err := shape.ServiceList(kept.PodsIn)
	if err != nil {
		return nil, err
	}
	ips := make([][]string, len(refs))
	want := make(map[string]func(model.Model) bool, len(refs))
	for i, r := range refs {
		if ips[i], err = kept.endpointIPs(r.Namespace, r.Pods); err != nil {
			return nil, err
		}
		want[r.LBName()] = hasBackends(BackendsValue(ips[i]))
	}
	w, err := NewWatcher(ctx, "unix:"+l.NBSocket(), ServiceTables()...)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	res := &ServicesResult{Shape: shape, Leader: leader}

	ph, err := beginPhase(ctx, l, cs, sc, leader, opts.Perf)
	if err != nil {
		return res, err
	}
	defer ph.close()
	wait := w.ExpectRows(nbdb.LoadBalancerTable, want)
	if at, _ := w.Times(wait); len(at) > 0 {
		return res, fmt.Errorf("%d of the services' load balancers were in NB before their services were created", len(at))
	}
	sent, answered := make([]time.Time, len(refs)), make([]time.Time, len(refs))
	made := make([]*discoveryv1.EndpointSlice, len(refs))
	err = parallel(len(refs), shape.Writers, func(i int) error {
		r := refs[i]
		sent[i] = time.Now()
		if _, err := cs.CoreV1().Services(r.Namespace).Create(ctx, ServiceObj(r, shape.Selector), metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create service %s/%s: %w", r.Namespace, r.Name, err)
		}
		es, err := cs.DiscoveryV1().EndpointSlices(r.Namespace).Create(ctx, SliceObj(r, ips[i]), metav1.CreateOptions{})
		answered[i] = time.Now()
		if err != nil {
			return fmt.Errorf("create EndpointSlice of %s/%s: %w", r.Namespace, r.Name, err)
		}
		made[i] = es
		return nil
	})
	if err != nil {
		return res, err
	}
	if err := w.Until(ctx, wait, opts.Timeout); err != nil {
		return res, err
	}
	if err := ph.end(ctx, &res.Costs); err != nil {
		return res, err
	}
	names := make([]string, len(refs))
	for i, r := range refs {
		names[i] = r.LBName()
	}
	at, late := w.Times(wait)
	b := measureBurst(sent, answered, timesOf(names, at))
	res.APICreateSeconds, res.APICreatesPerSecond = b.apiSeconds(), b.apiRate()
	res.AllLBsSeconds, res.AfterLastCreateSeconds = b.allSeconds(), b.afterLast()
	res.APICreateLatency, res.LatencyFromCreate, res.LatencyFromAnswer = Summarise(b.api), Summarise(b.fromCreate), Summarise(b.fromAnswer)
	res.BurstSamples = b.samples()
	res.LateDetected = late
	n := float64(len(refs))
	res.NBTransactionsPerService, res.NBOperationsPerService = ratio(res.NBTransactions, n), ratio(res.NBOperations, n)
	ph.settled(ctx, &res.Costs)
	res.LoadBalancers, res.GroupMembers = serviceRows(w, refs)
	res.NBRowsPerService = ratio(float64(res.LoadBalancers), n)

	if shape.Updates == 0 {
		return res, nil
	}
	plan, err := UpdatePlan(refs, shape.Updates, func(ns string) int { return len(kept.Pods[ns]) })
	if err != nil {
		return res, err
	}
	res.Updates, err = runUpdates(ctx, l, cs, sc, leader, w, kept, refs, made, plan, opts.Timeout)
	return res, err
}

// endpointIPs are the addresses of pods idx of namespace ns.
func (k *Kept) endpointIPs(ns string, idx []int) ([]string, error) {
	out := make([]string, len(idx))
	for i, x := range idx {
		ip, err := k.IPOf(ns, x)
		if err != nil {
			return nil, err
		}
		out[i] = ip
	}
	return out, nil
}

// serviceRows counts the load balancers the run's services own, by
// external_ids, and the members of the cluster-wide group.
func serviceRows(w *Watcher, refs []ServiceRef) (lbs, members int) {
	ours := map[string]bool{}
	for _, r := range refs {
		ours[r.Namespace+"/"+r.Name] = true
	}
	for _, m := range w.Rows(nbdb.LoadBalancerTable) {
		if kind, owner := own.OwnerOf(externalIDs(m)); kind == own.KindService && ours[owner] {
			lbs++
		}
	}
	for _, m := range w.Rows(nbdb.LoadBalancerGroupTable) {
		if g := m.(*nbdb.LoadBalancerGroup); g.Name == own.ClusterLBGroup {
			members = len(g.LoadBalancer)
		}
	}
	return lbs, members
}

// runUpdates applies the plan one update at a time, each waiting for its
// load balancer to change before the next is sent.
func runUpdates(ctx context.Context, l *lab.Lab, cs kubernetes.Interface, sc *Scraper, leader Replica, w *Watcher,
	kept *Kept, refs []ServiceRef, made []*discoveryv1.EndpointSlice, plan []EndpointUpdate, timeout time.Duration) (*UpdatesResult, error) {
	res := &UpdatesResult{Updates: len(plan)}
	ph, err := beginPhase(ctx, l, cs, sc, leader, PerfOptions{})
	if err != nil {
		return res, err
	}
	sent, answered, changed := make([]time.Time, len(plan)), make([]time.Time, len(plan)), make([]time.Time, len(plan))
	for i, u := range plan {
		r := &refs[u.Service]
		pods := slices.Clone(r.Pods)
		pods[u.Slot] = u.NewPod
		ips, err := kept.endpointIPs(r.Namespace, pods)
		if err != nil {
			return res, err
		}
		es := made[u.Service].DeepCopy()
		setEndpoints(es, ips)
		wait := w.ExpectRows(nbdb.LoadBalancerTable, map[string]func(model.Model) bool{r.LBName(): hasBackends(BackendsValue(ips))})
		sent[i] = time.Now()
		updated, err := cs.DiscoveryV1().EndpointSlices(r.Namespace).Update(ctx, es, metav1.UpdateOptions{})
		answered[i] = time.Now()
		if err != nil {
			return res, fmt.Errorf("update EndpointSlice %s/%s: %w", es.Namespace, es.Name, err)
		}
		if err := w.Until(ctx, wait, timeout); err != nil {
			return res, err
		}
		at, late := w.Times(wait)
		changed[i] = at[r.LBName()]
		res.LateDetected += late
		made[u.Service], r.Pods = updated, pods
	}
	if err := ph.end(ctx, &res.Costs); err != nil {
		return res, err
	}
	res.APILatency, res.LatencyFromAnswer, res.LatencyFromSent = updateLatencies(sent, answered, changed)
	for _, d := range fromAnswer(answered, changed) {
		res.LatencyFromAnswerMs = append(res.LatencyFromAnswerMs, ms(d))
	}
	ph.settled(ctx, &res.Costs)
	return res, nil
}

// updateLatencies summarises, per update, sent → answered, answered →
// changed in NB, and sent → changed. A change seen before the answer
// arrived (the watch can beat the reply) counts as 0 from the answer.
func updateLatencies(sent, answered, changed []time.Time) (api, fromAnswerDist, fromSent Dist) {
	a, fs := make([]time.Duration, len(sent)), make([]time.Duration, len(sent))
	for i := range sent {
		a[i] = answered[i].Sub(sent[i])
		fs[i] = changed[i].Sub(sent[i])
	}
	return Summarise(a), Summarise(fromAnswer(answered, changed)), Summarise(fs)
}

// fromAnswer is, per update, answered → changed in NB, 0 when the change
// was seen first: one rule for the summary and the raw samples.
func fromAnswer(answered, changed []time.Time) []time.Duration {
	fa := make([]time.Duration, len(answered))
	for i := range answered {
		fa[i] = max(0, changed[i].Sub(answered[i]))
	}
	return fa
}

func (r *ServicesResult) rows() []row {
	s := r.Shape
	sel := "no selector (only the benchmark's slices)"
	if s.Selector {
		sel = "selector app=s<m> (kube-controller-manager adds its own slices)"
	}
	rows := []row{
		{"services", fmt.Sprintf("%s: %d ClusterIP services × %d endpoints, %d writers, %s", s.Name, s.Services, s.Endpoints, s.Writers, sel)},
		{"leader", fmt.Sprintf("%s (pid %d)", r.Leader.Component, r.Leader.Pid)},
	}
	if r.LatencyFromCreate.N > 0 {
		rows = append(rows, []row{
			{"API create phase (Service + slice)", fmt.Sprintf("%s (%.0f services/s)", fs(r.APICreateSeconds), r.APICreatesPerSecond)},
			{"all LBs with their backends (from first create)", fs(r.AllLBsSeconds)},
			{"  after the last create answered", fs(r.AfterLastCreateSeconds)},
			{"latency Service create → LB", r.LatencyFromCreate.String()},
			{"latency slice answered → LB", r.LatencyFromAnswer.String()},
			{"NB rows per service", fmt.Sprintf("%.2f (%d load balancers; %d in %s)", r.NBRowsPerService, r.LoadBalancers, r.GroupMembers, own.ClusterLBGroup)},
		}...)
		rows = append(rows, r.Costs.rows("service", s.Services, "services", "endpointslices")...)
	}
	if r.LateDetected > 0 {
		rows = append(rows, row{"late-detected LBs", fmt.Sprint(r.LateDetected)})
	}
	rows = append(rows, warningRows(r.Warnings)...)
	if u := r.Updates; u != nil && u.LatencyFromAnswer.N > 0 {
		rows = append(rows, []row{
			{"endpoint updates, one at a time", fmt.Sprint(u.Updates)},
			{"  update answered → VIP changed", u.LatencyFromAnswer.String()},
			{"  update sent → VIP changed", u.LatencyFromSent.String()},
			{"  update API latency", u.APILatency.String()},
			{"  NB transactions (per update)", fmt.Sprintf("%.0f (%.2f); %.0f once settled", u.NBTransactions, ratio(u.NBTransactions, float64(u.Updates)), u.NBTransactionsSettled)},
			{"  controller CPU", fmt.Sprintf("%.2f s", u.ControllerCPUSeconds)},
		}...)
		if u.LateDetected > 0 {
			rows = append(rows, row{"  late-detected changes", fmt.Sprint(u.LateDetected)})
		}
		rows = append(rows, warningRows(u.Warnings)...)
	}
	return rows
}
