package policy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	ovsdbcache "github.com/ovn-kubernetes/libovsdb/cache"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
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

// Queue keys: one queue serves every kind, so the workqueue's rule that a
// key is never synced twice at once holds per policy, pod and namespace.
const (
	keyPolicy    = "policy/"
	keyPod       = "pod/"
	keyNamespace = "namespace/"
	keyNodes     = "nodes"
	// keyExternalPort: ExternalPorts are policy members like pods.
	keyExternalPort = "externalport/"
)

// Controller programs NetworkPolicies.
type Controller struct {
	policies   networkinglisters.NetworkPolicyLister
	pods       corelisters.PodLister
	namespaces corelisters.NamespaceLister
	nodes      corelisters.NodeLister
	extPorts   cache.GenericLister // nil without the ExternalPort CRD
	nb         client.Client
	tx         *nbops.Transactor
	problems   *metrics.Problems
	// Queue holds policy, pod, namespace and node keys; run it after Start.
	Queue *queue.Controller
	idx   *index
	// underlay: nodes reach pods from their own addresses, not through a
	// management port.
	underlay bool
}

// New builds the controller and registers its handlers on f's
// NetworkPolicy, Pod, Namespace and Node informers, on the ExternalPort
// informer (nil: none) and on the NB cache (pod ports appearing). Call
// Start once the caches have synced.
func New(cfg *config.Controller, f informers.SharedInformerFactory, extPorts informers.GenericInformer, nb client.Client, tx *nbops.Transactor,
	problems *metrics.Problems, qm *queue.Metrics) (*Controller, error) {
	nps, pods := f.Networking().V1().NetworkPolicies(), f.Core().V1().Pods()
	nss, nodes := f.Core().V1().Namespaces(), f.Core().V1().Nodes()
	c := &Controller{
		policies: nps.Lister(), pods: pods.Lister(), namespaces: nss.Lister(), nodes: nodes.Lister(),
		nb: nb, tx: tx, problems: problems, idx: newIndex(), underlay: cfg.Mode == "underlay",
	}
	// Pod syncs dominate, and their work under the index lock is small:
	// the workers mostly wait for (batched) transactions.
	c.Queue = queue.New("policy", max(cfg.PodWorkers, 1), qm, c.sync)
	handlers := []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandler
	}{
		{nps.Informer(), c.keyHandler(keyPolicy, nil)},
		{pods.Informer(), c.keyHandler(keyPod, podChanged)},
		{nss.Informer(), c.keyHandler(keyNamespace, namespaceChanged)},
		{nodes.Informer(), c.nodeHandler()},
	}
	if extPorts != nil {
		c.extPorts = extPorts.Lister()
		handlers = append(handlers, struct {
			inf cache.SharedIndexInformer
			h   cache.ResourceEventHandler
		}{extPorts.Informer(), c.keyHandler(keyExternalPort, externalPortChanged)})
	}
	for _, h := range handlers {
		if _, err := h.inf.AddEventHandler(h.h); err != nil {
			return nil, fmt.Errorf("policy controller: %w", err)
		}
	}
	nb.Cache().AddEventHandler(c.portHandler())
	return c, nil
}

// keyHandler enqueues prefix+key on add and delete, and on update when
// changed says so (nil: always).
func (c *Controller) keyHandler(prefix string, changed func(o, n interface{}) bool) cache.ResourceEventHandler {
	enqueue := func(obj interface{}) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			c.Queue.Enqueue(prefix + key)
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue,
		UpdateFunc: func(o, n interface{}) {
			if changed == nil || changed(o, n) {
				enqueue(n)
			}
		},
		DeleteFunc: enqueue,
	}
}

// podChanged: status updates are frequent; only these matter to policies.
func podChanged(o, n interface{}) bool {
	a, b := o.(*corev1.Pod), n.(*corev1.Pod)
	return !maps.Equal(a.Labels, b.Labels) || a.UID != b.UID || a.Spec.NodeName != b.Spec.NodeName ||
		a.Annotations[kube.PodNetworkAnnotation] != b.Annotations[kube.PodNetworkAnnotation] ||
		terminal(a) != terminal(b) || !slices.Equal(a.Status.PodIPs, b.Status.PodIPs)
}

func namespaceChanged(o, n interface{}) bool {
	a, b := o.(*corev1.Namespace), n.(*corev1.Namespace)
	return !maps.Equal(a.Labels, b.Labels) || a.Annotations[ACLLoggingAnnotation] != b.Annotations[ACLLoggingAnnotation]
}

func (c *Controller) nodeHandler() cache.ResourceEventHandler {
	enqueue := func(interface{}) { c.Queue.Enqueue(keyNodes) }
	return cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue,
		UpdateFunc: func(o, n interface{}) {
			a, b := o.(*corev1.Node), n.(*corev1.Node)
			if a.Annotations[kube.NodeSubnetsAnnotation] != b.Annotations[kube.NodeSubnetsAnnotation] ||
				!apiequality.Semantic.DeepEqual(a.Status.Addresses, b.Status.Addresses) {
				enqueue(n)
			}
		},
		DeleteFunc: enqueue,
	}
}

// portHandler enqueues a pod when its logical switch port appears, goes
// or changes incarnation: port group members are port UUIDs, and the pod
// controller creates the port after the pod's last API change.
func (c *Controller) portHandler() ovsdbcache.EventHandler {
	enqueue := func(table string, m model.Model) {
		lsp, ok := m.(*nbdb.LogicalSwitchPort)
		if !ok || table != nbdb.LogicalSwitchPortTable {
			return
		}
		switch lsp.ExternalIDs[own.KindKey] {
		case own.KindPod:
			c.Queue.Enqueue(keyPod + lsp.ExternalIDs[own.OwnerKey])
		case own.KindExternalPort:
			c.Queue.Enqueue(keyExternalPort + lsp.ExternalIDs[own.OwnerKey])
		}
	}
	return &ovsdbcache.EventHandlerFuncs{
		AddFunc: enqueue,
		UpdateFunc: func(table string, o, n model.Model) {
			a, aok := o.(*nbdb.LogicalSwitchPort)
			b, bok := n.(*nbdb.LogicalSwitchPort)
			if aok && bok && a.ExternalIDs[own.PodUIDKey] != b.ExternalIDs[own.PodUIDKey] {
				enqueue(table, n)
			}
		},
		DeleteFunc: enqueue,
	}
}

func (c *Controller) sync(ctx context.Context, key string) error {
	switch {
	case strings.HasPrefix(key, keyPolicy):
		return c.syncPolicy(ctx, strings.TrimPrefix(key, keyPolicy))
	case strings.HasPrefix(key, keyPod):
		return c.syncPod(ctx, strings.TrimPrefix(key, keyPod))
	case strings.HasPrefix(key, keyNamespace):
		return c.syncNamespace(ctx, strings.TrimPrefix(key, keyNamespace))
	case strings.HasPrefix(key, keyExternalPort):
		return c.syncExternalPort(ctx, strings.TrimPrefix(key, keyExternalPort))
	case key == keyNodes:
		return c.syncNodes(ctx)
	}
	return nil
}

// syncPolicy brings one policy's rows to the index's state (see
// build.policy); it also reports the policy's problems once per spec.
func (c *Controller) syncPolicy(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	np, err := c.policies.NetworkPolicies(ns).Get(name)
	if apierrors.IsNotFound(err) {
		np = nil
	} else if err != nil {
		return err
	}
	var cp *Compiled
	var spec *networkingv1.NetworkPolicySpec
	if np != nil && np.DeletionTimestamp == nil {
		cp, spec = Compile(np), &np.Spec
	}
	x := c.idx
	x.mu.Lock()
	x.setPolicy(key, cp, spec)
	var problems []Problem
	if pe := x.policies[key]; pe != nil && !pe.reported {
		problems, pe.reported = pe.c.Problems, true
	}
	x.mu.Unlock()
	for _, p := range problems {
		c.problems.Report(np, "NetworkPolicy", p.Reason, p.Message)
	}
	b, err := c.buildPolicy(ctx, key, ns, name)
	if err != nil {
		return err
	}
	return c.commit(ctx, "policy "+key, b)
}

// buildPolicy builds a policy's ops, waiting while a shared row it needs
// is in another sync's transaction. Policies of one namespace created
// together all need the isolation group the first one inserts, and
// selector sets are shared by many policies: failing those syncs would
// park them in the queue's backoff long after the row has landed, while
// the transaction they wait for takes a few milliseconds. The wait holds
// no marks, so two waiting syncs cannot wait for each other.
func (c *Controller) buildPolicy(ctx context.Context, key, ns, name string) (*build, error) {
	x := c.idx
	for {
		x.mu.Lock()
		b := x.newBuild(c.nb)
		err := b.policy(key, ns, name)
		if err != nil {
			x.finish(b, false)
		}
		settled := x.settled
		x.mu.Unlock()
		if !errors.Is(err, errPending) {
			return b, err
		}
		select {
		case <-settled:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// commit sends a build's ops and settles its marks; policies it names for
// a resync are enqueued, and on failure those that must redo its work.
func (c *Controller) commit(ctx context.Context, desc string, b *build) error {
	for k := range b.resync {
		c.Queue.Enqueue(keyPolicy + k)
	}
	err := c.tx.TransactBatched(ctx, desc, b.ops)
	c.idx.mu.Lock()
	c.idx.finish(b, err == nil)
	c.idx.mu.Unlock()
	if err != nil {
		for k := range b.onFailure {
			c.Queue.Enqueue(keyPolicy + k)
		}
	}
	return err
}

// syncPod applies one pod's change to the index and mutates only the
// address sets, port groups and isolation groups whose members changed.
// A pod that did not change in what policies see costs nothing.
func (c *Controller) syncPod(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := c.pods.Pods(ns).Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	var info *podInfo
	if pod != nil && err == nil {
		info = c.podInfo(pod)
	}
	return c.syncMember(ctx, key, ns, info, "policy members of pod "+key)
}

// syncMember applies one member's (pod or external port) change to the
// index and sends the ops of the rows whose members changed.
func (c *Controller) syncMember(ctx context.Context, key, ns string, info *podInfo, desc string) error {
	x := c.idx
	x.mu.Lock()
	if x.pods[key].sameAs(info) {
		x.mu.Unlock()
		return nil
	}
	ch := x.setPod(key, ns, info)
	b := x.newBuild(c.nb)
	err := b.change(ch, key)
	if err != nil {
		x.finish(b, false)
	}
	x.mu.Unlock()
	if err != nil {
		for k := range b.onFailure {
			c.Queue.Enqueue(keyPolicy + k)
		}
		return err
	}
	return c.commit(ctx, desc, b)
}

// podInfo reads what policies need of a pod, its port from the NB cache.
func (c *Controller) podInfo(pod *corev1.Pod) *podInfo {
	p := podInfoOf(pod)
	if onNetwork(pod) {
		lsp, err := nbops.GetSwitchPort(c.nb, own.PodPort(pod.Namespace, pod.Name))
		if err == nil && lsp.ExternalIDs[own.PodUIDKey] == string(pod.UID) {
			p.lsp = lsp.UUID
		}
	}
	return p
}

// podInfoOf is what the pod object alone says: labels, named ports and,
// for a pod that holds an address on kovn's network, its IPv4 address.
func podInfoOf(pod *corev1.Pod) *podInfo {
	p := &podInfo{key: pod.Namespace + "/" + pod.Name, ns: pod.Namespace, labels: labels.Set(maps.Clone(pod.Labels))}
	for _, ctr := range pod.Spec.Containers {
		for _, cp := range ctr.Ports {
			if cp.Name == "" {
				continue
			}
			proto := cp.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			if p.ports == nil {
				p.ports = map[portName]int32{}
			}
			p.ports[portName{cp.Name, proto}] = cp.ContainerPort
		}
	}
	if onNetwork(pod) {
		p.ip = podIPv4(pod)
	}
	return p
}

// onNetwork: the pod holds (or is about to hold) a port on kovn's network.
func onNetwork(pod *corev1.Pod) bool {
	return !pod.Spec.HostNetwork && pod.Spec.NodeName != "" && !terminal(pod)
}

// terminal pods keep their object but not their address, which another
// pod may get.
func terminal(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

// podIPv4 prefers kovn's annotation, written before the port exists, to
// the status the kubelet reports later.
func podIPv4(pod *corev1.Pod) netip.Addr {
	if pn, err := kube.ParsePodNetwork(pod.Annotations[kube.PodNetworkAnnotation]); err == nil {
		for _, a := range pn.Addrs() {
			if a.Is4() {
				return a
			}
		}
	}
	for _, s := range pod.Status.PodIPs {
		if a, err := netip.ParseAddr(s.IP); err == nil && a.Is4() {
			return a
		}
	}
	return netip.Addr{}
}

// syncNamespace updates the selectors with a namespaceSelector after a
// label change, and re-syncs the namespace's policies when its logging
// setting changed.
func (c *Controller) syncNamespace(ctx context.Context, name string) error {
	ns, err := c.namespaces.Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	var e *nsEntry
	var logErr error
	if err == nil {
		e, logErr = namespaceEntry(ns)
	}
	x := c.idx
	x.mu.Lock()
	ch, logChanged := x.setNamespace(name, e)
	b := x.newBuild(c.nb)
	err = b.change(ch, "")
	if logChanged {
		for pk := range x.policiesByNS[name] {
			b.resync[pk] = true
		}
	}
	if err != nil {
		x.finish(b, false)
	}
	x.mu.Unlock()
	if logErr != nil {
		c.problems.Report(ns, "Namespace", ReasonInvalidLogging, logErr.Error())
	}
	if err != nil {
		for k := range b.onFailure {
			c.Queue.Enqueue(keyPolicy + k)
		}
		return err
	}
	return c.commit(ctx, "policy selectors of namespace "+name, b)
}

// namespaceEntry reads a namespace; an invalid logging setting logs
// nothing and is returned as an error to report.
func namespaceEntry(ns *corev1.Namespace) (*nsEntry, error) {
	lg, err := ParseLogging(ns.Annotations[ACLLoggingAnnotation])
	return &nsEntry{labels: labels.Set(maps.Clone(ns.Labels)), logging: lg}, err
}

// syncNodes keeps the node management address set equal to the nodes'
// management IPs.
func (c *Controller) syncNodes(ctx context.Context) error {
	ops, err := c.nodeManagementOps()
	if err != nil {
		return err
	}
	return c.tx.TransactBatched(ctx, "node management addresses", ops)
}

func (c *Controller) nodeManagementOps() ([]ovsdb.Operation, error) {
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	var ips []string
	for _, n := range nodes {
		if c.underlay {
			// No management port: the host reaches pods from its own
			// address, through the physical network.
			for _, a := range n.Status.Addresses {
				if ip, err := netip.ParseAddr(a.Address); err == nil && ip.Is4() && a.Type == corev1.NodeInternalIP {
					ips = append(ips, ip.String())
				}
			}
			continue
		}
		subnets, err := kube.ParseNodeSubnets(n.Annotations[kube.NodeSubnetsAnnotation])
		if err != nil {
			continue // the node controller reports it; the node has no pods yet
		}
		for _, s := range subnets {
			if s.Addr().Is4() {
				ips = append(ips, ipam.ManagementIP(s).String())
			}
		}
	}
	ops, _, err := addressSetExactly(c.nb, own.NodeManagementAddressSet, ips,
		own.IDs(own.KindPolicyInfra, "node-management", "v4"))
	return ops, err
}
