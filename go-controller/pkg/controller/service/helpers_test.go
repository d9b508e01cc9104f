package service

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

// harness is a fake API and an NB database that outlive controller
// instances (restarts). The node controller is not run: the test writes
// the rows it would (group, node switches, gateway routers) itself.
type harness struct {
	t      *testing.T
	kc     *fake.Clientset
	nbAddr string
	nb     client.Client     // the test's own view of NB
	tx     *nbops.Transactor // the test's own writes
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	db := testenv.StartInMemoryNB(t)
	nb := connectNB(t, db.Addr)
	return &harness{t: t, kc: fake.NewClientset(), nbAddr: db.Addr, nb: nb, tx: nbops.NewTransactor(nb, nil)}
}

func connectNB(t *testing.T, addr string) client.Client {
	t.Helper()
	m, err := nbops.ClientDBModel()
	if err != nil {
		t.Fatal(err)
	}
	return testenv.Connect(t, addr, m)
}

// instance is one run of the controller with its own NB connection,
// Transactor, informers and metrics, as after a process start.
type instance struct {
	c        *Controller
	tx       *nbops.Transactor
	problems *metrics.Problems
	events   *record.FakeRecorder
	reg      *prometheus.Registry
	stop     func()
	run      func()
}

func (h *harness) startNoRun() *instance {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	nb := connectNB(h.t, h.nbAddr)
	reg := prometheus.NewRegistry()
	i := &instance{tx: nbops.NewTransactor(nb, nil), events: record.NewFakeRecorder(1000), reg: reg}
	i.problems = metrics.NewProblems(i.events, reg)
	factory := informers.NewSharedInformerFactory(h.kc, 0)
	var err error
	if i.c, err = New(&config.Controller{PodWorkers: 4}, factory, nb, i.tx, i.problems, queue.NewMetrics(reg)); err != nil {
		h.t.Fatal(err)
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	runDone := make(chan struct{})
	var ran bool
	i.stop = sync.OnceFunc(func() {
		if ran {
			waitIdle(i.c.Queue) // see the pod package: rpc2 races on abandoned requests
		}
		cancel()
		if ran {
			<-runDone
		}
		factory.Shutdown()
	})
	h.t.Cleanup(i.stop)
	if err := i.c.Start(ctx); err != nil {
		h.t.Fatalf("Start: %v", err)
	}
	i.run = func() {
		ran = true
		go func() { defer close(runDone); i.c.Queue.Run(ctx) }()
	}
	return i
}

func (h *harness) start() *instance {
	h.t.Helper()
	i := h.startNoRun()
	i.run()
	return i
}

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

// settle waits until at least n syncs succeeded and the queue is idle.
func (i *instance) settle(t *testing.T, n int) {
	t.Helper()
	testenv.WaitFor(t, waitTimeout, func() error {
		if ok := i.syncs("ok"); ok < float64(n) || !i.c.Queue.Idle() {
			return fmt.Errorf("%v of %d syncs ok, %v failed, %d queued", ok, n, i.syncs("error"), i.c.Queue.Len())
		}
		return nil
	})
	waitIdle(i.c.Queue)
}

func (i *instance) txns() uint64 {
	n, _ := i.tx.Stats()
	return n
}

// write sends ops the test built.
func (h *harness) write(desc string, ops []ovsdb.Operation, err error) {
	h.t.Helper()
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.tx.Transact(context.Background(), desc, ops); err != nil {
		h.t.Fatal(err)
	}
}

// addGroup creates the cluster load balancer group, as the node
// controller does at start.
func (h *harness) addGroup() {
	h.t.Helper()
	ops, _, err := nbops.EnsureLoadBalancerGroup(h.nb, &nbdb.LoadBalancerGroup{Name: own.ClusterLBGroup})
	h.write("group", ops, err)
}

// addNodeRows creates a node's switch and, with gw, its gateway router,
// as the node controller would.
func (h *harness) addNodeRows(node string, gw bool) {
	h.t.Helper()
	ids := own.IDs(own.KindNode, node, "")
	ops, _, err := nbops.EnsureSwitch(h.nb, &nbdb.LogicalSwitch{Name: own.NodeSwitch(node), ExternalIDs: ids})
	if err != nil {
		h.t.Fatal(err)
	}
	if gw {
		more, _, err := nbops.EnsureRouter(h.nb, &nbdb.LogicalRouter{Name: own.GatewayRouter(node), ExternalIDs: ids})
		if err != nil {
			h.t.Fatal(err)
		}
		ops = append(ops, more...)
	}
	h.write("node "+node, ops, nil)
}

func (h *harness) deleteNodeRows(node string) {
	h.t.Helper()
	ops, err := nbops.DeleteRouter(h.nb, own.GatewayRouter(node))
	if err != nil {
		h.t.Fatal(err)
	}
	more, err := nbops.DeleteSwitch(h.nb, own.NodeSwitch(node))
	h.write("delete node "+node, append(ops, more...), err)
}

func gatewayOf(ip string) *kube.NodeGateway {
	return &kube.NodeGateway{ChassisID: "chassis-" + ip, IP: ip + "/16", NextHop: "172.18.0.1", MAC: "02:42:ac:12:00:02"}
}

func (h *harness) createNode(name string, gw *kube.NodeGateway) {
	h.t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if gw != nil {
		n.Annotations = map[string]string{kube.NodeGatewayAnnotation: gw.Marshal()}
	}
	if _, err := h.kc.CoreV1().Nodes().Create(context.Background(), n, metav1.CreateOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) deleteNode(name string) {
	h.t.Helper()
	if err := h.kc.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) createService(svc *corev1.Service) {
	h.t.Helper()
	if _, err := h.kc.CoreV1().Services(svc.Namespace).Create(context.Background(), svc, metav1.CreateOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) updateService(svc *corev1.Service) {
	h.t.Helper()
	if _, err := h.kc.CoreV1().Services(svc.Namespace).Update(context.Background(), svc, metav1.UpdateOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) deleteService(ns, name string) {
	h.t.Helper()
	if err := h.kc.CoreV1().Services(ns).Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) applySlice(es *discoveryv1.EndpointSlice) {
	h.t.Helper()
	api := h.kc.DiscoveryV1().EndpointSlices(es.Namespace)
	if _, err := api.Get(context.Background(), es.Name, metav1.GetOptions{}); err == nil {
		if _, err := api.Update(context.Background(), es, metav1.UpdateOptions{}); err != nil {
			h.t.Fatal(err)
		}
		return
	}
	if _, err := api.Create(context.Background(), es, metav1.CreateOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

// named returns a copy of a test service or slice object under another
// service name (the slice's label follows).
func named(svc *corev1.Service, name string) *corev1.Service {
	svc = svc.DeepCopy()
	svc.Name = name
	return svc
}

func sliceOf(es *discoveryv1.EndpointSlice, service, name string) *discoveryv1.EndpointSlice {
	es = es.DeepCopy()
	es.Name = name
	es.Labels[discoveryv1.LabelServiceName] = service
	return es
}

// lb returns the load balancer named name from the test's cache, or nil.
func (h *harness) lb(name string) *nbdb.LoadBalancer {
	lb, err := nbops.GetLoadBalancer(h.nb, name)
	if err != nil {
		return nil
	}
	return lb
}

// waitLB waits until the load balancer named name satisfies check (nil
// when it must not exist) and returns it.
func (h *harness) waitLB(name string, check func(*nbdb.LoadBalancer) error) *nbdb.LoadBalancer {
	h.t.Helper()
	var lb *nbdb.LoadBalancer
	testenv.WaitFor(h.t, waitTimeout, func() error {
		lb = h.lb(name)
		if check == nil {
			if lb != nil {
				return fmt.Errorf("load balancer %s still exists: %v", name, lb.Vips)
			}
			return nil
		}
		if lb == nil {
			return fmt.Errorf("no load balancer %s", name)
		}
		return check(lb)
	})
	return lb
}

func vipIs(vip, backends string) func(*nbdb.LoadBalancer) error {
	return func(lb *nbdb.LoadBalancer) error {
		if got, ok := lb.Vips[vip]; !ok || got != backends {
			return fmt.Errorf("%s vips %v, want %s → %q", lb.Name, lb.Vips, vip, backends)
		}
		return nil
	}
}

// holders names the group, switches and routers whose load_balancer
// column holds uuid.
func (h *harness) holders(uuid string) []string {
	h.t.Helper()
	var out []string
	var groups []*nbdb.LoadBalancerGroup
	var lss []*nbdb.LogicalSwitch
	var lrs []*nbdb.LogicalRouter
	ctx := context.Background()
	if err := h.nb.List(ctx, &groups); err != nil {
		h.t.Fatal(err)
	}
	if err := h.nb.List(ctx, &lss); err != nil {
		h.t.Fatal(err)
	}
	if err := h.nb.List(ctx, &lrs); err != nil {
		h.t.Fatal(err)
	}
	for _, g := range groups {
		if slices.Contains(g.LoadBalancer, uuid) {
			out = append(out, "group:"+g.Name)
		}
	}
	for _, ls := range lss {
		if slices.Contains(ls.LoadBalancer, uuid) {
			out = append(out, "switch:"+ls.Name)
		}
	}
	for _, lr := range lrs {
		if slices.Contains(lr.LoadBalancer, uuid) {
			out = append(out, "router:"+lr.Name)
		}
	}
	return out
}

// groupSize is the number of load balancers in the cluster group.
func (h *harness) groupSize() int {
	g, err := nbops.GetLoadBalancerGroup(h.nb, own.ClusterLBGroup)
	if err != nil {
		return -1
	}
	return len(g.LoadBalancer)
}
