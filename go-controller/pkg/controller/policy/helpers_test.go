package policy

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kovn-io/kovn/go-controller/pkg/config"
	"github.com/kovn-io/kovn/go-controller/pkg/controller/queue"
	"github.com/kovn-io/kovn/go-controller/pkg/ipam"
	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/metrics"
	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
	"github.com/kovn-io/kovn/go-controller/pkg/testenv"
)

const waitTimeout = 10 * time.Second

type ovsdbOp = ovsdb.Operation

// harness is a fake API and an NB database that outlive controller
// instances; the test plays the pod controller (annotations and ports).
type harness struct {
	t      *testing.T
	kc     *fake.Clientset
	nbAddr string
	nb     client.Client
	tx     *nbops.Transactor // the test's own writes
	ls     string            // UUID of the node switch pod ports live on
	uid    int
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	return newHarnessAt(t, testenv.StartInMemoryNB(t).Addr)
}

func newHarnessAt(t *testing.T, addr string) *harness {
	t.Helper()
	nb := connectNB(t, addr)
	h := &harness{t: t, kc: fake.NewClientset(), nbAddr: addr, nb: nb, tx: nbops.NewTransactor(nb, nil)}
	h.apply("node switch", func() ([]ovsdbOp, error) {
		ops, _, err := nbops.EnsureSwitch(nb, &nbdb.LogicalSwitch{Name: "n1", ExternalIDs: own.IDs(own.KindNode, "n1", "")})
		return ops, err
	})
	testenv.WaitFor(t, waitTimeout, func() error {
		ls, err := nbops.GetSwitch(nb, "n1")
		if err == nil {
			h.ls = ls.UUID
		}
		return err
	})
	return h
}

func connectNB(t *testing.T, addr string) client.Client {
	t.Helper()
	m, err := nbops.ClientDBModel()
	if err != nil {
		t.Fatal(err)
	}
	return testenv.Connect(t, addr, m)
}

func (h *harness) apply(desc string, build func() ([]ovsdbOp, error)) {
	h.t.Helper()
	ops, err := build()
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.tx.Transact(context.Background(), desc, ops); err != nil {
		h.t.Fatal(err)
	}
}

type instance struct {
	c        *Controller
	tx       *nbops.Transactor
	reg      *prometheus.Registry
	problems *metrics.Problems
	stop     func()
	run      func()
}

func (h *harness) startNoRun() *instance {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	nb := connectNB(h.t, h.nbAddr)
	factory := informers.NewSharedInformerFactory(h.kc, 0)
	i := &instance{tx: nbops.NewTransactor(nb, nil), reg: prometheus.NewRegistry(), problems: metrics.NewProblems(nil, nil)}
	var err error
	i.c, err = New(&config.Controller{PodWorkers: 4}, factory, nb, i.tx, i.problems, queue.NewMetrics(i.reg))
	if err != nil {
		h.t.Fatal(err)
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	runDone := make(chan struct{})
	var ran bool
	i.stop = sync.OnceFunc(func() {
		if ran {
			waitIdle(i.c.Queue)
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

// settle waits until the queue has been idle for a while.
func (i *instance) settle(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if !queue.WaitIdle(ctx, 100*time.Millisecond, i.c.Queue) {
		t.Fatal("queue did not go idle")
	}
}

// txSince returns the transactions and ops sent since the last call.
func (i *instance) delta() func() (uint64, uint64) {
	t0, o0 := i.tx.Stats()
	return func() (uint64, uint64) {
		t1, o1 := i.tx.Stats()
		return t1 - t0, o1 - o0
	}
}

func (h *harness) namespace(name string, lbls map[string]string, ann map[string]string) {
	h.t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls, Annotations: ann}}
	if _, err := h.kc.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) updateNamespace(name string, mod func(*corev1.Namespace)) {
	h.t.Helper()
	ns, err := h.kc.CoreV1().Namespaces().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	mod(ns)
	if _, err := h.kc.CoreV1().Namespaces().Update(context.Background(), ns, metav1.UpdateOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

type podSpec struct {
	ns, name, ip string
	labels       map[string]string
	ports        []corev1.ContainerPort
	noPort       bool // no logical switch port yet
}

func namedPort(name string, n int32) corev1.ContainerPort {
	return corev1.ContainerPort{Name: name, ContainerPort: n, Protocol: corev1.ProtocolTCP}
}

// pod creates a pod as the pod controller leaves it: annotated with its
// address, and (unless noPort) with its logical switch port.
func (h *harness) pod(p podSpec) {
	h.t.Helper()
	h.uid++
	ip := netip.MustParseAddr(p.ip)
	pn := &kube.PodNetwork{IPs: []string{p.ip + "/24"}, MAC: ipam.MACFromIP(ip).String(), Gateway: []string{"10.128.0.1"}, MTU: 1400}
	ann, err := pn.Marshal()
	if err != nil {
		h.t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: p.ns, Name: p.name, Labels: p.labels, UID: types.UID(fmt.Sprintf("uid-%d", h.uid)),
			Annotations: map[string]string{kube.PodNetworkAnnotation: ann}},
		Spec:   corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Ports: p.ports}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
	if _, err := h.kc.CoreV1().Pods(p.ns).Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		h.t.Fatal(err)
	}
	if !p.noPort {
		h.port(p.ns, p.name)
	}
}

// port creates a pod's logical switch port, as the pod controller does.
func (h *harness) port(ns, name string) {
	h.t.Helper()
	pod, err := h.kc.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	ids := own.IDs(own.KindPod, ns+"/"+name, "")
	ids[own.PodUIDKey] = string(pod.UID)
	h.apply("port "+name, func() ([]ovsdbOp, error) {
		ops, _, err := nbops.EnsureSwitchPort(h.nb, h.ls, &nbdb.LogicalSwitchPort{Name: own.PodPort(ns, name), ExternalIDs: ids})
		return ops, err
	})
	testenv.WaitFor(h.t, waitTimeout, func() error { _, err := nbops.GetSwitchPort(h.nb, own.PodPort(ns, name)); return err })
}

func (h *harness) relabelPod(ns, name string, lbls map[string]string) {
	h.t.Helper()
	pod, err := h.kc.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	pod.Labels = lbls
	if _, err := h.kc.CoreV1().Pods(ns).Update(context.Background(), pod, metav1.UpdateOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) deletePod(ns, name string) {
	h.t.Helper()
	if err := h.kc.CoreV1().Pods(ns).Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
		h.t.Fatal(err)
	}
	h.apply("delete port "+name, func() ([]ovsdbOp, error) { return nbops.DeleteSwitchPort(h.nb, own.PodPort(ns, name)) })
}

func (h *harness) policy(p *networkingv1.NetworkPolicy) {
	h.t.Helper()
	if _, err := h.kc.NetworkingV1().NetworkPolicies(p.Namespace).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) updatePolicy(p *networkingv1.NetworkPolicy) {
	h.t.Helper()
	if _, err := h.kc.NetworkingV1().NetworkPolicies(p.Namespace).Update(context.Background(), p, metav1.UpdateOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) deletePolicy(ns, name string) {
	h.t.Helper()
	if err := h.kc.NetworkingV1().NetworkPolicies(ns).Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

// members returns the pods (ns_name) in a port group, or nil and false
// when it does not exist.
func (h *harness) members(pg string) ([]string, bool) {
	g, err := nbops.GetPortGroup(h.nb, pg)
	if err != nil {
		return nil, false
	}
	var out []string
	for _, u := range g.Ports {
		lsp := &nbdb.LogicalSwitchPort{UUID: u}
		if err := h.nb.Get(context.Background(), lsp); err == nil {
			out = append(out, lsp.Name)
		}
	}
	slices.Sort(out)
	return out, true
}

// waitMembers waits until pg exists and holds exactly these ports.
func (h *harness) waitMembers(pg string, want ...string) {
	h.t.Helper()
	slices.Sort(want)
	testenv.WaitFor(h.t, waitTimeout, func() error {
		got, ok := h.members(pg)
		if !ok || !slices.Equal(got, want) {
			return fmt.Errorf("port group %s: %v (exists %v), want %v", pg, got, ok, want)
		}
		return nil
	})
}

// waitNoGroup waits until pg does not exist.
func (h *harness) waitNoGroup(pg string) {
	h.t.Helper()
	testenv.WaitFor(h.t, waitTimeout, func() error {
		if got, ok := h.members(pg); ok {
			return fmt.Errorf("port group %s still exists (%v)", pg, got)
		}
		return nil
	})
}

// waitAddrs waits until an address set exists and holds exactly want.
func (h *harness) waitAddrs(name string, want ...string) {
	h.t.Helper()
	slices.Sort(want)
	testenv.WaitFor(h.t, waitTimeout, func() error {
		as, err := nbops.GetAddressSet(h.nb, name)
		if err != nil {
			return err
		}
		if got := slices.Sorted(slices.Values(as.Addresses)); !slices.Equal(got, want) {
			return fmt.Errorf("address set %s: %v, want %v", name, got, want)
		}
		return nil
	})
}

// waitNoSet waits until an address set does not exist.
func (h *harness) waitNoSet(name string) {
	h.t.Helper()
	testenv.WaitFor(h.t, waitTimeout, func() error {
		if as, err := nbops.GetAddressSet(h.nb, name); err == nil {
			return fmt.Errorf("address set %s still exists (%v)", name, as.Addresses)
		}
		return nil
	})
}

// acls returns the ACLs of a port group by id.
func (h *harness) acls(pg string) map[string]*nbdb.ACL {
	out := map[string]*nbdb.ACL{}
	g, err := nbops.GetPortGroup(h.nb, pg)
	if err != nil {
		return out
	}
	for _, u := range g.ACLs {
		a := &nbdb.ACL{UUID: u}
		if err := h.nb.Get(context.Background(), a); err == nil {
			out[a.ExternalIDs[own.IDKey]] = a
		}
	}
	return out
}

// waitACL waits until pg's ACL id satisfies ok (a nil ACL: absent).
func (h *harness) waitACL(pg, id string, ok func(*nbdb.ACL) error) *nbdb.ACL {
	h.t.Helper()
	var a *nbdb.ACL
	testenv.WaitFor(h.t, waitTimeout, func() error {
		a = h.acls(pg)[id]
		return ok(a)
	})
	return a
}

func matchIs(want string) func(*nbdb.ACL) error {
	return func(a *nbdb.ACL) error {
		if a == nil || a.Match != want {
			return fmt.Errorf("ACL %v, want match %q", a, want)
		}
		return nil
	}
}

func absent(a *nbdb.ACL) error {
	if a != nil {
		return fmt.Errorf("ACL %s still there", a.Match)
	}
	return nil
}

func testWait(t *testing.T, cond func() error) {
	t.Helper()
	testenv.WaitFor(t, waitTimeout, cond)
}

func ctxBG() context.Context { return context.Background() }
