package node

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
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

// Controller owns node subnets, join addresses and each node's NB rows.
type Controller struct {
	cfg      *config.Controller
	kube     kubernetes.Interface
	nodes    corelisters.NodeLister
	nb       client.Client
	tx       *nbops.Transactor
	problems *metrics.Problems
	subnets  *ipam.SubnetAllocator
	join     *ipam.IPAllocator
	Queue    *queue.Controller
}

// New builds the controller; call Start once caches are synced.
func New(cfg *config.Controller, kc kubernetes.Interface, nodes corelisters.NodeLister, nb client.Client,
	tx *nbops.Transactor, problems *metrics.Problems, qm *queue.Metrics) (*Controller, error) {
	subnets, err := ipam.NewSubnetAllocator(cfg.ClusterCIDRs, cfg.HostSubnetBits)
	if err != nil {
		return nil, err
	}
	join, err := ipam.NewIPAllocator(cfg.JoinSubnet, clusterJoinIP(cfg))
	if err != nil {
		return nil, err
	}
	c := &Controller{cfg: cfg, kube: kc, nodes: nodes, nb: nb, tx: tx, problems: problems, subnets: subnets, join: join}
	c.Queue = queue.New("node", cfg.NodeWorkers, qm, c.sync)
	return c, nil
}

func clusterJoinIP(cfg *config.Controller) netip.Addr { return ipam.GatewayIP(cfg.JoinSubnet) }

// Start rebuilds the allocators from the API and NB, so a restart never
// hands out a subnet or join address twice, removes rows of nodes that are
// gone, and makes sure the cluster router and join switch exist — all in
// one transaction, and none when nothing differs.
func (c *Controller) Start(ctx context.Context) error {
	nodes, err := c.nodes.List(everything())
	if err != nil {
		return err
	}
	present := map[string]bool{}
	for _, n := range nodes {
		present[n.Name] = true
	}
	// A subnet NB already serves on a node's switch is that node's: reserve
	// those first, so that a Node whose annotation copies another node's
	// subnet cannot take it over just by being listed first.
	served := map[string]string{}
	for _, ls := range nbops.Owned[nbdb.LogicalSwitch](c.nb, own.KindNode) {
		if _, n := own.OwnerOf(ls.ExternalIDs); ls.Name == own.NodeSwitch(n) {
			served[n] = ls.OtherConfig["subnet"]
		}
	}
	for _, confirmed := range []bool{true, false} {
		for _, n := range nodes {
			subnets, err := kube.ParseNodeSubnets(n.Annotations[kube.NodeSubnetsAnnotation])
			if err != nil || len(subnets) == 0 || (served[n.Name] == subnets[0].String()) != confirmed {
				continue
			}
			if err := c.subnets.Reserve(n.Name, subnets[0]); err != nil {
				c.problems.Report(n, "Node", "SubnetConflict", err.Error())
			}
		}
	}
	// Join addresses live only in NB: read them back from the gateway routers' join ports.
	lrps := nbops.Owned[nbdb.LogicalRouterPort](c.nb, own.KindNode)
	for _, lrp := range lrps {
		_, node := own.OwnerOf(lrp.ExternalIDs)
		if lrp.Name != own.GatewayToJoinPort(node) || !present[node] || len(lrp.Networks) == 0 {
			continue
		}
		if p, err := netip.ParsePrefix(lrp.Networks[0]); err == nil {
			if err := c.join.AllocateStatic(node, p.Addr()); err != nil {
				klog.InfoS("join address of a gateway router conflicts; it will be reassigned", "node", node, "err", err)
			}
		}
	}
	ops, err := c.clusterOps()
	if err != nil {
		return err
	}
	gc, err := c.staleNodeOps(present)
	if err != nil {
		return err
	}
	return c.tx.Transact(ctx, "cluster topology and stale nodes", append(ops, gc...))
}

// clusterOps ensures the cluster-wide rows: the load balancer group every
// switch and gateway router holds, and in overlay mode the cluster router,
// the join switch and the external port switch; in underlay mode the one
// flat switch with its localnet port.
func (c *Controller) clusterOps() ([]ovsdb.Operation, error) {
	// The service controller fills the group. The table has no
	// external_ids in NB 7.0.0, so its fixed name is what says it is kovn's.
	all, groupUUID, err := nbops.EnsureLoadBalancerGroup(c.nb, &nbdb.LoadBalancerGroup{Name: own.ClusterLBGroup})
	if err != nil {
		return nil, err
	}
	if c.cfg.Mode == "underlay" {
		ops, err := c.underlayOps(groupUUID)
		return append(all, ops...), err
	}
	ids := own.IDs(own.KindCluster, "cluster", "")
	joinIP := clusterJoinIP(c.cfg)
	ops, lrUUID, err := nbops.EnsureRouter(c.nb, &nbdb.LogicalRouter{Name: own.ClusterRouter, ExternalIDs: ids})
	if err != nil {
		return nil, err
	}
	all = append(all, ops...)
	ops, _, err = nbops.EnsureRouterPort(c.nb, lrUUID, &nbdb.LogicalRouterPort{
		Name: own.ClusterRouterToJoinPort(), MAC: ipam.MACFromIP(joinIP).String(),
		Networks: []string{netip.PrefixFrom(joinIP, c.cfg.JoinSubnet.Bits()).String()}, ExternalIDs: ids,
	})
	if err != nil {
		return nil, err
	}
	all = append(all, ops...)
	ops, lsUUID, err := nbops.EnsureSwitch(c.nb, &nbdb.LogicalSwitch{Name: own.JoinSwitch, ExternalIDs: ids})
	if err != nil {
		return nil, err
	}
	all = append(all, ops...)
	ops, _, err = nbops.EnsureSwitchPort(c.nb, lsUUID, &nbdb.LogicalSwitchPort{
		Name: own.JoinToClusterRouterPort(), Type: "router", Addresses: []string{"router"},
		Options: map[string]string{"router-port": own.ClusterRouterToJoinPort()}, ExternalIDs: ids,
	})
	if err != nil {
		return nil, err
	}
	all = append(all, ops...)
	ops, err = c.externalOps(lrUUID, groupUUID)
	return append(all, ops...), err
}

// staleNodeOps deletes the rows of nodes that no longer exist.
func (c *Controller) staleNodeOps(present map[string]bool) ([]ovsdb.Operation, error) {
	stale := map[string]bool{}
	for _, ls := range nbops.Owned[nbdb.LogicalSwitch](c.nb, own.KindNode) {
		if _, n := own.OwnerOf(ls.ExternalIDs); !present[n] {
			stale[n] = true
		}
	}
	for _, lr := range nbops.Owned[nbdb.LogicalRouter](c.nb, own.KindNode) {
		if _, n := own.OwnerOf(lr.ExternalIDs); !present[n] {
			stale[n] = true
		}
	}
	for _, tv := range nbops.Owned[nbdb.ChassisTemplateVar](c.nb, own.KindNode) {
		if _, n := own.OwnerOf(tv.ExternalIDs); !present[n] {
			stale[n] = true
		}
	}
	var all []ovsdb.Operation
	for n := range stale {
		ops, err := c.deleteOps(n)
		if err != nil {
			return nil, err
		}
		all = append(all, ops...)
	}
	return all, nil
}

func (c *Controller) sync(ctx context.Context, key string) error {
	node, err := c.nodes.Get(key)
	if apierrors.IsNotFound(err) {
		ops, err := c.deleteOps(key)
		if err != nil {
			return err
		}
		if err := c.tx.Transact(ctx, "delete node "+key, ops); err != nil {
			return err
		}
		c.subnets.Release(key)
		c.join.Release(key)
		return nil
	}
	if err != nil {
		return err
	}
	if c.cfg.Mode == "underlay" {
		// Pods share the flat switch; a node has no rows of its own.
		return nil
	}
	subnet, err := c.ensureSubnet(ctx, node)
	if err != nil || !subnet.IsValid() {
		return err
	}
	group, err := nbops.GetLoadBalancerGroup(c.nb, own.ClusterLBGroup)
	if err != nil {
		return err // Start creates it; retried
	}
	in := Inputs{Node: node.Name, Subnet: subnet, JoinSubnet: c.cfg.JoinSubnet,
		ClusterJoin: clusterJoinIP(c.cfg), ClusterCIDRs: c.cfg.ClusterCIDRs, LoadBalancerGroup: group.UUID}
	if s, ok := node.Annotations[kube.NodeGatewayAnnotation]; ok {
		gw, err := kube.ParseNodeGateway(s)
		if err != nil {
			c.problems.Report(node, "Node", "InvalidGateway", err.Error())
		} else if in.JoinIP, err = c.join.Allocate(node.Name); err != nil {
			c.problems.Report(node, "Node", "JoinSubnetExhausted", err.Error())
		} else {
			in.Gateway, in.GatewayIP = gw, netip.MustParsePrefix(gw.IP)
		}
	}
	ops, err := c.applyOps(Desired(in))
	if err != nil {
		return err
	}
	return c.tx.Transact(ctx, "node "+key, ops)
}

// ensureSubnet returns the node's subnet, allocating and recording it on
// the Node first when it has none. An invalid Node returns no subnet and
// no error: it is reported, and retried when the Node changes.
func (c *Controller) ensureSubnet(ctx context.Context, node *corev1.Node) (netip.Prefix, error) {
	if s, ok := node.Annotations[kube.NodeSubnetsAnnotation]; ok {
		subnets, err := kube.ParseNodeSubnets(s)
		if err != nil || len(subnets) == 0 {
			c.problems.Report(node, "Node", "InvalidSubnetAnnotation", fmt.Sprintf("%s: %v; remove it to get a new subnet", kube.NodeSubnetsAnnotation, err))
			return netip.Prefix{}, nil
		}
		if err := c.subnets.Reserve(node.Name, subnets[0]); err != nil {
			c.problems.Report(node, "Node", "SubnetConflict", err.Error())
			return netip.Prefix{}, nil
		}
		return subnets[0], nil
	}
	subnet, err := c.subnets.Allocate(node.Name)
	if err != nil {
		c.problems.Report(node, "Node", "ClusterCIDRExhausted", err.Error())
		return netip.Prefix{}, nil
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, kube.NodeSubnetsAnnotation, kube.MarshalNodeSubnets([]netip.Prefix{subnet}))
	if _, err := c.kube.CoreV1().Nodes().Patch(ctx, node.Name, types.MergePatchType, []byte(patch), metaPatchOptions()); err != nil {
		return netip.Prefix{}, fmt.Errorf("record subnet of %s: %w", node.Name, err)
	}
	return subnet, nil
}

// applyOps turns desired rows into operations against the cache.
func (c *Controller) applyOps(r Rows) ([]ovsdb.Operation, error) {
	b := &opsBuilder{nb: c.nb}
	lrUUID := b.routerUUID(own.ClusterRouter)
	lsUUID := b.ensureSwitch(r.Switch)
	b.ensureSwitchPort(lsUUID, r.SwitchToRtr)
	b.ensureSwitchPort(lsUUID, r.Management)
	if lsUUID != "" {
		b.add(nbops.EnsureSwitchACLs(c.nb, lsUUID, []*nbdb.ACL{r.Stateful}))
	}
	b.ensureRouterPort(lrUUID, r.RouterPort)
	owner := nodeIDs(r.Switch.ExternalIDs[own.OwnerKey], "") // all of the node's rows, whatever their id
	b.add(nbops.EnsureStaticRoutes(c.nb, lrUUID, owner, r.ClusterRoutes))
	if g := r.Gateway; g != nil {
		grUUID := b.ensureRouter(g.Router)
		b.ensureRouterPort(grUUID, g.JoinPort)
		b.ensureRouterPort(grUUID, g.ExtPort)
		b.ensureSwitchPort(b.switchUUID(own.JoinSwitch), g.JoinSwitchP)
		extUUID := b.ensureSwitch(g.ExtSwitch)
		b.ensureSwitchPort(extUUID, g.ExtSwitchP)
		b.ensureSwitchPort(extUUID, g.Localnet)
		b.add(nbops.EnsureStaticRoutes(c.nb, grUUID, owner, g.Routes))
		b.add(nbops.EnsureNATs(c.nb, grUUID, owner, g.NATs))
	}
	if g := r.Gateway; g != nil {
		// Like the gateway router, the variable stays when the gateway
		// annotation goes bad or away; deleteOps removes both.
		b.add(c.templateVarOps(r.Switch.ExternalIDs[own.OwnerKey], g.TemplateVar))
	}
	return b.ops, b.err
}

// templateVarOps keeps the node's variables on its chassis and deletes the
// rows the node owns on any other chassis (a host reinstalled under a new
// system-id) or, with tv nil (the node is deleted), all of them. The
// converged path is one indexed lookup; only a change scans the table.
func (c *Controller) templateVarOps(node string, tv *nbdb.ChassisTemplateVar) ([]ovsdb.Operation, error) {
	var ops []ovsdb.Operation
	if tv != nil {
		more, err := nbops.EnsureChassisTemplateVar(c.nb, tv.Chassis, tv.Variables, tv.ExternalIDs)
		if err != nil {
			return nil, err
		}
		if len(more) == 0 {
			return nil, nil
		}
		ops = more
	}
	for _, row := range nbops.Owned[nbdb.ChassisTemplateVar](c.nb, own.KindNode) {
		if _, owner := own.OwnerOf(row.ExternalIDs); owner == node && (tv == nil || row.Chassis != tv.Chassis) {
			more, err := nbops.DeleteChassisTemplateVar(c.nb, row.Chassis)
			if err != nil {
				return nil, err
			}
			ops = append(ops, more...)
		}
	}
	return ops, nil
}

// deleteOps removes everything a node owns.
func (c *Controller) deleteOps(node string) ([]ovsdb.Operation, error) {
	b := &opsBuilder{nb: c.nb}
	b.add(nbops.DeleteRouterPort(c.nb, own.RouterToSwitchPort(node)))
	b.add(nbops.DeleteSwitchPort(c.nb, own.JoinToGatewayPort(node)))
	b.add(nbops.DeleteSwitch(c.nb, own.NodeSwitch(node)))
	b.add(nbops.DeleteSwitch(c.nb, own.ExternalSwitch(node)))
	b.add(nbops.DeleteRouter(c.nb, own.GatewayRouter(node)))
	if lrUUID := b.routerUUID(own.ClusterRouter); lrUUID != "" {
		b.add(nbops.EnsureStaticRoutes(c.nb, lrUUID, nodeIDs(node, ""), nil))
	}
	b.add(c.templateVarOps(node, nil))
	return b.ops, b.err
}

// opsBuilder collects operations and the first error, so that a sequence
// of builder calls reads as the topology it makes.
type opsBuilder struct {
	nb  client.Client
	ops []ovsdb.Operation
	err error
}

func (b *opsBuilder) add(ops []ovsdb.Operation, err error) {
	if b.err == nil && err != nil {
		b.err = err
	}
	b.ops = append(b.ops, ops...)
}

func (b *opsBuilder) addUUID(ops []ovsdb.Operation, uuid string, err error) string {
	b.add(ops, err)
	return uuid
}

func (b *opsBuilder) ensureSwitch(ls *nbdb.LogicalSwitch) string {
	return b.addUUID(nbops.EnsureSwitch(b.nb, ls))
}

func (b *opsBuilder) ensureRouter(lr *nbdb.LogicalRouter) string {
	return b.addUUID(nbops.EnsureRouter(b.nb, lr))
}

func (b *opsBuilder) ensureSwitchPort(lsUUID string, lsp *nbdb.LogicalSwitchPort) {
	b.addUUID(nbops.EnsureSwitchPort(b.nb, lsUUID, lsp))
}

func (b *opsBuilder) ensureRouterPort(lrUUID string, lrp *nbdb.LogicalRouterPort) {
	b.addUUID(nbops.EnsureRouterPort(b.nb, lrUUID, lrp))
}

// routerUUID and switchUUID find cluster-wide rows Start created.
func (b *opsBuilder) routerUUID(name string) string {
	lr, err := nbops.GetRouter(b.nb, name)
	if err != nil {
		b.add(nil, fmt.Errorf("router %s: %w", name, err))
		return ""
	}
	return lr.UUID
}

func (b *opsBuilder) switchUUID(name string) string {
	ls, err := nbops.GetSwitch(b.nb, name)
	if err != nil {
		b.add(nil, fmt.Errorf("switch %s: %w", name, err))
		return ""
	}
	return ls.UUID
}

func everything() labels.Selector { return labels.Everything() }

func metaPatchOptions() metav1.PatchOptions {
	return metav1.PatchOptions{FieldManager: "kovn-controller"}
}
