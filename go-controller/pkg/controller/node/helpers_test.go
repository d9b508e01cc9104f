package node

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	"github.com/kovn-io/kovn/go-controller/pkg/config"
	"github.com/kovn-io/kovn/go-controller/pkg/controller/queue"
	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/metrics"
	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
	"github.com/kovn-io/kovn/go-controller/pkg/testenv"
)

const waitTimeout = 10 * time.Second

func testConfig() *config.Controller {
	return &config.Controller{
		ClusterCIDRs:   []netip.Prefix{netip.MustParsePrefix("10.128.0.0/14")},
		HostSubnetBits: 24,
		JoinSubnet:     netip.MustParsePrefix("100.64.0.0/16"),
		MTU:            1400,
		PodWorkers:     4,
		NodeWorkers:    2,
		Mode:           "overlay",
	}
}

// harness is the world outside the controller: a fake API and an NB
// database, which outlive controller instances (restarts).
type harness struct {
	t      *testing.T
	cfg    *config.Controller
	kc     *fake.Clientset
	nbAddr string
	nb     client.Client // the test's own view of NB
}

func newHarness(t *testing.T, cfg *config.Controller) *harness {
	t.Helper()
	db := testenv.StartInMemoryNB(t)
	return &harness{t: t, cfg: cfg, kc: fake.NewClientset(), nbAddr: db.Addr, nb: connectNB(t, db.Addr)}
}

// connectNB connects like production: with the name indexes the builders need.
func connectNB(t *testing.T, addr string) client.Client {
	t.Helper()
	m, err := nbops.ClientDBModel()
	if err != nil {
		t.Fatal(err)
	}
	return testenv.Connect(t, addr, m)
}

// instance is one run of the controller, with its own NB connection,
// Transactor, informers and metrics, as after a process start.
type instance struct {
	c        *Controller
	tx       *nbops.Transactor
	problems *metrics.Problems
	events   *record.FakeRecorder
	reg      *prometheus.Registry
	stop     func()
	run      func()
	runDone  chan struct{}
}

// startNoRun builds the controller, syncs its informers and calls Start,
// but runs no workers yet; run starts them.
func (h *harness) startNoRun() *instance {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	nb := connectNB(h.t, h.nbAddr)
	reg := prometheus.NewRegistry()
	i := &instance{tx: nbops.NewTransactor(nb, nil), events: record.NewFakeRecorder(1000), reg: reg, runDone: make(chan struct{})}
	i.problems = metrics.NewProblems(i.events, reg)
	factory := informers.NewSharedInformerFactory(h.kc, 0)
	nodes := factory.Core().V1().Nodes()
	var err error
	if i.c, err = New(h.cfg, h.kc, nodes.Lister(), nb, i.tx, i.problems, queue.NewMetrics(reg)); err != nil {
		h.t.Fatal(err)
	}
	if _, err := nodes.Informer().AddEventHandler(i.c.Queue.Handler()); err != nil {
		h.t.Fatal(err)
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	var ran bool
	i.stop = sync.OnceFunc(func() {
		if ran {
			// Stop gracefully: a transaction abandoned by cancel stays in
			// flight at the server, and libovsdb's in-memory server (rpc2)
			// races when a client closes with two requests pending.
			waitIdle(i.c.Queue)
		}
		cancel()
		if ran {
			<-i.runDone
		}
		factory.Shutdown()
	})
	h.t.Cleanup(i.stop)
	if err := i.c.Start(ctx); err != nil {
		h.t.Fatalf("Start: %v", err)
	}
	i.run = func() {
		ran = true
		go func() { defer close(i.runDone); i.c.Queue.Run(ctx) }()
	}
	return i
}

func (h *harness) start() *instance {
	h.t.Helper()
	i := h.startNoRun()
	i.run()
	return i
}

// waitIdle waits, for a bounded time, until q has been idle for a while.
func waitIdle(q *queue.Controller) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	queue.WaitIdle(ctx, 50*time.Millisecond, q)
}

// syncs reads kovn_controller_syncs_total{result}.
func (i *instance) syncs(result string) float64 {
	mfs, _ := i.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "kovn_controller_syncs_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// waitSynced waits for n successful syncs and an idle queue.
func (i *instance) waitSynced(t *testing.T, n int) {
	t.Helper()
	testenv.WaitFor(t, waitTimeout, func() error {
		if ok := i.syncs("ok"); ok < float64(n) || i.c.Queue.Len() > 0 || i.c.Queue.Busy() {
			return fmt.Errorf("%v of %d syncs ok, %v failed, %d queued", ok, n, i.syncs("error"), i.c.Queue.Len())
		}
		return nil
	})
}

func (i *instance) waitProblem(t *testing.T, reason string) {
	t.Helper()
	testenv.WaitFor(t, waitTimeout, func() error {
		if i.problems.Count("Node", reason) < 1 {
			return fmt.Errorf("no %s problem reported", reason)
		}
		return nil
	})
}

func (h *harness) createNode(name string, annotations map[string]string) {
	h.t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations}}
	if _, err := h.kc.CoreV1().Nodes().Create(context.Background(), n, metav1.CreateOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) patchNode(name string, annotations map[string]string, labels map[string]string) {
	h.t.Helper()
	patch := fmt.Sprintf(`{"metadata":{"annotations":%s,"labels":%s}}`, jsonMap(annotations), jsonMap(labels))
	if _, err := h.kc.CoreV1().Nodes().Patch(context.Background(), name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

func jsonMap(m map[string]string) string {
	s := "{"
	for k, v := range m {
		if len(s) > 1 {
			s += ","
		}
		s += fmt.Sprintf("%q:%q", k, v)
	}
	return s + "}"
}

func gatewayAnnotation(gw *kube.NodeGateway) map[string]string {
	return map[string]string{kube.NodeGatewayAnnotation: gw.Marshal()}
}

func (h *harness) deleteNode(name string) {
	h.t.Helper()
	if err := h.kc.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

// waitSubnet waits for the controller to record the node's subnet.
func (h *harness) waitSubnet(name string) netip.Prefix {
	h.t.Helper()
	var subnet netip.Prefix
	testenv.WaitFor(h.t, waitTimeout, func() error {
		n, err := h.kc.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		s, err := kube.ParseNodeSubnets(n.Annotations[kube.NodeSubnetsAnnotation])
		if err != nil || len(s) != 1 {
			return fmt.Errorf("node %s: subnets %v, %v", name, s, err)
		}
		subnet = s[0]
		return nil
	})
	return subnet
}

// patches counts patch actions on resource.
func (h *harness) patches(resource string) int {
	n := 0
	for _, a := range h.kc.Actions() {
		if a.GetVerb() == "patch" && a.GetResource().Resource == resource {
			n++
		}
	}
	return n
}

// list returns the rows of T the test's NB cache holds that match pred.
func list[T any](t *testing.T, nb client.Client, pred func(*T) bool) []*T {
	t.Helper()
	var out []*T
	if err := nb.WhereCache(pred).List(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// one returns the only row of T named name (by nameOf), or an error.
func one[T any](t *testing.T, nb client.Client, name string, nameOf func(*T) string) (*T, error) {
	t.Helper()
	rows := list(t, nb, func(r *T) bool { return nameOf(r) == name })
	if len(rows) != 1 {
		return nil, fmt.Errorf("%d rows named %q", len(rows), name)
	}
	return rows[0], nil
}

func lsName(r *nbdb.LogicalSwitch) string      { return r.Name }
func lrName(r *nbdb.LogicalRouter) string      { return r.Name }
func lspName(r *nbdb.LogicalSwitchPort) string { return r.Name }
func lrpName(r *nbdb.LogicalRouterPort) string { return r.Name }

// ownedBy counts the NB rows of every table a node writes that name owner.
func ownedBy(t *testing.T, nb client.Client, owner string) int {
	t.Helper()
	is := func(ids map[string]string) bool {
		return ids[own.KindKey] == own.KindNode && ids[own.OwnerKey] == owner
	}
	return len(list(t, nb, func(r *nbdb.LogicalSwitch) bool { return is(r.ExternalIDs) })) +
		len(list(t, nb, func(r *nbdb.LogicalSwitchPort) bool { return is(r.ExternalIDs) })) +
		len(list(t, nb, func(r *nbdb.LogicalRouter) bool { return is(r.ExternalIDs) })) +
		len(list(t, nb, func(r *nbdb.LogicalRouterPort) bool { return is(r.ExternalIDs) })) +
		len(list(t, nb, func(r *nbdb.LogicalRouterStaticRoute) bool { return is(r.ExternalIDs) })) +
		len(list(t, nb, func(r *nbdb.NAT) bool { return is(r.ExternalIDs) })) +
		len(list(t, nb, func(r *nbdb.ChassisTemplateVar) bool { return is(r.ExternalIDs) }))
}

// switchPortNames and routerPortNames name the ports a switch or router holds.
func switchPortNames(t *testing.T, nb client.Client, ls *nbdb.LogicalSwitch) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, u := range ls.Ports {
		for _, p := range list(t, nb, func(p *nbdb.LogicalSwitchPort) bool { return p.UUID == u }) {
			names[p.Name] = true
		}
	}
	return names
}

func routerPortNames(t *testing.T, nb client.Client, lr *nbdb.LogicalRouter) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, u := range lr.Ports {
		for _, p := range list(t, nb, func(p *nbdb.LogicalRouterPort) bool { return p.UUID == u }) {
			names[p.Name] = true
		}
	}
	return names
}

// routes describes a router's static routes as "prefix via nexthop
// [policy] [port]" strings, and nats its NATs as "type external<-logical".
func routes(t *testing.T, nb client.Client, lr *nbdb.LogicalRouter) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, u := range lr.StaticRoutes {
		for _, r := range list(t, nb, func(r *nbdb.LogicalRouterStaticRoute) bool { return r.UUID == u }) {
			s := r.IPPrefix + " via " + r.Nexthop
			if r.Policy != nil {
				s += " " + string(*r.Policy)
			}
			if r.OutputPort != nil {
				s += " port " + *r.OutputPort
			}
			out[s] = true
		}
	}
	return out
}

func nats(t *testing.T, nb client.Client, lr *nbdb.LogicalRouter) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, u := range lr.Nat {
		for _, n := range list(t, nb, func(n *nbdb.NAT) bool { return n.UUID == u }) {
			out[string(n.Type)+" "+n.ExternalIP+"<-"+n.LogicalIP] = true
		}
	}
	return out
}

func joinIP(t *testing.T, nb client.Client, node string) (netip.Prefix, error) {
	t.Helper()
	lrp, err := one(t, nb, own.GatewayToJoinPort(node), lrpName)
	if err != nil {
		return netip.Prefix{}, err
	}
	if len(lrp.Networks) != 1 {
		return netip.Prefix{}, fmt.Errorf("%s networks %v", lrp.Name, lrp.Networks)
	}
	return netip.ParsePrefix(lrp.Networks[0])
}
