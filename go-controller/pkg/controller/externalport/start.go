package externalport

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/kovn-io/kovn/go-controller/pkg/ipam"
	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// Start finds the network (the node controller's Start made the switch),
// rebuilds the addresses from NB ports — the record of what is in use —
// deletes the ports of external ports that are gone, and enqueues the rest.
// Call it after the node controller's Start and, in underlay mode, after
// the pod controller's, which fills the shared pool with pods' addresses.
func (c *Controller) Start(ctx context.Context) error {
	if err := c.findNetwork(); err != nil {
		return err
	}
	objs, err := c.lister.List(labels.Everything())
	if err != nil {
		return err
	}
	live := map[string]bool{}
	for _, o := range objs {
		if key, err := cache.MetaNamespaceKeyFunc(o); err == nil {
			live[key] = true
			c.Queue.Enqueue(key)
		}
	}
	var ops []ovsdb.Operation
	for _, lsp := range nbops.Owned[nbdb.LogicalSwitchPort](c.nb, own.KindExternalPort) {
		_, key := own.OwnerOf(lsp.ExternalIDs)
		ip, hasIP := nbops.PortIP(lsp)
		if !live[key] {
			ns, name, _ := cache.SplitMetaNamespaceKey(key)
			del, err := c.deleteOps(ns, name, key)
			if err != nil {
				return err
			}
			ops = append(ops, del...)
			continue
		}
		if !hasIP {
			continue
		}
		if err := c.pool.AllocateStatic(owner(key), ip); err != nil {
			// Its sync gives it another address and reports why.
			klog.InfoS("external port's address is taken", "key", key, "ip", ip, "err", err)
			continue
		}
		c.mu.Lock()
		c.tracked[key] = ip
		c.mu.Unlock()
	}
	return c.tx.Transact(ctx, "stale external ports", ops)
}

// findNetwork reads where external ports live; in overlay mode it also
// makes the pool of kovn_external's subnet.
func (c *Controller) findNetwork() error {
	if c.cfg.Mode == "underlay" {
		u := c.cfg.Underlay
		c.network = Network{Switch: own.UnderlaySwitch, Subnet: u.Subnet, Gateway: u.Gateway,
			Routes: slices.Clone(c.cfg.ServiceCIDRs), MTU: c.cfg.MTU}
		if c.pool == nil {
			return fmt.Errorf("underlay mode without the pod controller's pool")
		}
		return nil
	}
	ls, err := nbops.GetSwitch(c.nb, own.ExternalPortSwitch)
	if err != nil {
		return fmt.Errorf("switch %s: %w", own.ExternalPortSwitch, err)
	}
	subnet, err := netip.ParsePrefix(ls.OtherConfig["subnet"])
	if err != nil {
		return fmt.Errorf("switch %s has no subnet: %w", own.ExternalPortSwitch, err)
	}
	gw := ipam.GatewayIP(subnet)
	if c.pool, err = ipam.NewIPAllocator(subnet, gw); err != nil {
		return err
	}
	c.network = Network{Switch: own.ExternalPortSwitch, Subnet: subnet, Gateway: gw,
		Routes: append(slices.Clone(c.cfg.ClusterCIDRs), c.cfg.ServiceCIDRs...), MTU: c.cfg.MTU}
	return nil
}
