package kovntest

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"

	nodectl "github.com/kovn-io/kovn/go-controller/pkg/controller/node"
	podctl "github.com/kovn-io/kovn/go-controller/pkg/controller/pod"
	policyctl "github.com/kovn-io/kovn/go-controller/pkg/controller/policy"
	servicectl "github.com/kovn-io/kovn/go-controller/pkg/controller/service"
	"github.com/kovn-io/kovn/go-controller/pkg/ipam"
	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
	"github.com/kovn-io/kovn/go-controller/pkg/testenv"
)

// Cluster is a running OVN with the test cluster programmed.
type Cluster struct {
	OVN *testenv.OVN
	NB  client.Client
	tx  *nbops.Transactor
}

// Timeout bounds every wait of these tests.
const Timeout = 20 * time.Second

var (
	joinSubnet   = netip.MustParsePrefix("100.64.0.0/16")
	clusterCIDRs = []netip.Prefix{netip.MustParsePrefix("10.128.0.0/14")}
)

// Start runs OVN, programs the cluster and waits until northd turned it
// into port bindings and the policy's logical flows.
func Start(t *testing.T) *Cluster {
	t.Helper()
	c := startOVN(t)
	c.apply(t, "cluster", c.clusterOps)
	for _, n := range Nodes {
		c.apply(t, "node "+n.Name, func() ([]ovsdb.Operation, error) { return c.nodeOps(n) })
	}
	c.apply(t, "namespaces and pods", c.podOps)
	c.apply(t, "policy", c.policyOps)
	c.apply(t, "service", c.serviceOps)
	c.WaitSB(t, "Port_Binding", "logical_port", "team-a_web-1", "team-a_client", "team-b_x", "rtos-n1")
	c.WaitSB(t, "Logical_Flow", "match", own.PolicyPortGroup("team-a", "allow-web"), own.IsolationPortGroup("team-a", "ingress"))
	return c
}

// startOVN runs an empty OVN and connects to its NB.
func startOVN(t *testing.T) *Cluster {
	t.Helper()
	o := testenv.StartOVN(t)
	m, err := nbops.ClientDBModel()
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{OVN: o, NB: testenv.Connect(t, o.NBAddr, m)}
	c.tx = nbops.NewTransactor(c.NB, nil)
	return c
}

// WaitSB waits until column of table mentions every want.
func (c *Cluster) WaitSB(t *testing.T, table, column string, want ...string) {
	t.Helper()
	testenv.WaitFor(t, Timeout, func() error {
		out := c.OVN.SBCtl(t, "--bare", "--columns="+column, "list", table)
		for _, w := range want {
			if !strings.Contains(out, w) {
				return fmt.Errorf("SB %s has no %s %q yet", table, column, w)
			}
		}
		return nil
	})
}

func (c *Cluster) apply(t *testing.T, what string, build func() ([]ovsdb.Operation, error)) {
	t.Helper()
	ops, err := build()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if err := c.tx.Transact(ctx, what, ops); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// ops collects builder results and the first error.
type ops struct {
	all []ovsdb.Operation
	err error
}

func (o *ops) add(more []ovsdb.Operation, err error) {
	o.all = append(o.all, more...)
	if o.err == nil {
		o.err = err
	}
}

func (o *ops) uuid(more []ovsdb.Operation, uuid string, err error) string {
	o.add(more, err)
	return uuid
}

// clusterOps is what the node controller's Start writes.
func (c *Cluster) clusterOps() ([]ovsdb.Operation, error) {
	var o ops
	ids := own.IDs(own.KindCluster, "cluster", "")
	joinIP := ipam.GatewayIP(joinSubnet)
	lr := o.uuid(nbops.EnsureRouter(c.NB, &nbdb.LogicalRouter{Name: own.ClusterRouter, ExternalIDs: ids}))
	o.uuid(nbops.EnsureRouterPort(c.NB, lr, &nbdb.LogicalRouterPort{Name: own.ClusterRouterToJoinPort(),
		MAC: ipam.MACFromIP(joinIP).String(), Networks: []string{netip.PrefixFrom(joinIP, 16).String()}, ExternalIDs: ids}))
	ls := o.uuid(nbops.EnsureSwitch(c.NB, &nbdb.LogicalSwitch{Name: own.JoinSwitch, ExternalIDs: ids}))
	o.uuid(nbops.EnsureSwitchPort(c.NB, ls, &nbdb.LogicalSwitchPort{Name: own.JoinToClusterRouterPort(), Type: "router",
		Addresses: []string{"router"}, Options: map[string]string{"router-port": own.ClusterRouterToJoinPort()}, ExternalIDs: ids}))
	o.uuid(nbops.EnsureLoadBalancerGroup(c.NB, &nbdb.LoadBalancerGroup{Name: own.ClusterLBGroup}))
	return o.all, o.err
}

// nodeOps applies node.Desired as the node controller's applyOps does.
func (c *Cluster) nodeOps(n Node) ([]ovsdb.Operation, error) {
	lbg, err := nbops.GetLoadBalancerGroup(c.NB, own.ClusterLBGroup)
	if err != nil {
		return nil, err
	}
	gw := n.Gateway()
	r := nodectl.Desired(nodectl.Inputs{Node: n.Name, Subnet: n.Subnet, Gateway: gw, GatewayIP: netip.MustParsePrefix(gw.IP),
		JoinIP: n.JoinIP, JoinSubnet: joinSubnet, ClusterJoin: ipam.GatewayIP(joinSubnet), ClusterCIDRs: clusterCIDRs,
		LoadBalancerGroup: lbg.UUID})
	cr, err := nbops.GetRouter(c.NB, own.ClusterRouter)
	if err != nil {
		return nil, err
	}
	join, err := nbops.GetSwitch(c.NB, own.JoinSwitch)
	if err != nil {
		return nil, err
	}
	var o ops
	owner := own.IDs(own.KindNode, n.Name, "")
	ls := o.uuid(nbops.EnsureSwitch(c.NB, r.Switch))
	o.uuid(nbops.EnsureSwitchPort(c.NB, ls, r.SwitchToRtr))
	o.uuid(nbops.EnsureSwitchPort(c.NB, ls, r.Management))
	o.uuid(nbops.EnsureRouterPort(c.NB, cr.UUID, r.RouterPort))
	o.add(nbops.EnsureStaticRoutes(c.NB, cr.UUID, owner, r.ClusterRoutes))
	g := r.Gateway
	gr := o.uuid(nbops.EnsureRouter(c.NB, g.Router))
	o.uuid(nbops.EnsureRouterPort(c.NB, gr, g.JoinPort))
	o.uuid(nbops.EnsureRouterPort(c.NB, gr, g.ExtPort))
	o.uuid(nbops.EnsureSwitchPort(c.NB, join.UUID, g.JoinSwitchP))
	ext := o.uuid(nbops.EnsureSwitch(c.NB, g.ExtSwitch))
	o.uuid(nbops.EnsureSwitchPort(c.NB, ext, g.ExtSwitchP))
	o.uuid(nbops.EnsureSwitchPort(c.NB, ext, g.Localnet))
	o.add(nbops.EnsureStaticRoutes(c.NB, gr, owner, g.Routes))
	o.add(nbops.EnsureNATs(c.NB, gr, owner, g.NATs))
	o.add(nbops.EnsureChassisTemplateVar(c.NB, g.TemplateVar.Chassis, g.TemplateVar.Variables, g.TemplateVar.ExternalIDs))
	return o.all, o.err
}

// podOps: namespace address sets, the node management set and the pods'
// ports, as the namespace, policy and pod controllers write them.
func (c *Cluster) podOps() ([]ovsdb.Operation, error) {
	var o ops
	members := map[string][]string{}
	for _, p := range Pods {
		members[p.Namespace] = append(members[p.Namespace], p.IP.String())
		ls, err := nbops.GetSwitch(c.NB, own.NodeSwitch(p.Node))
		if err != nil {
			return nil, err
		}
		obj := PodObject(p)
		pn := podctl.Network(p.IP, nodeSubnet(p.Node), ipam.GatewayIP(nodeSubnet(p.Node)), mtu)
		o.uuid(nbops.EnsureSwitchPort(c.NB, ls.UUID, podctl.Port(obj, pn)))
	}
	for _, ns := range Namespaces {
		o.uuid(nbops.EnsureAddressSet(c.NB, &nbdb.AddressSet{Name: own.NamespaceAddressSet(ns, "v4"),
			Addresses: members[ns], ExternalIDs: own.IDs(own.KindNamespace, ns, "v4")}))
	}
	var mgmt []string
	for _, n := range Nodes {
		mgmt = append(mgmt, ipam.ManagementIP(n.Subnet).String())
	}
	o.uuid(nbops.EnsureAddressSet(c.NB, &nbdb.AddressSet{Name: own.NodeManagementAddressSet, Addresses: mgmt,
		ExternalIDs: own.IDs(own.KindPolicyInfra, "cluster", "node-management")}))
	return o.all, o.err
}

func nodeSubnet(node string) netip.Prefix {
	for _, n := range Nodes {
		if n.Name == node {
			return n.Subnet
		}
	}
	panic("no node " + node)
}

// policyOps: team-a/allow-web as the policy controller programs it.
func (c *Cluster) policyOps() ([]ovsdb.Operation, error) {
	np := Policy()
	compiled := policyctl.Compile(np)
	var o ops
	sets := map[string]string{}
	for _, s := range compiled.Selectors() {
		name := own.SelectorAddressSet(s.Key, "v4")
		sets[s.Key] = name
		var ips []string
		for _, p := range Pods {
			if s.Matches(p.Namespace, p.Labels, nil, true) {
				ips = append(ips, p.IP.String())
			}
		}
		o.uuid(nbops.EnsureAddressSet(c.NB, &nbdb.AddressSet{Name: name, Addresses: ips,
			ExternalIDs: own.IDs(own.KindPolicySelector, own.SelectorHash(s.Key), s.Key)}))
	}
	var selected []string
	for _, p := range Pods {
		if p.Namespace == np.Namespace && compiled.PodSelector.Matches(labelsOf(p)) {
			lsp, err := nbops.GetSwitchPort(c.NB, own.PodPort(p.Namespace, p.Name))
			if err != nil {
				return nil, err
			}
			selected = append(selected, lsp.UUID) // port groups hold port UUIDs
		}
	}
	acls := policyctl.PolicyACLs(compiled, policyctl.Inputs{AddressSets: sets})
	pg := o.uuid(nbops.EnsurePortGroup(c.NB, &nbdb.PortGroup{Name: own.PolicyPortGroup(np.Namespace, np.Name),
		ExternalIDs: own.IDs(own.KindNetworkPolicy, np.Namespace+"/"+np.Name, "")}))
	o.add(nbops.PortGroupSetPorts(c.NB, pg, selected))
	o.add(nbops.EnsurePortGroupACLs(c.NB, pg, acls))
	iso := o.uuid(nbops.EnsurePortGroup(c.NB, &nbdb.PortGroup{Name: own.IsolationPortGroup(np.Namespace, "ingress"),
		ExternalIDs: own.IDs(own.KindPolicyIsolation, np.Namespace, "ingress")}))
	o.add(nbops.PortGroupSetPorts(c.NB, iso, selected))
	o.add(nbops.EnsurePortGroupACLs(c.NB, iso, policyctl.IsolationACLs(np.Namespace, policyctl.Ingress, policyctl.Logging{})))
	return o.all, o.err
}

// serviceOps: team-a/web's load balancers, attached as the service
// controller attaches them.
func (c *Cluster) serviceOps() ([]ovsdb.Operation, error) {
	svc, es := Service()
	rows := servicectl.Desired(servicectl.Inputs{Service: svc, Slices: []*discoveryv1.EndpointSlice{es}})
	if len(rows.Problems) > 0 {
		return nil, fmt.Errorf("service problems: %v", rows.Problems)
	}
	var o ops
	for _, lb := range rows.LBs {
		uuid := o.uuid(nbops.EnsureLoadBalancer(c.NB, lb.Row))
		if lb.Group {
			o.add(nbops.LoadBalancerGroupAdd(c.NB, own.ClusterLBGroup, uuid))
		}
		for _, sw := range lb.Switches {
			o.add(nbops.SwitchLoadBalancersAdd(c.NB, sw, uuid))
		}
		for _, r := range lb.Routers {
			o.add(nbops.RouterLoadBalancersAdd(c.NB, r, uuid))
		}
	}
	return o.all, o.err
}

func labelsOf(p Pod) labels.Set { return labels.Set(p.Labels) }
