package show

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/tree"
	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// Node shows a node's part of the topology: its switch with router and
// management ports, its port on the cluster router and the routes it
// owns there, its gateway router with join and external sides, and its
// chassis in SB with the template variables NB sets for it. In underlay
// mode (NB has the one flat switch) a node has none of the former: see
// underlayNode.
func (s *Shower) Node(ctx context.Context, name string) (*tree.Node, error) {
	root := tree.New("Node", name)
	chassisID := ""
	if s.Kube != nil {
		node, err := s.Kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if apiState(root, true, err) {
			chassisID = nodeFacts(root, node)
		}
	} else {
		apiState(root, false, nil)
	}
	if ls := s.NB.Switch(own.UnderlaySwitch); ls != nil {
		s.underlayNode(root, ls, name, chassisID)
		s.chassis(root, name, chassisID)
		return root, nil
	}
	s.nodeSwitch(root, name)
	if lrp := s.NB.RouterPort(own.RouterToSwitchPort(name)); lrp != nil {
		s.routerPort(root, lrp)
	} else {
		root.Set("cluster router port", "missing: "+own.RouterToSwitchPort(name))
	}
	if cr := s.NB.Router(own.ClusterRouter); cr != nil {
		s.ownedRoutes(root, cr, name)
	}
	if gr := s.NB.Router(own.GatewayRouter(name)); gr != nil {
		if chassisID == "" {
			chassisID = gr.Options["chassis"]
		}
		s.gatewayRouter(root, gr)
	} else {
		root.Set("gateway router", "missing: "+own.GatewayRouter(name)+" (kovn-node has not published the node's gateway yet?)")
	}
	if lsp := s.NB.SwitchPort(own.JoinToGatewayPort(name)); lsp != nil {
		s.switchPort(root, lsp).Set("switch", own.JoinSwitch)
	}
	if ext := s.NB.Switch(own.ExternalSwitch(name)); ext != nil {
		n := root.Child("Logical_Switch", ext.Name).Set("owner", ownerNote(ext.ExternalIDs))
		for _, lsp := range s.portsOf(ext) {
			s.switchPort(n, lsp)
		}
	}
	s.chassis(root, name, chassisID)
	return root, nil
}

// nodeFacts prints what controller and agent recorded on the Node and
// returns the chassis ID kovn-node published.
func nodeFacts(n *tree.Node, node *corev1.Node) string {
	n.Set("node-subnets", node.Annotations[kube.NodeSubnetsAnnotation])
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			n.Set("Ready", string(c.Status))
		}
	}
	s, ok := node.Annotations[kube.NodeGatewayAnnotation]
	if !ok {
		n.Set("node-gateway", "not published (kovn-node has not run on this node)")
		return ""
	}
	gw, err := kube.ParseNodeGateway(s)
	if err != nil {
		n.Set("node-gateway", "invalid: "+err.Error())
		return ""
	}
	n.Set("node-gateway", fmt.Sprintf("chassis %s ip %s nextHop %s mac %s", gw.ChassisID, gw.IP, gw.NextHop, gw.MAC))
	return gw.ChassisID
}

func (s *Shower) nodeSwitch(root *tree.Node, name string) {
	ls := s.NB.Switch(own.NodeSwitch(name))
	if ls == nil {
		root.Set("switch", "missing: "+own.NodeSwitch(name)+" (no subnet yet, or kovn-controller has not programmed the node)")
		return
	}
	n := root.Child("Logical_Switch", ls.Name).Set("uuid", ls.UUID).Set("other_config", ls.OtherConfig).
		Set("load_balancer_group", groupNames(s.NB, ls.LoadBalancerGroup)).Set("owner", ownerNote(ls.ExternalIDs))
	pods := 0
	for _, lsp := range s.portsOf(ls) {
		if kind, _ := own.OwnerOf(lsp.ExternalIDs); kind == own.KindPod {
			pods++
			continue
		}
		c := s.switchPort(n, lsp)
		if lsp.Name == own.ManagementPort(name) {
			s.binding(c, lsp.Name)
		}
	}
	n.Set("pod ports", pods)
}

// ownedRoutes are the cluster router's static routes the node owns.
func (s *Shower) ownedRoutes(root *tree.Node, cr *nbdb.LogicalRouter, node string) {
	var routes []string
	for _, u := range cr.StaticRoutes {
		r := s.NB.RouteByUUID(u)
		if r == nil {
			continue
		}
		if kind, owner := own.OwnerOf(r.ExternalIDs); kind == own.KindNode && owner == node {
			routes = append(routes, routeString(r))
		}
	}
	slices.Sort(routes)
	if len(routes) > 0 {
		root.Child("Logical_Router", cr.Name).Set("routes owned by the node", routes)
	}
}

func (s *Shower) gatewayRouter(root *tree.Node, gr *nbdb.LogicalRouter) {
	n := root.Child("Logical_Router", gr.Name).Set("uuid", gr.UUID).Set("options", gr.Options).
		Set("load_balancer_group", groupNames(s.NB, gr.LoadBalancerGroup))
	var lrps []*nbdb.LogicalRouterPort
	for _, u := range gr.Ports {
		if lrp := s.NB.RouterPortByUUID(u); lrp != nil {
			lrps = append(lrps, lrp)
		}
	}
	slices.SortFunc(lrps, func(a, b *nbdb.LogicalRouterPort) int { return strings.Compare(a.Name, b.Name) })
	for _, lrp := range lrps {
		s.routerPort(n, lrp)
	}
	var nats, routes []string
	for _, u := range gr.Nat {
		if nat := s.NB.NATByUUID(u); nat != nil {
			x := fmt.Sprintf("%s %s → %s", nat.Type, nat.LogicalIP, nat.ExternalIP)
			if nat.ExternalPortRange != "" {
				x += " ports " + nat.ExternalPortRange
			}
			nats = append(nats, x)
		}
	}
	for _, u := range gr.StaticRoutes {
		if r := s.NB.RouteByUUID(u); r != nil {
			routes = append(routes, routeString(r))
		}
	}
	slices.Sort(routes)
	n.Set("nat", nats).Set("routes", routes)
}

// portsOf are a switch's ports sorted by name, for output that does not
// change from run to run.
func (s *Shower) portsOf(ls *nbdb.LogicalSwitch) []*nbdb.LogicalSwitchPort {
	var out []*nbdb.LogicalSwitchPort
	for _, u := range ls.Ports {
		if lsp := s.NB.SwitchPortByUUID(u); lsp != nil {
			out = append(out, lsp)
		}
	}
	slices.SortFunc(out, func(a, b *nbdb.LogicalSwitchPort) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func routeString(r *nbdb.LogicalRouterStaticRoute) string {
	x := r.IPPrefix + " via " + r.Nexthop
	if r.Policy != nil && *r.Policy == nbdb.LogicalRouterStaticRoutePolicySrcIP {
		x = "src-ip " + x
	}
	if r.OutputPort != nil {
		x += " port " + *r.OutputPort
	}
	return x
}

// chassis shows the node's SB chassis and its NB template variables.
func (s *Shower) chassis(root *tree.Node, node, chassisID string) {
	if tv := s.NB.TemplateVar(chassisID); chassisID != "" && tv != nil {
		root.Child("Chassis_Template_Var", tv.Chassis).Set("variables", tv.Variables)
	}
	if s.SB == nil {
		return
	}
	ch := s.SB.ChassisForNode(node, chassisID)
	if ch == nil {
		root.Child("Chassis", chassisID).Set("state", "absent in SB: ovn-controller on the node is not registered")
		return
	}
	n := root.Child("Chassis", ch.Name).Set("hostname", ch.Hostname).Set("encaps", s.SB.EncapsOf(ch)).
		Set("ovn-bridge-mappings", ch.OtherConfig["ovn-bridge-mappings"])
	if p := s.SB.Private(ch.Name); p != nil {
		n.Set("nb_cfg", p.NbCfg)
	}
}
