package service

import (
	"context"
	"fmt"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"

	"github.com/kovn-io/kovn/go-controller/pkg/config"
	"github.com/kovn-io/kovn/go-controller/pkg/controller/internal/ctltest"
	"github.com/kovn-io/kovn/go-controller/pkg/controller/queue"
	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/metrics"
	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// harness is a fake API and an NB database that outlive controller
// instances (restarts). The node controller is not run: the test writes
// the rows it would (group, node switches, gateway routers) itself.
type harness struct {
	t *testing.T
	*ctltest.Env
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	return &harness{t: t, Env: ctltest.NewEnv(t)}
}

// instance is one run of the controller (see ctltest.Instance).
type instance struct {
	*ctltest.Instance
	c        *Controller
	problems *metrics.Problems
	events   *record.FakeRecorder
}

func (h *harness) startNoRun() *instance {
	h.t.Helper()
	i := &instance{Instance: h.NewInstance()}
	i.problems, i.events = i.NewProblems()
	var err error
	if i.c, err = New(&config.Controller{PodWorkers: 4}, i.Factory, i.NB, i.Tx, i.problems, queue.NewMetrics(i.Reg)); err != nil {
		h.t.Fatal(err)
	}
	i.Start(i.c.Queue, i.c.Start)
	return i
}

func (h *harness) start() *instance {
	h.t.Helper()
	return ctltest.Running(h.startNoRun())
}

// settle waits until at least n syncs succeeded and the queue is idle.
func (i *instance) settle(t *testing.T, n int) {
	t.Helper()
	i.WaitSynced(t, n)
	ctltest.WaitIdle(i.c.Queue)
}

// addGroup creates the cluster load balancer group, as the node
// controller does at start.
func (h *harness) addGroup() {
	h.t.Helper()
	ops, _, err := nbops.EnsureLoadBalancerGroup(h.NB, &nbdb.LoadBalancerGroup{Name: own.ClusterLBGroup})
	h.Write("group", ops, err)
}

// addNodeRows creates a node's switch and, with gw, its gateway router,
// as the node controller would.
func (h *harness) addNodeRows(node string, gw bool) {
	h.t.Helper()
	ids := own.IDs(own.KindNode, node, "")
	ops, _, err := nbops.EnsureSwitch(h.NB, &nbdb.LogicalSwitch{Name: own.NodeSwitch(node), ExternalIDs: ids})
	if err != nil {
		h.t.Fatal(err)
	}
	if gw {
		more, _, err := nbops.EnsureRouter(h.NB, &nbdb.LogicalRouter{Name: own.GatewayRouter(node), ExternalIDs: ids})
		if err != nil {
			h.t.Fatal(err)
		}
		ops = append(ops, more...)
	}
	h.Write("node "+node, ops, nil)
}

func (h *harness) deleteNodeRows(node string) {
	h.t.Helper()
	ops, err := nbops.DeleteRouter(h.NB, own.GatewayRouter(node))
	if err != nil {
		h.t.Fatal(err)
	}
	more, err := nbops.DeleteSwitch(h.NB, own.NodeSwitch(node))
	h.Write("delete node "+node, append(ops, more...), err)
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
	ctltest.Create(h.t, h.KC.CoreV1().Nodes(), n)
}

func (h *harness) deleteNode(name string) {
	h.t.Helper()
	ctltest.Delete(h.t, h.KC.CoreV1().Nodes(), name)
}

func (h *harness) createService(svc *corev1.Service) {
	h.t.Helper()
	ctltest.Create(h.t, h.KC.CoreV1().Services(svc.Namespace), svc)
}

func (h *harness) updateService(svc *corev1.Service) {
	h.t.Helper()
	ctltest.Update(h.t, h.KC.CoreV1().Services(svc.Namespace), svc)
}

func (h *harness) deleteService(ns, name string) {
	h.t.Helper()
	ctltest.Delete(h.t, h.KC.CoreV1().Services(ns), name)
}

func (h *harness) applySlice(es *discoveryv1.EndpointSlice) {
	h.t.Helper()
	api := h.KC.DiscoveryV1().EndpointSlices(es.Namespace)
	if _, err := api.Get(context.Background(), es.Name, metav1.GetOptions{}); err == nil {
		ctltest.Update(h.t, api, es)
		return
	}
	ctltest.Create(h.t, api, es)
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
	lb, err := nbops.GetLoadBalancer(h.NB, name)
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
	ctltest.WaitFor(h.t, func() error {
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
	if err := h.NB.List(ctx, &groups); err != nil {
		h.t.Fatal(err)
	}
	if err := h.NB.List(ctx, &lss); err != nil {
		h.t.Fatal(err)
	}
	if err := h.NB.List(ctx, &lrs); err != nil {
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
	g, err := nbops.GetLoadBalancerGroup(h.NB, own.ClusterLBGroup)
	if err != nil {
		return -1
	}
	return len(g.LoadBalancer)
}
