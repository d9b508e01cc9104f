package service

import (
	"context"

	ovscache "github.com/ovn-kubernetes/libovsdb/cache"
	"github.com/ovn-kubernetes/libovsdb/model"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/cache"

	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// Start deletes the load balancers of services that no longer exist (one
// transaction, none when nothing is stale), learns which load balancers
// each remaining service owns, and enqueues every service.
func (c *Controller) Start(ctx context.Context) error {
	owned := map[string]map[string]bool{}
	var gone []string
	for _, lb := range nbops.Owned[nbdb.LoadBalancer](c.nb, own.KindService) {
		_, key := own.OwnerOf(lb.ExternalIDs)
		exists, err := c.serviceExists(key)
		if err != nil {
			return err
		}
		if !exists {
			gone = append(gone, lb.Name)
			continue
		}
		if owned[key] == nil {
			owned[key] = map[string]bool{}
		}
		owned[key][lb.Name] = true
	}
	ops, err := nbops.DeleteLoadBalancers(c.nb, gone...)
	if err != nil {
		return err
	}
	if err := c.tx.Transact(ctx, "load balancers of deleted services", ops); err != nil {
		return err
	}
	c.mu.Lock()
	c.owned = owned
	c.mu.Unlock()
	c.enqueueAll()
	return nil
}

// serviceExists tells whether the service of a load balancer's owner key
// is in the cache; a malformed key has no service.
func (c *Controller) serviceExists(key string) (bool, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil || ns == "" || name == "" {
		return false, nil
	}
	_, err = c.services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// watchNB requeues services when NB rows they depend on appear or go:
// per-node load balancers are only wanted where a node's switch or
// gateway router exists, which the node controller creates some time
// after the Node event; and the cluster group, without which no service
// can be programmed.
func (c *Controller) watchNB() {
	tc := c.nb.Cache()
	if tc == nil {
		return
	}
	tc.AddEventHandler(&ovscache.EventHandlerFuncs{
		AddFunc: func(_ string, m model.Model) {
			if g, ok := m.(*nbdb.LoadBalancerGroup); ok && g.Name == own.ClusterLBGroup {
				c.enqueueAll()
				return
			}
			c.onNodeRow(m)
		},
		DeleteFunc: func(_ string, m model.Model) { c.onNodeRow(m) },
	})
}

func (c *Controller) onNodeRow(m model.Model) {
	switch row := m.(type) {
	case *nbdb.LogicalSwitch:
		if kind, node := own.OwnerOf(row.ExternalIDs); kind == own.KindNode && row.Name == own.NodeSwitch(node) {
			c.enqueueNodeServices()
		}
	case *nbdb.LogicalRouter:
		if kind, node := own.OwnerOf(row.ExternalIDs); kind == own.KindNode && row.Name == own.GatewayRouter(node) {
			c.enqueueNodeServices()
		}
	}
}
