package node

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/client"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"

	"github.com/kovn-io/kovn/go-controller/pkg/config"
	"github.com/kovn-io/kovn/go-controller/pkg/controller/internal/ctltest"
	"github.com/kovn-io/kovn/go-controller/pkg/controller/queue"
	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/metrics"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

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
	t   *testing.T
	cfg *config.Controller
	*ctltest.Env
}

func newHarness(t *testing.T, cfg *config.Controller) *harness {
	t.Helper()
	return &harness{t: t, cfg: cfg, Env: ctltest.NewEnv(t)}
}

// instance is one run of the controller (see ctltest.Instance).
type instance struct {
	*ctltest.Instance
	c        *Controller
	problems *metrics.Problems
	events   *record.FakeRecorder
}

// startNoRun builds the controller, syncs its informers and calls Start,
// but runs no workers yet; Run starts them.
func (h *harness) startNoRun() *instance {
	h.t.Helper()
	i := &instance{Instance: h.NewInstance()}
	i.problems, i.events = i.NewProblems()
	nodes := i.Factory.Core().V1().Nodes()
	var err error
	if i.c, err = New(h.cfg, h.KC, nodes.Lister(), i.NB, i.Tx, i.problems, queue.NewMetrics(i.Reg)); err != nil {
		h.t.Fatal(err)
	}
	i.AddHandler(nodes.Informer(), i.c.Queue.Handler())
	i.Start(i.c.Queue, i.c.Start)
	return i
}

func (h *harness) start() *instance {
	h.t.Helper()
	return ctltest.Running(h.startNoRun())
}

func (i *instance) waitProblem(t *testing.T, reason string) {
	t.Helper()
	ctltest.WaitProblem(t, i.problems, "Node", reason)
}

func (h *harness) createNode(name string, annotations map[string]string) {
	h.t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations}}
	ctltest.Create(h.t, h.KC.CoreV1().Nodes(), n)
}

func (h *harness) patchNode(name string, annotations map[string]string, labels map[string]string) {
	h.t.Helper()
	patch := fmt.Sprintf(`{"metadata":{"annotations":%s,"labels":%s}}`, jsonMap(annotations), jsonMap(labels))
	if _, err := h.KC.CoreV1().Nodes().Patch(context.Background(), name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
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
	ctltest.Delete(h.t, h.KC.CoreV1().Nodes(), name)
}

// waitSubnet waits for the controller to record the node's subnet.
func (h *harness) waitSubnet(name string) netip.Prefix {
	h.t.Helper()
	var subnet netip.Prefix
	ctltest.WaitFor(h.t, func() error {
		n, err := h.KC.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
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
