package service

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/kovn-io/kovn/go-controller/pkg/config"
	"github.com/kovn-io/kovn/go-controller/pkg/controller/queue"
	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/metrics"
	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// Index names on the shared informers; prefixed so they cannot clash with
// another controller's index on the same informer.
const (
	slicesByService = "kovn.io/service"
	servicesByNodes = "kovn.io/needs-nodes"
)

// defaultWorkers is used when the configuration gives no pod worker count;
// service syncs are cheap and batched, so they share that knob.
const defaultWorkers = 4

// errNoGroup is retried: the node controller creates the group at start.
var errNoGroup = errors.New("cluster load balancer group " + own.ClusterLBGroup + " does not exist yet")

// Controller owns the load balancers of Services.
type Controller struct {
	services corelisters.ServiceLister
	svcIdx   cache.Indexer
	sliceIdx cache.Indexer
	nodes    corelisters.NodeLister
	nb       client.Client
	tx       *nbops.Transactor
	problems *metrics.Problems
	Queue    *queue.Controller

	mu sync.Mutex
	// owned maps a service key to the names of the load balancers it may
	// have in NB: those it had after its last successful sync, plus any a
	// failed one may have created. A sync deletes the ones it no longer
	// wants without scanning the table. Rebuilt by Start.
	owned map[string]map[string]bool
}

// New builds the controller and registers its indexes and event handlers
// on f's Service, EndpointSlice and Node informers, and on nb's cache; call
// it before f is started, and Start once caches are synced.
func New(cfg *config.Controller, f informers.SharedInformerFactory, nb client.Client, tx *nbops.Transactor,
	problems *metrics.Problems, qm *queue.Metrics) (*Controller, error) {
	svcs, eps, nodes := f.Core().V1().Services(), f.Discovery().V1().EndpointSlices(), f.Core().V1().Nodes()
	c := &Controller{
		services: svcs.Lister(), svcIdx: svcs.Informer().GetIndexer(),
		sliceIdx: eps.Informer().GetIndexer(), nodes: nodes.Lister(),
		nb: nb, tx: tx, problems: problems, owned: map[string]map[string]bool{},
	}
	workers := defaultWorkers
	if cfg != nil && cfg.PodWorkers > 0 {
		workers = cfg.PodWorkers
	}
	c.Queue = queue.New("service", workers, qm, c.sync)
	if err := eps.Informer().AddIndexers(cache.Indexers{slicesByService: sliceServiceKeys}); err != nil {
		return nil, fmt.Errorf("service controller: %w", err)
	}
	if err := svcs.Informer().AddIndexers(cache.Indexers{servicesByNodes: needsNodesIndex}); err != nil {
		return nil, fmt.Errorf("service controller: %w", err)
	}
	for inf, h := range map[cache.SharedIndexInformer]cache.ResourceEventHandler{
		svcs.Informer():  c.Queue.Handler(),
		eps.Informer():   c.sliceHandler(),
		nodes.Informer(): c.nodeHandler(),
	} {
		if _, err := inf.AddEventHandler(h); err != nil {
			return nil, fmt.Errorf("service controller: %w", err)
		}
	}
	c.watchNB()
	return c, nil
}

// sliceServiceKeys indexes an EndpointSlice by the key of its service.
func sliceServiceKeys(obj any) ([]string, error) {
	es, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return nil, nil
	}
	if k := sliceServiceKey(es); k != "" {
		return []string{k}, nil
	}
	return nil, nil
}

func sliceServiceKey(es *discoveryv1.EndpointSlice) string {
	name := es.Labels[discoveryv1.LabelServiceName]
	if name == "" {
		return ""
	}
	return es.Namespace + "/" + name
}

// needsNodesIndex puts services with per-node load balancers under "true",
// so node changes requeue only those.
func needsNodesIndex(obj any) ([]string, error) {
	if svc, ok := obj.(*corev1.Service); ok && NeedsNodes(svc) {
		return []string{"true"}, nil
	}
	return nil, nil
}

func (c *Controller) sliceHandler() cache.ResourceEventHandler {
	enqueue := func(obj any) {
		if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = tomb.Obj
		}
		if es, ok := obj.(*discoveryv1.EndpointSlice); ok {
			if k := sliceServiceKey(es); k != "" {
				c.Queue.Enqueue(k)
			}
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue,
		UpdateFunc: func(oldObj, newObj any) {
			// A slice relabelled to another service leaves the first one.
			enqueue(oldObj)
			enqueue(newObj)
		},
		DeleteFunc: enqueue,
	}
}

// nodeHandler requeues services with per-node rows when a node comes or
// goes or its gateway (the node IP) changes; nothing else about a node
// matters to services.
func (c *Controller) nodeHandler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { c.enqueueNodeServices() },
		UpdateFunc: func(oldObj, newObj any) {
			o, n := oldObj.(*corev1.Node), newObj.(*corev1.Node)
			if o.Annotations[kube.NodeGatewayAnnotation] != n.Annotations[kube.NodeGatewayAnnotation] {
				c.enqueueNodeServices()
			}
		},
		DeleteFunc: func(any) { c.enqueueNodeServices() },
	}
}

func (c *Controller) enqueueNodeServices() {
	keys, err := c.svcIdx.IndexKeys(servicesByNodes, "true")
	if err != nil {
		return
	}
	for _, k := range keys {
		c.Queue.Enqueue(k)
	}
}

func (c *Controller) enqueueAll() {
	for _, k := range c.svcIdx.ListKeys() {
		c.Queue.Enqueue(k)
	}
}

func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil // not a key we enqueue; retrying cannot help
	}
	svc, err := c.services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		svc, err = nil, nil
	}
	if err != nil {
		return err
	}
	in := Inputs{Service: svc}
	if HasLoadBalancers(svc) {
		if in.Slices, err = c.slicesOf(key); err != nil {
			return err
		}
		if NeedsNodes(svc) {
			if in.Nodes, err = c.nodeInputs(); err != nil {
				return err
			}
		}
	}
	rows := Desired(in)
	for _, p := range rows.Problems {
		c.problems.Report(svc, "Service", p.Reason, p.Message)
	}
	want := map[string]bool{}
	for _, lb := range rows.LBs {
		want[lb.Row.Name] = true
	}
	stale := c.remember(key, want)
	ops, dups, err := c.applyOps(rows, stale)
	if err != nil {
		return fmt.Errorf("service %s: %w", key, err)
	}
	if err := c.tx.TransactBatched(ctx, "service "+key, ops); err != nil {
		return err
	}
	if len(dups) > 0 {
		// Deleted this round, recreated by the retry.
		return fmt.Errorf("service %s: deleted duplicate load balancers %v", key, dups)
	}
	c.forget(key, want)
	return nil
}

// remember adds want to the names key may own and returns those it owns
// but no longer wants, sorted.
func (c *Controller) remember(key string, want map[string]bool) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var stale []string
	for name := range c.owned[key] {
		if !want[name] {
			stale = append(stale, name)
		}
	}
	if len(want) > 0 && c.owned[key] == nil {
		c.owned[key] = map[string]bool{}
	}
	for name := range want {
		c.owned[key][name] = true
	}
	slices.Sort(stale)
	return stale
}

// forget narrows what key owns to want, once NB holds exactly that.
func (c *Controller) forget(key string, want map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(want) == 0 {
		delete(c.owned, key)
		return
	}
	c.owned[key] = want
}

func (c *Controller) slicesOf(key string) ([]*discoveryv1.EndpointSlice, error) {
	objs, err := c.sliceIdx.ByIndex(slicesByService, key)
	if err != nil {
		return nil, err
	}
	out := make([]*discoveryv1.EndpointSlice, 0, len(objs))
	for _, o := range objs {
		if es, ok := o.(*discoveryv1.EndpointSlice); ok {
			out = append(out, es)
		}
	}
	// Informer order is arbitrary; Desired's output must not depend on it.
	slices.SortFunc(out, func(a, b *discoveryv1.EndpointSlice) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// nodeInputs reads which nodes have a switch and a gateway router in the
// NB cache, so per-node load balancers are only wanted where they can be
// attached; watchNB requeues when that changes.
func (c *Controller) nodeInputs() ([]Node, error) {
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	out := make([]Node, 0, len(nodes))
	for _, n := range nodes {
		in := Node{Name: n.Name}
		if _, err := nbops.GetSwitch(c.nb, own.NodeSwitch(n.Name)); err == nil {
			in.Switch = true
		}
		if s, ok := n.Annotations[kube.NodeGatewayAnnotation]; ok {
			gw, err := kube.ParseNodeGateway(s)
			if err == nil {
				if _, err := nbops.GetRouter(c.nb, own.GatewayRouter(n.Name)); err == nil {
					in.GatewayIP = netip.MustParsePrefix(gw.IP).Addr().Unmap()
				}
			}
		}
		out = append(out, in)
	}
	slices.SortFunc(out, func(a, b Node) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// applyOps turns desired rows into operations against the cache: each
// load balancer ensured and attached where it belongs, and the stale ones
// unlinked and deleted. None when NB already matches. Names found on
// several rows (a writer without the insert guard) are deleted instead
// and returned, to be recreated by the next sync.
func (c *Controller) applyOps(rows Rows, stale []string) (all []ovsdb.Operation, dups []string, err error) {
	for _, lb := range rows.LBs {
		ops, uuid, err := nbops.EnsureLoadBalancer(c.nb, lb.Row)
		if errors.Is(err, nbops.ErrDuplicate) {
			dups = append(dups, lb.Row.Name)
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		all = append(all, ops...)
		if lb.Group {
			ops, err := nbops.LoadBalancerGroupAdd(c.nb, own.ClusterLBGroup, uuid)
			if errors.Is(err, nbops.ErrNotFound) {
				return nil, nil, errNoGroup
			}
			if err != nil {
				return nil, nil, err
			}
			all = append(all, ops...)
		}
		for _, sw := range lb.Switches {
			ops, err := nbops.SwitchLoadBalancersAdd(c.nb, sw, uuid)
			if err != nil {
				return nil, nil, err
			}
			all = append(all, ops...)
		}
		for _, r := range lb.Routers {
			ops, err := nbops.RouterLoadBalancersAdd(c.nb, r, uuid)
			if err != nil {
				return nil, nil, err
			}
			all = append(all, ops...)
		}
	}
	ops, err := nbops.DeleteLoadBalancers(c.nb, append(stale, dups...)...)
	return append(all, ops...), dups, err
}
