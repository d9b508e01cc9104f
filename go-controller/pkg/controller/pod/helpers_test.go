package pod

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"

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

// harness is the world outside the pod controller: a fake API and an NB
// database with node switches, which outlive controller instances.
type harness struct {
	t      *testing.T
	cfg    *config.Controller
	kc     *fake.Clientset
	nbAddr string
	nb     client.Client     // the test's own view of NB
	tx     *nbops.Transactor // the test's own writes (node switches)
	uid    map[string]int    // pod key → incarnation, for UIDs
	mu     sync.Mutex        // guards early and reannotate
	early  []string          // pods annotated while their port already existed
	// reannotate: pods whose annotation a test removed, so that it is
	// written again while the port exists.
	reannotate map[string]bool
}

func newHarness(t *testing.T, cfg *config.Controller) *harness {
	t.Helper()
	db := testenv.StartInMemoryNB(t)
	nb := connectNB(t, db.Addr)
	h := &harness{t: t, cfg: cfg, kc: fake.NewClientset(), nbAddr: db.Addr, nb: nb,
		tx: nbops.NewTransactor(nb, nil), uid: map[string]int{}, reannotate: map[string]bool{}}
	// The pod-network annotation must be written before the port of
	// that pod (that UID) exists: kovn-node plumbs from the annotation.
	h.kc.PrependReactor("patch", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		pa := a.(k8stesting.PatchAction)
		obj, err := h.kc.Tracker().Get(corev1.SchemeGroupVersion.WithResource("pods"), pa.GetNamespace(), pa.GetName())
		if err != nil {
			return false, nil, nil
		}
		lsp, err := nbops.GetSwitchPort(h.nb, own.PodPort(pa.GetNamespace(), pa.GetName()))
		key := pa.GetNamespace() + "/" + pa.GetName()
		h.mu.Lock()
		defer h.mu.Unlock()
		if err == nil && lsp.ExternalIDs[own.PodUIDKey] == string(obj.(*corev1.Pod).UID) && !h.reannotate[key] {
			h.early = append(h.early, key)
		}
		return false, nil, nil
	})
	t.Cleanup(func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if len(h.early) > 0 {
			t.Errorf("pods annotated after their port existed: %v", h.early)
		}
	})
	return h
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

// addNode does the node controller's part: the Node's subnet annotation
// and its switch in NB.
func (h *harness) addNode(name, subnet string) {
	h.t.Helper()
	s := netip.MustParsePrefix(subnet)
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name,
		Annotations: map[string]string{kube.NodeSubnetsAnnotation: kube.MarshalNodeSubnets([]netip.Prefix{s})}}}
	if _, err := h.kc.CoreV1().Nodes().Create(context.Background(), n, metav1.CreateOptions{}); err != nil {
		h.t.Fatal(err)
	}
	ops, _, err := nbops.EnsureSwitch(h.nb, &nbdb.LogicalSwitch{Name: name,
		OtherConfig: map[string]string{"subnet": subnet, "exclude_ips": ipam.ManagementIP(s).String()},
		ExternalIDs: own.IDs(own.KindNode, name, "")})
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.tx.Transact(context.Background(), "test node "+name, ops); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) addNamespace(name string) {
	h.t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := h.kc.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

func requestIP(ip string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		p.Annotations[kube.PodIPRequestAnnotation] = ip
	}
}

func hostNetwork(p *corev1.Pod) { p.Spec.HostNetwork = true }

func phase(ph corev1.PodPhase) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.Status.Phase = ph }
}

// newPod builds the next incarnation of ns/name (a new UID every time).
func (h *harness) newPod(ns, name, node string, mods ...func(*corev1.Pod)) *corev1.Pod {
	h.uid[ns+"/"+name]++
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(fmt.Sprintf("%s-%s-%d", ns, name, h.uid[ns+"/"+name]))},
		Spec:       corev1.PodSpec{NodeName: node},
		Status:     corev1.PodStatus{Phase: corev1.PodPending},
	}
	for _, m := range mods {
		m(p)
	}
	return p
}

func (h *harness) createPod(ns, name, node string, mods ...func(*corev1.Pod)) *corev1.Pod {
	h.t.Helper()
	p, err := h.kc.CoreV1().Pods(ns).Create(context.Background(), h.newPod(ns, name, node, mods...), metav1.CreateOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

func (h *harness) getPod(ns, name string) *corev1.Pod {
	h.t.Helper()
	p, err := h.kc.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

func (h *harness) updatePod(p *corev1.Pod) {
	h.t.Helper()
	if _, err := h.kc.CoreV1().Pods(p.Namespace).Update(context.Background(), p, metav1.UpdateOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) deletePod(ns, name string) {
	h.t.Helper()
	if err := h.kc.CoreV1().Pods(ns).Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

// patches counts patch actions on pods.
func (h *harness) patches() int {
	n := 0
	for _, a := range h.kc.Actions() {
		if a.GetVerb() == "patch" && a.GetResource().Resource == "pods" {
			n++
		}
	}
	return n
}

// setAddrs returns the addresses of a namespace's v4 set (nil if absent).
func (h *harness) setAddrs(ns string) map[string]bool {
	as, err := nbops.GetAddressSet(h.nb, own.NamespaceAddressSet(ns, "v4"))
	if err != nil {
		return nil
	}
	out := map[string]bool{}
	for _, a := range as.Addresses {
		out[a] = true
	}
	return out
}

// ready checks that a pod is fully programmed: annotation, a port that
// matches it and belongs to this incarnation, on its node's switch, and
// its address in the namespace set. It returns the pod's address.
func (h *harness) ready(ns, name string) (netip.Addr, error) {
	p, err := h.kc.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return netip.Addr{}, err
	}
	pn, err := kube.ParsePodNetwork(p.Annotations[kube.PodNetworkAnnotation])
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%s/%s: %v", ns, name, err)
	}
	ip := pn.Addrs()[0]
	lsp, err := nbops.GetSwitchPort(h.nb, own.PodPort(ns, name))
	if err != nil {
		return ip, err
	}
	want := pn.MAC + " " + ip.String()
	if !slices.Equal(lsp.Addresses, []string{want}) || !slices.Equal(lsp.PortSecurity, []string{want}) {
		return ip, fmt.Errorf("port %s addresses %v port_security %v, annotation says %q", lsp.Name, lsp.Addresses, lsp.PortSecurity, want)
	}
	if lsp.Options["iface-id-ver"] != string(p.UID) || lsp.Options["requested-chassis"] != p.Spec.NodeName {
		return ip, fmt.Errorf("port %s options %v, pod UID %s on %s", lsp.Name, lsp.Options, p.UID, p.Spec.NodeName)
	}
	ls, err := nbops.GetSwitch(h.nb, p.Spec.NodeName)
	if err != nil {
		return ip, err
	}
	if !slices.Contains(ls.Ports, lsp.UUID) {
		return ip, fmt.Errorf("port %s is not on switch %s", lsp.Name, ls.Name)
	}
	if !h.setAddrs(ns)[ip.String()] {
		return ip, fmt.Errorf("address set of %s lacks %s: %v", ns, ip, h.setAddrs(ns))
	}
	return ip, nil
}

func (h *harness) waitReady(ns, name string) netip.Addr {
	h.t.Helper()
	var ip netip.Addr
	testenv.WaitFor(h.t, waitTimeout, func() (err error) {
		ip, err = h.ready(ns, name)
		return err
	})
	return ip
}

// waitGone waits until a pod has no port and ip is out of its set.
func (h *harness) waitGone(ns, name string, ip netip.Addr) {
	h.t.Helper()
	testenv.WaitFor(h.t, waitTimeout, func() error {
		if _, err := nbops.GetSwitchPort(h.nb, own.PodPort(ns, name)); err == nil {
			return fmt.Errorf("port of %s/%s still there", ns, name)
		}
		if h.setAddrs(ns)[ip.String()] {
			return fmt.Errorf("%s still in the set of %s", ip, ns)
		}
		return nil
	})
}

// noNetwork checks that a pod got neither an annotation nor a port.
func (h *harness) noNetwork(ns, name string) {
	h.t.Helper()
	if v, ok := h.getPod(ns, name).Annotations[kube.PodNetworkAnnotation]; ok {
		h.t.Errorf("%s/%s annotated: %s", ns, name, v)
	}
	if _, err := nbops.GetSwitchPort(h.nb, own.PodPort(ns, name)); err == nil {
		h.t.Errorf("%s/%s has a port", ns, name)
	}
}

// instance is one run of the pod controller, with its own NB connection,
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

// startNoRun builds the controller, syncs its informers and calls Start;
// run starts the workers.
func (h *harness) startNoRun() *instance {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	nb := connectNB(h.t, h.nbAddr)
	reg := prometheus.NewRegistry()
	i := &instance{tx: nbops.NewTransactor(nb, nil), events: record.NewFakeRecorder(1000), reg: reg}
	i.problems = metrics.NewProblems(i.events, reg)
	factory := informers.NewSharedInformerFactory(h.kc, 0)
	core := factory.Core().V1()
	i.c = New(h.cfg, h.kc, Listers{Pods: core.Pods().Lister(), Nodes: core.Nodes().Lister(), Namespaces: core.Namespaces().Lister()},
		nb, i.tx, i.problems, queue.NewMetrics(reg))
	if _, err := core.Pods().Informer().AddEventHandler(i.c.Handler()); err != nil {
		h.t.Fatal(err)
	}
	core.Nodes().Informer()
	core.Namespaces().Informer()
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	runDone := make(chan struct{})
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
		if i.problems.Count("Pod", reason) < 1 {
			return fmt.Errorf("no %s problem reported", reason)
		}
		return nil
	})
}

// held tells whether the controller still holds an address for a pod.
func (c *Controller) held(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.tracked[key]
	return ok
}
