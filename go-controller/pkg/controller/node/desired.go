// Package node turns Nodes into their part of the OVN topology: a pod
// subnet carved from the cluster CIDR (recorded on the Node), the node
// switch with its router port and management port, and — once kovn-node
// has published the chassis and gateway — the gateway router, its join
// port, the external switch and the localnet port.
package node

import (
	"net/netip"

	"github.com/kovn-io/kovn/go-controller/pkg/ipam"
	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// Rows are the NB rows one node owns. Gateway rows are nil until the node
// agent published its gateway.
type Rows struct {
	Switch        *nbdb.LogicalSwitch
	RouterPort    *nbdb.LogicalRouterPort // rtos-<node> on the cluster router
	SwitchToRtr   *nbdb.LogicalSwitchPort // stos-<node>
	Management    *nbdb.LogicalSwitchPort // kovn-mp-<node>
	ClusterRoutes []*nbdb.LogicalRouterStaticRoute
	// Stateful keeps the switch's traffic in conntrack from the start:
	// see StatefulACL.
	Stateful *nbdb.ACL

	Gateway *GatewayRows
}

// GatewayRows are the node's gateway router and external switch.
type GatewayRows struct {
	Router      *nbdb.LogicalRouter
	JoinPort    *nbdb.LogicalRouterPort // rtoj-GR_<node>
	JoinSwitchP *nbdb.LogicalSwitchPort // jtor-GR_<node>
	ExtPort     *nbdb.LogicalRouterPort // rtoe-GR_<node>
	ExtSwitch   *nbdb.LogicalSwitch
	ExtSwitchP  *nbdb.LogicalSwitchPort // etor-GR_<node>
	Localnet    *nbdb.LogicalSwitchPort
	Routes      []*nbdb.LogicalRouterStaticRoute
	NATs        []*nbdb.NAT
	// TemplateVar sets KOVN_NODEIP on the node's chassis, the VIP of
	// the services' NodePort template load balancers.
	TemplateVar *nbdb.ChassisTemplateVar
}

// Inputs are what the rows depend on.
type Inputs struct {
	Node         string
	Subnet       netip.Prefix
	Gateway      *kube.NodeGateway // nil: not published yet
	GatewayIP    netip.Prefix      // parsed Gateway.IP
	JoinIP       netip.Addr        // the gateway router's address on the join switch
	JoinSubnet   netip.Prefix
	ClusterJoin  netip.Addr // the cluster router's address on the join switch
	ClusterCIDRs []netip.Prefix
	// LoadBalancerGroup is the UUID of the cluster load balancer group,
	// which the node switch and gateway router hold: every service's
	// cluster-wide load balancer applies there through it.
	LoadBalancerGroup string
}

func lbGroups(uuid string) []string {
	if uuid == "" {
		return nil
	}
	return []string{uuid}
}

func nodeIDs(node, id string) map[string]string { return own.IDs(own.KindNode, node, id) }

// StatefulACL is the lowest-priority ACL of every pod switch: allow-related
// for all IP traffic, which is what a switch does anyway when no ACL
// matches. It exists so that OVN sends the switch's traffic through
// conntrack before the first NetworkPolicy reaches one of its pods. A
// switch without any stateful ACL bypasses conntrack; when the first one
// arrives, every connection already open on the switch is unknown to
// conntrack, its next packets are invalid (the userspace datapath does not
// pick up connections mid-stream) and the ct.inv drop flow kills them. The
// fault suite found this: probes between pods that no policy selects timed
// out when a churned pod with a policy landed on their node.
func StatefulACL(ids map[string]string) *nbdb.ACL {
	return &nbdb.ACL{
		Direction:   nbdb.ACLDirectionToLport,
		Priority:    0,
		Match:       "ip",
		Action:      nbdb.ACLActionAllowRelated,
		ExternalIDs: ids,
	}
}

// Desired computes a node's rows; a pure function of its inputs.
func Desired(in Inputs) Rows {
	gw := ipam.GatewayIP(in.Subnet)
	mgmt := ipam.ManagementIP(in.Subnet)
	bits := in.Subnet.Bits()
	r := Rows{
		Switch: &nbdb.LogicalSwitch{
			Name:              own.NodeSwitch(in.Node),
			OtherConfig:       map[string]string{"subnet": in.Subnet.String(), "exclude_ips": mgmt.String()},
			ExternalIDs:       nodeIDs(in.Node, ""),
			LoadBalancerGroup: lbGroups(in.LoadBalancerGroup),
		},
		RouterPort: &nbdb.LogicalRouterPort{
			Name:        own.RouterToSwitchPort(in.Node),
			MAC:         ipam.MACFromIP(gw).String(),
			Networks:    []string{netip.PrefixFrom(gw, bits).String()},
			ExternalIDs: nodeIDs(in.Node, ""),
		},
		SwitchToRtr: &nbdb.LogicalSwitchPort{
			Name:        own.SwitchToRouterPort(in.Node),
			Type:        "router",
			Addresses:   []string{"router"},
			Options:     map[string]string{"router-port": own.RouterToSwitchPort(in.Node)},
			ExternalIDs: nodeIDs(in.Node, ""),
		},
		Management: &nbdb.LogicalSwitchPort{
			Name:         own.ManagementPort(in.Node),
			Addresses:    []string{ipam.MACFromIP(mgmt).String() + " " + mgmt.String()},
			PortSecurity: []string{ipam.MACFromIP(mgmt).String() + " " + mgmt.String()},
			ExternalIDs:  nodeIDs(in.Node, ""),
		},
		Stateful: StatefulACL(nodeIDs(in.Node, own.StatefulACLID)),
	}
	if in.Gateway == nil {
		return r
	}
	// Pods of this node leave the cluster through this node's gateway router.
	srcIP := nbdb.LogicalRouterStaticRoutePolicySrcIP // a copy: the generated enum is a package variable
	r.ClusterRoutes = []*nbdb.LogicalRouterStaticRoute{{
		IPPrefix:    in.Subnet.String(),
		Nexthop:     in.JoinIP.String(),
		Policy:      &srcIP,
		ExternalIDs: nodeIDs(in.Node, "egress"),
	}, {
		// Replies to connections a gateway router SNATed to its join IP
		// (NodePorts with lb_force_snat_ip) must go back to that router.
		// Without a /32 the pod subnet's source route above, longer than
		// the join switch's /16, would send them to this node's own GR.
		IPPrefix:    netip.PrefixFrom(in.JoinIP, 32).String(),
		Nexthop:     in.JoinIP.String(),
		ExternalIDs: nodeIDs(in.Node, "join"),
	}}
	r.Gateway = gatewayRows(in)
	return r
}

// gatewayRows are the rows of a node with a published gateway.
func gatewayRows(in Inputs) *GatewayRows {
	gr := own.GatewayRouter(in.Node)
	g := &GatewayRows{
		Router: &nbdb.LogicalRouter{
			Name: gr,
			Options: map[string]string{
				"chassis": in.Gateway.ChassisID,
				// Replies to SNATed traffic must come back to this router.
				"always_learn_from_arp_request": "false",
				"dynamic_neigh_routers":         "true",
				// Load-balanced traffic leaves SNATed to the router port
				// it leaves by, so a NodePort reply from a pod on another
				// node comes back through this router to be unDNATed.
				// externalTrafficPolicy Local load balancers opt out
				// (skip_snat) to keep the client's address.
				"lb_force_snat_ip": "router_ip",
			},
			ExternalIDs:       nodeIDs(in.Node, ""),
			LoadBalancerGroup: lbGroups(in.LoadBalancerGroup),
		},
		JoinPort: &nbdb.LogicalRouterPort{
			Name:        own.GatewayToJoinPort(in.Node),
			MAC:         ipam.MACFromIP(in.JoinIP).String(),
			Networks:    []string{netip.PrefixFrom(in.JoinIP, in.JoinSubnet.Bits()).String()},
			ExternalIDs: nodeIDs(in.Node, ""),
		},
		JoinSwitchP: &nbdb.LogicalSwitchPort{
			Name:        own.JoinToGatewayPort(in.Node),
			Type:        "router",
			Addresses:   []string{"router"},
			Options:     map[string]string{"router-port": own.GatewayToJoinPort(in.Node)},
			ExternalIDs: nodeIDs(in.Node, ""),
		},
		ExtPort: &nbdb.LogicalRouterPort{
			Name:        own.GatewayToExtPort(in.Node),
			MAC:         in.Gateway.MAC,
			Networks:    []string{in.GatewayIP.String()},
			ExternalIDs: nodeIDs(in.Node, ""),
		},
		ExtSwitch: &nbdb.LogicalSwitch{
			Name:        own.ExternalSwitch(in.Node),
			ExternalIDs: nodeIDs(in.Node, ""),
		},
		ExtSwitchP: &nbdb.LogicalSwitchPort{
			Name:        own.ExtToGatewayPort(in.Node),
			Type:        "router",
			Addresses:   []string{"router"},
			Options:     map[string]string{"router-port": own.GatewayToExtPort(in.Node)},
			ExternalIDs: nodeIDs(in.Node, ""),
		},
		Localnet: &nbdb.LogicalSwitchPort{
			Name:        own.LocalnetPort(in.Node),
			Type:        "localnet",
			Addresses:   []string{"unknown"},
			Options:     map[string]string{"network_name": own.PhysicalNetwork},
			ExternalIDs: nodeIDs(in.Node, ""),
		},
	}
	addGatewayRoutes(in, g)
	return g
}

// addGatewayRoutes adds the gateway router's routes and SNAT, and the
// node IP template variable.
func addGatewayRoutes(in Inputs, g *GatewayRows) {
	nodeIP := in.GatewayIP.Addr()
	ext := own.GatewayToExtPort(in.Node)
	g.Routes = append(g.Routes, &nbdb.LogicalRouterStaticRoute{
		IPPrefix: "0.0.0.0/0", Nexthop: in.Gateway.NextHop, OutputPort: &ext,
		ExternalIDs: nodeIDs(in.Node, "default"),
	})
	for _, cidr := range in.ClusterCIDRs {
		g.Routes = append(g.Routes, &nbdb.LogicalRouterStaticRoute{
			IPPrefix: cidr.String(), Nexthop: in.ClusterJoin.String(),
			ExternalIDs: nodeIDs(in.Node, "cluster"),
		})
	}
	g.NATs = []*nbdb.NAT{{
		Type: nbdb.NATTypeSNAT, ExternalIP: nodeIP.String(), LogicalIP: in.Subnet.String(),
		ExternalPortRange: own.GatewaySNATPortRange,
		ExternalIDs:       nodeIDs(in.Node, "egress"),
	}}
	g.TemplateVar = &nbdb.ChassisTemplateVar{
		Chassis:     in.Gateway.ChassisID,
		Variables:   map[string]string{own.NodeIPTemplateVar: nodeIP.String()},
		ExternalIDs: nodeIDs(in.Node, ""),
	}
}
