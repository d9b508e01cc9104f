package policy

import (
	"context"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// Start rebuilds the index from the API caches (and the pod ports from
// NB), makes sure the logging meter and the node management address set
// exist, deletes the rows of policies, selectors and isolations that are
// gone — in one transaction, none when nothing differs — and enqueues
// every policy, whose syncs then send nothing on a converged database.
func (c *Controller) Start(ctx context.Context) error {
	if err := c.rebuild(); err != nil {
		return err
	}
	ops, err := c.infraOps()
	if err != nil {
		return err
	}
	c.idx.mu.Lock()
	stale, err := c.staleOps()
	c.idx.mu.Unlock()
	if err != nil {
		return err
	}
	if err := c.tx.Transact(ctx, "network policy start-up", append(ops, stale...)); err != nil {
		return err
	}
	c.idx.mu.Lock()
	keys := sortedKeys(c.idx.policies)
	c.idx.mu.Unlock()
	for _, k := range keys {
		c.Queue.Enqueue(keyPolicy + k)
	}
	nss, err := c.namespaces.List(labels.Everything())
	if err != nil {
		return err
	}
	for _, ns := range nss {
		// Only to report an invalid logging setting; nothing else to do.
		if _, err := namespaceEntry(ns); err != nil {
			c.Queue.Enqueue(keyNamespace + ns.Name)
		}
	}
	c.Queue.Enqueue(keyNodes)
	return nil
}

// rebuild fills the index: namespaces, then pods, then policies, so that
// each policy's selectors find their members as they are added.
func (c *Controller) rebuild() error {
	nss, err := c.namespaces.List(labels.Everything())
	if err != nil {
		return err
	}
	pods, err := c.pods.List(labels.Everything())
	if err != nil {
		return err
	}
	nps, err := c.policies.List(labels.Everything())
	if err != nil {
		return err
	}
	infos := make([]*podInfo, len(pods))
	for i, p := range pods {
		infos[i] = c.podInfo(p)
	}
	eps, err := c.externalPortInfos()
	if err != nil {
		return err
	}
	infos = append(infos, eps...)
	x := c.idx
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, ns := range nss {
		e, _ := namespaceEntry(ns)
		x.setNamespace(ns.Name, e)
	}
	for _, p := range infos {
		x.setPod(p.key, p.ns, p)
	}
	for _, np := range nps {
		if np.DeletionTimestamp == nil {
			x.setPolicy(np.Namespace+"/"+np.Name, Compile(np), &np.Spec)
		}
	}
	return nil
}

// infraOps ensures the rows every policy relies on: the meter of ACL
// logging (fair: each logging ACL gets its own 20 packets/s, so one noisy
// policy does not silence the others) and the node management addresses.
func (c *Controller) infraOps() ([]ovsdb.Operation, error) {
	fair := true
	ops, err := nbops.EnsureMeter(c.nb, &nbdb.Meter{
		Name: own.ACLLoggingMeter, Unit: nbdb.MeterUnitPktps, Fair: &fair,
		ExternalIDs: own.IDs(own.KindPolicyInfra, "acl-logging", ""),
	}, []*nbdb.MeterBand{{Action: nbdb.MeterBandActionDrop, Rate: 20}})
	if err != nil {
		return nil, err
	}
	mgmt, err := c.nodeManagementOps()
	return append(ops, mgmt...), err
}

// staleOps deletes the rows whose policy, selector or isolation is gone;
// with the index locked. ACLs go with their port groups.
func (c *Controller) staleOps() ([]ovsdb.Operation, error) {
	x := c.idx
	var ops []ovsdb.Operation
	for _, pg := range nbops.Owned[nbdb.PortGroup](c.nb, own.KindNetworkPolicy) {
		_, key := own.OwnerOf(pg.ExternalIDs)
		if pe := x.policies[key]; pe != nil && pg.Name == own.PolicyPortGroup(pe.c.Namespace, pe.c.Name) {
			continue
		}
		del, err := nbops.DeletePortGroup(c.nb, pg.Name)
		if err != nil {
			return nil, err
		}
		ops = append(ops, del...)
	}
	for _, pg := range nbops.Owned[nbdb.PortGroup](c.nb, own.KindPolicyIsolation) {
		_, ns := own.OwnerOf(pg.ExternalIDs)
		dir := Direction(pg.ExternalIDs[own.IDKey])
		if (dir == Ingress || dir == Egress) && x.hasDirection(ns, dir) && pg.Name == own.IsolationPortGroup(ns, string(dir)) {
			continue
		}
		del, err := nbops.DeletePortGroup(c.nb, pg.Name)
		if err != nil {
			return nil, err
		}
		ops = append(ops, del...)
	}
	used := map[string]bool{}
	for _, se := range x.selectors {
		used[se.asName] = true
	}
	for _, as := range nbops.Owned[nbdb.AddressSet](c.nb, own.KindPolicySelector) {
		if used[as.Name] {
			continue
		}
		del, err := nbops.DeleteAddressSet(c.nb, as.Name)
		if err != nil {
			return nil, err
		}
		ops = append(ops, del...)
	}
	return ops, nil
}
