package pod

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	corelisters "k8s.io/client-go/listers/core/v1"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"

	"github.com/kovn-io/kovn/go-controller/pkg/config"
	"github.com/kovn-io/kovn/go-controller/pkg/controller/internal/ctltest"
	"github.com/kovn-io/kovn/go-controller/pkg/controller/queue"
	"github.com/kovn-io/kovn/go-controller/pkg/ipam"
	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/metrics"
	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
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

// harness is the world outside the pod controller: a fake API and an NB
// database with node switches, which outlive controller instances.
type harness struct {
	t   *testing.T
	cfg *config.Controller
	*ctltest.Env
	uid   map[string]int // pod key → incarnation, for UIDs
	mu    sync.Mutex     // guards early and reannotate
	early []string       // pods annotated while their port already existed
	// reannotate: pods whose annotation a test removed, so that it is
	// written again while the port exists.
	reannotate map[string]bool
	// namespaces, if set, wraps the namespace lister of the instances
	// started from now on (i is the instance being built).
	namespaces func(l corelisters.NamespaceLister, i *ctltest.Instance) corelisters.NamespaceLister
}

func newHarness(t *testing.T, cfg *config.Controller) *harness {
	t.Helper()
	h := &harness{t: t, cfg: cfg, Env: ctltest.NewEnv(t), uid: map[string]int{}, reannotate: map[string]bool{}}
	// The pod-network annotation must be written before the port of
	// that pod (that UID) exists: kovn-node plumbs from the annotation.
	h.KC.PrependReactor("patch", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		pa := a.(k8stesting.PatchAction)
		obj, err := h.KC.Tracker().Get(corev1.SchemeGroupVersion.WithResource("pods"), pa.GetNamespace(), pa.GetName())
		if err != nil {
			return false, nil, nil
		}
		lsp, err := nbops.GetSwitchPort(h.NB, own.PodPort(pa.GetNamespace(), pa.GetName()))
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

// addNode does the node controller's part: the Node's subnet annotation
// and its switch in NB.
func (h *harness) addNode(name, subnet string) {
	h.t.Helper()
	s := netip.MustParsePrefix(subnet)
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name,
		Annotations: map[string]string{kube.NodeSubnetsAnnotation: kube.MarshalNodeSubnets([]netip.Prefix{s})}}}
	ctltest.Create(h.t, h.KC.CoreV1().Nodes(), n)
	ops, _, err := nbops.EnsureSwitch(h.NB, &nbdb.LogicalSwitch{Name: name,
		OtherConfig: map[string]string{"subnet": subnet, "exclude_ips": ipam.ManagementIP(s).String()},
		ExternalIDs: own.IDs(own.KindNode, name, "")})
	h.Write("test node "+name, ops, err)
}

func (h *harness) addNamespace(name string) {
	h.t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	ctltest.Create(h.t, h.KC.CoreV1().Namespaces(), ns)
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
	return ctltest.Create(h.t, h.KC.CoreV1().Pods(ns), h.newPod(ns, name, node, mods...))
}

func (h *harness) getPod(ns, name string) *corev1.Pod {
	h.t.Helper()
	p, err := h.KC.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

func (h *harness) updatePod(p *corev1.Pod) {
	h.t.Helper()
	ctltest.Update(h.t, h.KC.CoreV1().Pods(p.Namespace), p)
}

func (h *harness) deletePod(ns, name string) {
	h.t.Helper()
	ctltest.Delete(h.t, h.KC.CoreV1().Pods(ns), name)
}

// setAddrs returns the addresses of a namespace's v4 set (nil if absent).
func (h *harness) setAddrs(ns string) map[string]bool {
	as, err := nbops.GetAddressSet(h.NB, own.NamespaceAddressSet(ns, "v4"))
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
	p, err := h.KC.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return netip.Addr{}, err
	}
	pn, err := kube.ParsePodNetwork(p.Annotations[kube.PodNetworkAnnotation])
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%s/%s: %v", ns, name, err)
	}
	ip := pn.Addrs()[0]
	lsp, err := nbops.GetSwitchPort(h.NB, own.PodPort(ns, name))
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
	ls, err := nbops.GetSwitch(h.NB, p.Spec.NodeName)
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
	ctltest.WaitFor(h.t, func() (err error) {
		ip, err = h.ready(ns, name)
		return err
	})
	return ip
}

// waitGone waits until a pod has no port and ip is out of its set.
func (h *harness) waitGone(ns, name string, ip netip.Addr) {
	h.t.Helper()
	ctltest.WaitFor(h.t, func() error {
		if _, err := nbops.GetSwitchPort(h.NB, own.PodPort(ns, name)); err == nil {
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
	if _, err := nbops.GetSwitchPort(h.NB, own.PodPort(ns, name)); err == nil {
		h.t.Errorf("%s/%s has a port", ns, name)
	}
}

// instance is one run of the pod controller (see ctltest.Instance).
type instance struct {
	*ctltest.Instance
	c        *Controller
	problems *metrics.Problems
	events   *record.FakeRecorder
}

// startNoRun builds the controller, syncs its informers and calls Start;
// Run starts the workers.
func (h *harness) startNoRun() *instance {
	h.t.Helper()
	i := &instance{Instance: h.NewInstance()}
	i.problems, i.events = i.NewProblems()
	core := i.Factory.Core().V1()
	namespaces := core.Namespaces().Lister()
	if h.namespaces != nil {
		namespaces = h.namespaces(namespaces, i.Instance)
	}
	i.c = New(h.cfg, h.KC, Listers{Pods: core.Pods().Lister(), Nodes: core.Nodes().Lister(), Namespaces: namespaces},
		i.NB, i.Tx, i.problems, queue.NewMetrics(i.Reg))
	i.AddHandler(core.Pods().Informer(), i.c.Handler())
	core.Nodes().Informer()
	core.Namespaces().Informer()
	i.Start(i.c.Queue, i.c.Start)
	return i
}

func (h *harness) start() *instance {
	h.t.Helper()
	return ctltest.Running(h.startNoRun())
}

func (i *instance) waitProblem(t *testing.T, reason string) {
	t.Helper()
	ctltest.WaitProblem(t, i.problems, "Pod", reason)
}

// held tells whether the controller still holds an address for a pod.
func (c *Controller) held(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.tracked[key]
	return ok
}
