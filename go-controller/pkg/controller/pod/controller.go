package pod

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/kovn-io/kovn/go-controller/pkg/config"
	"github.com/kovn-io/kovn/go-controller/pkg/controller/queue"
	"github.com/kovn-io/kovn/go-controller/pkg/ipam"
	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/metrics"
	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// Listers are the caches the controller reads.
type Listers struct {
	Pods       corelisters.PodLister
	Nodes      corelisters.NodeLister
	Namespaces corelisters.NamespaceLister
}

// Controller owns pod addresses and pod ports.
type Controller struct {
	cfg      *config.Controller
	kube     kubernetes.Interface
	l        Listers
	nb       client.Client
	tx       *nbops.Transactor
	problems *metrics.Problems
	Queue    *queue.Controller

	mu      sync.Mutex
	nodes   map[string]*nodeIPAM // node name → its allocator
	tracked map[string]assigned  // pod key → what it holds
	// waiting holds the pods refused for IPConflict, with the address
	// they asked for. Nothing about such a pod changes when the holder
	// goes, so the holder's release syncs them again.
	waiting map[string]netip.Addr
	// underlay is the one pool of underlay mode, shared by every node
	// and by the external ports (see Pool); nil in overlay mode.
	underlay *nodeIPAM
	// creating holds the namespace address sets a sync of ours is
	// creating, each with a channel closed once that sync's transaction
	// has returned: the other first pods of a namespace wait for it and
	// then add themselves to the set (see addressSetAdd).
	creating map[string]chan struct{}
}

type nodeIPAM struct {
	subnet  netip.Prefix
	gateway netip.Addr
	alloc   *ipam.IPAllocator
	ls      string // the logical switch its pods attach to
}

type assigned struct {
	node string
	ip   netip.Addr
}

// errRetry marks conditions that resolve by themselves (a node not yet
// given a subnet, an NB row not yet created): retried with backoff.
var errRetry = errors.New("not ready yet")

// New builds the controller; call Start once caches are synced.
func New(cfg *config.Controller, kc kubernetes.Interface, l Listers, nb client.Client,
	tx *nbops.Transactor, problems *metrics.Problems, qm *queue.Metrics) *Controller {
	c := &Controller{cfg: cfg, kube: kc, l: l, nb: nb, tx: tx, problems: problems,
		nodes: map[string]*nodeIPAM{}, tracked: map[string]assigned{}, waiting: map[string]netip.Addr{},
		creating: map[string]chan struct{}{}}
	c.Queue = queue.New("pod", cfg.PodWorkers, qm, c.sync)
	if cfg.Mode == "underlay" {
		c.underlay = underlayPool(cfg.Underlay)
	}
	return c
}

// underlayPool manages the physical subnet minus the router and the
// addresses others hold there. The configuration was validated, so the
// allocator cannot refuse it.
func underlayPool(u config.Underlay) *nodeIPAM {
	alloc, err := ipam.NewIPAllocator(u.Subnet, append([]netip.Addr{u.Gateway}, u.Exclude...)...)
	if err != nil {
		panic(fmt.Sprintf("underlay pool from validated configuration: %v", err))
	}
	return &nodeIPAM{subnet: u.Subnet, gateway: u.Gateway, alloc: alloc, ls: own.UnderlaySwitch}
}

// Pool is underlay mode's address pool, which external ports share with
// pods; nil in overlay mode.
func (c *Controller) Pool() *ipam.IPAllocator {
	if c.underlay == nil {
		return nil
	}
	return c.underlay.alloc
}

// Handler enqueues pods on the changes that matter to their network; our
// own annotation write echoing back is not one of them.
func (c *Controller) Handler() cache.ResourceEventHandler {
	h := c.Queue.Handler()
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj interface{}) { h.OnAdd(obj, false) },
		DeleteFunc: h.OnDelete,
		UpdateFunc: func(oldObj, newObj interface{}) {
			o, n := oldObj.(*corev1.Pod), newObj.(*corev1.Pod)
			if o.Spec.NodeName != n.Spec.NodeName || o.UID != n.UID || terminal(o) != terminal(n) ||
				o.Annotations[kube.PodIPRequestAnnotation] != n.Annotations[kube.PodIPRequestAnnotation] ||
				(o.Annotations[kube.PodNetworkAnnotation] != n.Annotations[kube.PodNetworkAnnotation] && !c.isOurs(n)) {
				h.OnUpdate(oldObj, newObj)
			}
		},
	}
}

// isOurs is true when the pod's annotation is the one we wrote.
func (c *Controller) isOurs(pod *corev1.Pod) bool {
	c.mu.Lock()
	a, ok := c.tracked[pod.Namespace+"/"+pod.Name]
	c.mu.Unlock()
	if !ok {
		return false
	}
	pn, err := kube.ParsePodNetwork(pod.Annotations[kube.PodNetworkAnnotation])
	return err == nil && len(pn.Addrs()) == 1 && pn.Addrs()[0] == a.ip
}

func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := c.l.Pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return c.teardown(ctx, key, ns, name)
	}
	if err != nil {
		return err
	}
	if !wantsPort(pod) {
		return c.teardown(ctx, key, ns, name)
	}
	ni, err := c.nodeIPAM(pod.Spec.NodeName)
	if err != nil {
		return err
	}
	// A pod of this name now on another node (recreated, its delete
	// missed or coalesced) gives up its old address first: the old
	// address must leave the namespace set before it can go to another pod.
	c.mu.Lock()
	prev, had := c.tracked[key]
	c.mu.Unlock()
	if had && prev.node != pod.Spec.NodeName {
		if err := c.teardown(ctx, key, ns, name); err != nil {
			return err
		}
	}
	ip, ok := c.assign(key, pod, ni)
	if !ok {
		return nil
	}
	pn := Network(ip, ni.subnet, ni.gateway, c.cfg.MTU)
	if err := c.annotate(ctx, pod, pn); err != nil {
		return err
	}
	ls, err := nbops.GetSwitch(c.nb, ni.ls)
	if err != nil {
		return fmt.Errorf("%w: switch %s of node %s: %v", errRetry, ni.ls, pod.Spec.NodeName, err)
	}
	ops, _, err := nbops.EnsureSwitchPort(c.nb, ls.UUID, Port(pod, pn))
	if err != nil {
		return err
	}
	setOps, created, err := c.addressSetAdd(ctx, ns, ip)
	if err != nil {
		return err
	}
	defer created()
	return c.tx.TransactBatched(ctx, "pod "+key, append(ops, setOps...))
}

// nodeIPAM returns the allocator of a node's subnet, made on first use from
// the subnet the node controller recorded on the Node.
func (c *Controller) nodeIPAM(node string) (*nodeIPAM, error) {
	if c.underlay != nil {
		c.mu.Lock()
		c.nodes[node] = c.underlay
		c.mu.Unlock()
		return c.underlay, nil
	}
	n, err := c.l.Nodes.Get(node)
	if err != nil {
		return nil, fmt.Errorf("%w: node %s: %v", errRetry, node, err)
	}
	subnets, err := kube.ParseNodeSubnets(n.Annotations[kube.NodeSubnetsAnnotation])
	if err != nil || len(subnets) == 0 {
		return nil, fmt.Errorf("%w: node %s has no subnet yet", errRetry, node)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ni, ok := c.nodes[node]; ok && ni.subnet == subnets[0] {
		return ni, nil
	}
	alloc, err := ipam.NewIPAllocator(subnets[0], ipam.GatewayIP(subnets[0]), ipam.ManagementIP(subnets[0]))
	if err != nil {
		return nil, err
	}
	ni := &nodeIPAM{subnet: subnets[0], gateway: ipam.GatewayIP(subnets[0]), alloc: alloc, ls: own.NodeSwitch(node)}
	c.nodes[node] = ni
	return ni, nil
}

// assign gives the pod its address: the one it already has, the one it
// asks for, or a free one. Bad requests are reported, not retried: the pod
// is synced again when it changes.
func (c *Controller) assign(key string, pod *corev1.Pod, ni *nodeIPAM) (netip.Addr, bool) {
	c.mu.Lock()
	prev, had := c.tracked[key]
	c.mu.Unlock()
	if had && prev.node != pod.Spec.NodeName {
		c.release(key)
		had = false
	}
	if had {
		return prev.ip, true
	}
	var want netip.Addr
	if s, ok := pod.Annotations[kube.PodNetworkAnnotation]; ok {
		if pn, err := kube.ParsePodNetwork(s); err == nil && len(pn.Addrs()) > 0 && ni.subnet.Contains(pn.Addrs()[0]) {
			want = pn.Addrs()[0]
		}
	}
	if s, ok := pod.Annotations[kube.PodIPRequestAnnotation]; ok && !want.IsValid() {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			c.mu.Lock()
			delete(c.waiting, key)
			c.mu.Unlock()
			c.problems.Report(pod, "Pod", "InvalidIPRequest", fmt.Sprintf("%s %q is not an IP address", kube.PodIPRequestAnnotation, s))
			return netip.Addr{}, false
		}
		want = ip
	}
	var err error
	if want.IsValid() {
		// Under mu, like release: a holder releasing between a refusal
		// and its recording would otherwise leave this pod waiting forever.
		c.mu.Lock()
		err = ni.alloc.AllocateStatic(key, want)
		if errors.Is(err, ipam.ErrConflict) {
			c.waiting[key] = want
		} else {
			delete(c.waiting, key)
		}
		c.mu.Unlock()
	} else {
		want, err = ni.alloc.Allocate(key)
	}
	if err != nil {
		reason := "IPUnavailable"
		switch {
		case errors.Is(err, ipam.ErrExhausted):
			reason = "NodeSubnetExhausted"
			// Freed addresses have no event of their own: look again later.
			c.Queue.EnqueueAfter(key, 30*time.Second)
		case errors.Is(err, ipam.ErrConflict):
			reason = "IPConflict"
		case errors.Is(err, ipam.ErrOutOfRange):
			reason = "IPOutOfRange"
		}
		c.problems.Report(pod, "Pod", reason, err.Error())
		return netip.Addr{}, false
	}
	c.mu.Lock()
	c.tracked[key] = assigned{node: pod.Spec.NodeName, ip: want}
	c.mu.Unlock()
	return want, true
}

// annotate writes the pod-network annotation unless it already says that.
func (c *Controller) annotate(ctx context.Context, pod *corev1.Pod, pn *kube.PodNetwork) error {
	val, err := pn.Marshal()
	if err != nil {
		return err
	}
	if pod.Annotations[kube.PodNetworkAnnotation] == val {
		return nil
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, kube.PodNetworkAnnotation, val)
	_, err = c.kube.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.MergePatchType, []byte(patch),
		metav1.PatchOptions{FieldManager: "kovn-controller"})
	if apierrors.IsNotFound(err) {
		return nil // deleted meanwhile; the delete event tears down
	}
	return err
}

// addressSetAdd returns the ops that put ip into its namespace's address
// set, creating the set when it is missing (unless the namespace is going
// away), and a func to call once their transaction has returned.
//
// A missing set is inserted, never "ensured": EnsureAddressSet on a set
// that appeared since the lookup (another pod's sync, the namespace or
// externalport controller made it) would replace its members with ip,
// silently dropping theirs. With a plain insert OVSDB's name index refuses
// the transaction instead, and the retry adds ip to the set.
//
// The first pods of a namespace all find the set missing; so that they do
// not each insert it and all but one fail, one sync claims the creation
// and the others wait for its transaction, then find the set and add to it.
func (c *Controller) addressSetAdd(ctx context.Context, ns string, ip netip.Addr) ([]ovsdb.Operation, func(), error) {
	name := own.NamespaceAddressSet(ns, family(ip))
	for {
		ops, err := nbops.AddressSetAdd(c.nb, name, ip.String())
		if !errors.Is(err, nbops.ErrNotFound) {
			return ops, func() {}, err
		}
		if n, err := c.l.Namespaces.Get(ns); err != nil || n.DeletionTimestamp != nil {
			return nil, func() {}, nil
		}
		c.mu.Lock()
		creator, busy := c.creating[name]
		if !busy {
			creator = make(chan struct{})
			c.creating[name] = creator
		}
		c.mu.Unlock()
		if busy {
			select {
			case <-creator:
				continue
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			}
		}
		release := func() {
			c.mu.Lock()
			delete(c.creating, name)
			c.mu.Unlock()
			close(creator)
		}
		// A creator that finished between the lookup above and the claim
		// has its set in the cache by now (the Transactor waits for the
		// rows it inserted before returning): look again.
		ops, err = nbops.AddressSetAdd(c.nb, name, ip.String())
		if !errors.Is(err, nbops.ErrNotFound) {
			release()
			return ops, func() {}, err
		}
		ops, _, err = nbops.CreateAddressSet(c.nb, &nbdb.AddressSet{
			Name: name, Addresses: []string{ip.String()}, ExternalIDs: own.IDs(own.KindNamespace, ns, family(ip)),
		})
		if err != nil {
			release()
			return nil, nil, err
		}
		return ops, release, nil
	}
}

// teardown removes a pod's port and address.
func (c *Controller) teardown(ctx context.Context, key, ns, name string) error {
	c.mu.Lock()
	a, ok := c.tracked[key]
	c.mu.Unlock()
	ops, err := nbops.DeleteSwitchPort(c.nb, own.PodPort(ns, name))
	if err != nil {
		return err
	}
	if ok {
		rm, err := nbops.AddressSetRemove(c.nb, own.NamespaceAddressSet(ns, family(a.ip)), a.ip.String())
		if err != nil && !errors.Is(err, nbops.ErrNotFound) {
			return err
		}
		ops = append(ops, rm...)
	}
	if err := c.tx.TransactBatched(ctx, "delete pod "+key, ops); err != nil {
		return err
	}
	// Only now may the address go to another pod: the old port is gone.
	c.release(key)
	return nil
}

// release frees a pod's address and syncs again the pods that were
// refused it for IPConflict.
func (c *Controller) release(key string) {
	c.mu.Lock()
	delete(c.waiting, key)
	a, ok := c.tracked[key]
	if !ok {
		c.mu.Unlock()
		return
	}
	if ni, ok := c.nodes[a.node]; ok {
		ni.alloc.Release(key)
	}
	delete(c.tracked, key)
	var next []string
	for k, ip := range c.waiting {
		if ip == a.ip {
			next = append(next, k)
			delete(c.waiting, k)
		}
	}
	c.mu.Unlock()
	for _, k := range next {
		c.Queue.Enqueue(k)
	}
}
