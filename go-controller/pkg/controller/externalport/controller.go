package externalport

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	ovsdbcache "github.com/ovn-kubernetes/libovsdb/cache"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/kovn-io/kovn/go-controller/pkg/config"
	"github.com/kovn-io/kovn/go-controller/pkg/controller/queue"
	"github.com/kovn-io/kovn/go-controller/pkg/ipam"
	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/metrics"
	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// Controller owns external ports' addresses, ports and status.
type Controller struct {
	cfg      *config.Controller
	dyn      dynamic.Interface
	lister   cache.GenericLister
	nb       client.Client
	tx       *nbops.Transactor
	problems *metrics.Problems
	Queue    *queue.Controller

	// pool is set by Start (overlay: kovn_external's subnet) or shared
	// with the pod controller (underlay), where owners are pod keys too:
	// external ports own their addresses under "ExternalPort:" + key.
	pool    *ipam.IPAllocator
	network Network

	mu      sync.Mutex
	tracked map[string]netip.Addr // key → address it holds
}

// New builds the controller. underlayPool is the pod controller's pool in
// underlay mode, nil in overlay mode. Call Start once caches are synced.
func New(cfg *config.Controller, dyn dynamic.Interface, lister cache.GenericLister, nb client.Client,
	tx *nbops.Transactor, problems *metrics.Problems, qm *queue.Metrics, underlayPool *ipam.IPAllocator) *Controller {
	c := &Controller{cfg: cfg, dyn: dyn, lister: lister, nb: nb, tx: tx, problems: problems,
		pool: underlayPool, tracked: map[string]netip.Addr{}}
	c.Queue = queue.New("externalport", 2, qm, c.sync)
	nb.Cache().AddEventHandler(c.portHandler())
	return c
}

func owner(key string) string { return "ExternalPort:" + key }

// portHandler enqueues a port whose binding changed: ovn-controller sets
// the port's up column, which the status reports as Bound.
func (c *Controller) portHandler() ovsdbcache.EventHandler {
	enqueue := func(m model.Model) {
		if lsp, ok := m.(*nbdb.LogicalSwitchPort); ok && lsp.ExternalIDs[own.KindKey] == own.KindExternalPort {
			c.Queue.Enqueue(lsp.ExternalIDs[own.OwnerKey])
		}
	}
	return &ovsdbcache.EventHandlerFuncs{
		UpdateFunc: func(table string, o, n model.Model) {
			a, aok := o.(*nbdb.LogicalSwitchPort)
			b, bok := n.(*nbdb.LogicalSwitchPort)
			if table == nbdb.LogicalSwitchPortTable && aok && bok && !sameUp(a.Up, b.Up) {
				enqueue(n)
			}
		},
	}
}

func sameUp(a, b *bool) bool { return isUp(a) == isUp(b) }
func isUp(b *bool) bool      { return b != nil && *b }

func (c *Controller) get(key string) (*kube.ExternalPort, error) {
	obj, err := c.lister.Get(key)
	if err != nil {
		return nil, err
	}
	return kube.ExternalPortFromUnstructured(obj)
}

func (c *Controller) sync(ctx context.Context, key string) error {
	ep, err := c.get(key)
	if apierrors.IsNotFound(err) {
		return c.teardown(ctx, key)
	}
	if err != nil {
		return err
	}
	if ep.DeletionTimestamp != nil {
		return c.teardown(ctx, key)
	}
	// A bad MAC is refused before an address is taken for the port.
	if _, err := MAC(ep, netip.IPv4Unspecified()); err != nil {
		c.report(ep, "InvalidMAC", fmt.Sprintf("spec.mac %q: %v", ep.Spec.MAC, err))
		return nil
	}
	ip, settle, ok := c.assign(key, ep)
	if !ok {
		return nil
	}
	mac, err := MAC(ep, ip)
	if err != nil {
		return err
	}
	ls, err := nbops.GetSwitch(c.nb, c.network.Switch)
	if err != nil {
		return fmt.Errorf("switch %s: %w", c.network.Switch, err)
	}
	ops, _, err := nbops.EnsureSwitchPort(c.nb, ls.UUID, Port(ep, ip, mac))
	if err != nil {
		return err
	}
	setOps, err := c.addressSetAdd(ep.Namespace, ip)
	if err != nil {
		return err
	}
	if held, ok := c.heldBefore(key, ip); ok {
		// The port moves to a new address: the old one leaves its set.
		rm, err := nbops.AddressSetRemove(c.nb, own.NamespaceAddressSet(ep.Namespace, "v4"), held.String())
		if err != nil && !errors.Is(err, nbops.ErrNotFound) {
			return err
		}
		setOps = append(setOps, rm...)
	}
	if err := c.tx.TransactBatched(ctx, "externalport "+key, append(ops, setOps...)); err != nil {
		return err // the temporary holder keeps the new address for the retry
	}
	settle()
	return c.updateStatus(ctx, ep, Status(ep, c.network, ip, mac))
}

// assign gives the port the address it holds, the one its spec asks for,
// or a free one. A changed spec.ip takes the new address under a
// temporary owner; settle, called once the port's row says the new
// address, frees the old one — so neither is ever free while in NB.
func (c *Controller) assign(key string, ep *kube.ExternalPort) (ip netip.Addr, settle func(), ok bool) {
	var want netip.Addr
	if ep.Spec.IP != "" {
		ip, err := netip.ParseAddr(ep.Spec.IP)
		if err != nil || !ip.Is4() {
			c.report(ep, "InvalidIP", fmt.Sprintf("spec.ip %q is not an IPv4 address", ep.Spec.IP))
			return netip.Addr{}, nil, false
		}
		want = ip
	}
	c.mu.Lock()
	held, had := c.tracked[key]
	c.mu.Unlock()
	if had && (!want.IsValid() || want == held) {
		return held, func() {}, true
	}
	holder := owner(key)
	if had {
		holder += "#next"
		if cur, ok := c.pool.Get(holder); ok && cur != want {
			c.pool.Release(holder) // an earlier change that never landed
		}
	}
	var err error
	if want.IsValid() {
		err = c.pool.AllocateStatic(holder, want)
	} else {
		want, err = c.pool.Allocate(holder)
	}
	if err != nil {
		c.report(ep, allocReason(err), err.Error())
		if errors.Is(err, ipam.ErrExhausted) {
			c.Queue.EnqueueAfter(key, 30*time.Second) // freed addresses have no event
		}
		return netip.Addr{}, nil, false
	}
	settle = func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if had {
			c.pool.ReleaseIP(held, owner(key))
			if err := c.pool.Move(holder, owner(key)); err != nil {
				klog.ErrorS(err, "external port address change", "key", key)
			}
		}
		c.tracked[key] = want
	}
	return want, settle, true
}

func allocReason(err error) string {
	switch {
	case errors.Is(err, ipam.ErrExhausted):
		return "SubnetExhausted"
	case errors.Is(err, ipam.ErrConflict):
		return "IPConflict"
	case errors.Is(err, ipam.ErrOutOfRange):
		return "IPOutOfRange"
	}
	return "IPUnavailable"
}

// heldBefore is the address the port holds when it is not ip.
func (c *Controller) heldBefore(key string, ip netip.Addr) (netip.Addr, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	held, ok := c.tracked[key]
	return held, ok && held != ip
}

// report records a problem as an Event, a metric and a log line, and the
// Ready condition says it too.
func (c *Controller) report(ep *kube.ExternalPort, reason, msg string) {
	if u, err := ep.Unstructured(); err == nil {
		c.problems.Report(u, kube.ExternalPortKind, reason, msg)
	}
	st := ep.Status
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: kube.ExternalPortReady, Status: metav1.ConditionFalse,
		Reason: reason, Message: msg, ObservedGeneration: ep.Generation})
	if err := c.patchStatus(context.Background(), ep, &st); err != nil {
		klog.ErrorS(err, "external port status", "key", ep.Namespace+"/"+ep.Name)
	}
}

// updateStatus writes the status with its conditions when it changed.
func (c *Controller) updateStatus(ctx context.Context, ep *kube.ExternalPort, st kube.ExternalPortStatus) error {
	lsp, err := nbops.GetSwitchPort(c.nb, own.ExternalPortPort(ep.Namespace, ep.Name))
	bound := err == nil && isUp(lsp.Up)
	st.Conditions = slices.Clone(ep.Status.Conditions)
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: kube.ExternalPortReady, Status: metav1.ConditionTrue,
		Reason: "Programmed", Message: "address assigned, port in OVN", ObservedGeneration: ep.Generation})
	bc := metav1.Condition{Type: kube.ExternalPortBound, Status: metav1.ConditionFalse, Reason: "NotBound",
		Message:            fmt.Sprintf("waiting for an interface with iface-id %s on chassis %s", st.IfaceID, ep.Spec.Chassis),
		ObservedGeneration: ep.Generation}
	if bound {
		st.Chassis = ep.Spec.Chassis
		bc.Status, bc.Reason, bc.Message = metav1.ConditionTrue, "Bound", "ovn-controller installed the port on "+ep.Spec.Chassis
	}
	meta.SetStatusCondition(&st.Conditions, bc)
	return c.patchStatus(ctx, ep, &st)
}

func (c *Controller) patchStatus(ctx context.Context, ep *kube.ExternalPort, st *kube.ExternalPortStatus) error {
	if statusEqual(&ep.Status, st) {
		return nil
	}
	err := kube.PatchExternalPortStatus(ctx, c.dyn, ep.Namespace, ep.Name, st)
	if apierrors.IsNotFound(err) {
		return nil // deleted meanwhile; the delete event tears down
	}
	return err
}

// addressSetAdd puts ip into its namespace's address set, creating the set
// when it is missing. Created, never ensured (see nbops.CreateAddressSet):
// a set a pod sync made since the lookup would lose its members to ip.
func (c *Controller) addressSetAdd(ns string, ip netip.Addr) ([]ovsdb.Operation, error) {
	name := own.NamespaceAddressSet(ns, "v4")
	ops, err := nbops.AddressSetAdd(c.nb, name, ip.String())
	if !errors.Is(err, nbops.ErrNotFound) {
		return ops, err
	}
	ops, _, err = nbops.CreateAddressSet(c.nb, &nbdb.AddressSet{
		Name: name, Addresses: []string{ip.String()}, ExternalIDs: own.IDs(own.KindNamespace, ns, "v4"),
	})
	return ops, err
}

// teardown removes the port and its address.
func (c *Controller) teardown(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	ops, err := c.deleteOps(ns, name, key)
	if err != nil {
		return err
	}
	if err := c.tx.TransactBatched(ctx, "delete externalport "+key, ops); err != nil {
		return err
	}
	c.release(key)
	return nil
}

func (c *Controller) deleteOps(ns, name, key string) ([]ovsdb.Operation, error) {
	port := own.ExternalPortPort(ns, name)
	var ip netip.Addr
	c.mu.Lock()
	ip, ok := c.tracked[key]
	c.mu.Unlock()
	if !ok {
		if lsp, err := nbops.GetSwitchPort(c.nb, port); err == nil {
			ip, ok = nbops.PortIP(lsp)
		}
	}
	ops, err := nbops.DeleteSwitchPort(c.nb, port)
	if err != nil || !ok {
		return ops, err
	}
	rm, err := nbops.AddressSetRemove(c.nb, own.NamespaceAddressSet(ns, "v4"), ip.String())
	if err != nil && !errors.Is(err, nbops.ErrNotFound) {
		return nil, err
	}
	return append(ops, rm...), nil
}

func (c *Controller) release(key string) {
	c.mu.Lock()
	_, ok := c.tracked[key]
	delete(c.tracked, key)
	c.mu.Unlock()
	if ok {
		c.pool.Release(owner(key))
	}
	c.pool.Release(owner(key) + "#next")
}

func statusEqual(a, b *kube.ExternalPortStatus) bool {
	if !slices.Equal(a.IPs, b.IPs) || a.MAC != b.MAC || a.Gateway != b.Gateway || !slices.Equal(a.Routes, b.Routes) ||
		a.MTU != b.MTU || a.IfaceID != b.IfaceID || a.Chassis != b.Chassis || a.ObservedGeneration != b.ObservedGeneration ||
		len(a.Conditions) != len(b.Conditions) {
		return false
	}
	for i := range a.Conditions {
		x, y := a.Conditions[i], b.Conditions[i]
		if x.Type != y.Type || x.Status != y.Status || x.Reason != y.Reason || x.Message != y.Message || x.ObservedGeneration != y.ObservedGeneration {
			return false
		}
	}
	return true
}
