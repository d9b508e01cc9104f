package status

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/nbview"
	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/sbview"
	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// nodes checks, for every Node, what each component records about it:
// the subnet (kovn-controller, on the Node), the gateway (kovn-node, on
// the Node), the switch and gateway router (kovn-controller, in NB), and
// the chassis (ovn-controller, in SB) with its progress through nb_cfg.
func nodes(r *Report, cfg Config, cl *cluster, nb *nbview.View, sb *sbview.View) {
	for i := range cl.nodes {
		n := &cl.nodes[i]
		obj := "node/" + n.Name
		before := len(r.Problems())
		var facts []string
		if s := nodeSubnet(r, obj, n, nb); s != "" {
			facts = append(facts, "subnet "+s)
		}
		gw := nodeGateway(r, obj, n)
		if gr := nb.Router(own.GatewayRouter(n.Name)); gr == nil {
			if gw != nil {
				r.problem(obj, "no gateway router %s in NB although kovn-node published the gateway: kovn-controller has not programmed it", own.GatewayRouter(n.Name))
			}
		} else {
			facts = append(facts, "gateway router "+gr.Name)
			if gw != nil && gr.Options["chassis"] != gw.ChassisID {
				r.problem(obj, "gateway router %s is pinned to chassis %q, the node's chassis is %q", gr.Name, gr.Options["chassis"], gw.ChassisID)
			}
		}
		if sb != nil {
			f := nodeChassis(r, cfg, obj, n, gw, nb, sb)
			if f != "" {
				facts = append(facts, f)
				cl.withChassis[n.Name] = true
			}
			// Without a chassis nothing can be bound there: the
			// chassis problem above is the one to fix.
			if f != "" && gw != nil && nb.SwitchPort(own.ManagementPort(n.Name)) != nil {
				managementPort(r, obj, n.Name, gw.ChassisID, sb)
			}
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status != corev1.ConditionTrue {
				r.problem(obj, "kubelet reports Ready=%s (%s: %s)", c.Status, c.Reason, c.Message)
			}
		}
		if len(r.Problems()) == before {
			r.ok(obj, "%s", strings.Join(facts, ", "))
		}
	}
}

func nodeSubnet(r *Report, obj string, n *corev1.Node, nb *nbview.View) string {
	s, ok := n.Annotations[kube.NodeSubnetsAnnotation]
	if !ok {
		r.problem(obj, "no %s annotation: kovn-controller has not given the node a subnet", kube.NodeSubnetsAnnotation)
		return ""
	}
	subnets, err := kube.ParseNodeSubnets(s)
	if err != nil || len(subnets) == 0 {
		r.problem(obj, "bad %s annotation %q: %v", kube.NodeSubnetsAnnotation, s, err)
		return ""
	}
	ls := nb.Switch(own.NodeSwitch(n.Name))
	switch {
	case ls == nil:
		r.problem(obj, "no logical switch %s in NB: kovn-controller has not programmed the node", own.NodeSwitch(n.Name))
	case ls.OtherConfig["subnet"] != subnets[0].String():
		r.problem(obj, "switch %s serves %q, the node's subnet is %s", ls.Name, ls.OtherConfig["subnet"], subnets[0])
	}
	return subnets[0].String()
}

func nodeGateway(r *Report, obj string, n *corev1.Node) *kube.NodeGateway {
	s, ok := n.Annotations[kube.NodeGatewayAnnotation]
	if !ok {
		r.problem(obj, "no %s annotation: kovn-node has never run on the node", kube.NodeGatewayAnnotation)
		return nil
	}
	gw, err := kube.ParseNodeGateway(s)
	if err != nil {
		r.problem(obj, "bad %s annotation: %v", kube.NodeGatewayAnnotation, err)
		return nil
	}
	return gw
}

// nodeChassis finds the node's chassis and checks ovn-controller keeps up
// with NB: when NB's nb_cfg was raised (ovn-nbctl --wait=hv, or a probe)
// longer ago than the grace period, a live chassis has reported it back.
func nodeChassis(r *Report, cfg Config, obj string, n *corev1.Node, gw *kube.NodeGateway, nb *nbview.View, sb *sbview.View) string {
	id := ""
	if gw != nil {
		id = gw.ChassisID
	}
	ch := sb.ChassisForNode(n.Name, id)
	if ch == nil {
		r.problem(obj, "no chassis in SB (chassis ID %q, hostname %s): ovn-controller on the node is not running or not connected to SB", id, n.Name)
		return ""
	}
	if id != "" && ch.Name != id {
		r.problem(obj, "chassis %s has hostname %s but the node published chassis ID %s", ch.Name, ch.Hostname, id)
	}
	fact := fmt.Sprintf("chassis %s (hostname %s", ch.Name, ch.Hostname)
	p := sb.Private(ch.Name)
	if p != nil {
		fact += fmt.Sprintf(", nb_cfg %d", p.NbCfg)
	}
	fact += ")"
	if len(nb.Global) == 1 && p != nil {
		g := nb.Global[0]
		since := cfg.Now().Sub(time.UnixMilli(int64(g.NbCfgTimestamp)))
		if p.NbCfg < g.NbCfg && g.NbCfgTimestamp > 0 && since > cfg.Grace {
			r.problem(obj, "chassis %s is at nb_cfg %d, NB asked for %d %s ago: ovn-controller on the node is not processing updates",
				ch.Name, p.NbCfg, g.NbCfg, since.Round(time.Second))
		}
	}
	return fact
}

// managementPort checks the port kovn-node plugs for the host (kovn-mp0):
// bound on the node's chassis and installed.
func managementPort(r *Report, obj, node, chassisID string, sb *sbview.View) {
	name := own.ManagementPort(node)
	b := sb.Binding(name)
	switch ch := sb.BoundChassis(b); {
	case b == nil:
		r.problem(obj, "management port %s has no Port_Binding in SB: northd has not translated it", name)
	case ch == "":
		r.problem(obj, "management port %s is bound to no chassis: kovn-node has not set up kovn-mp0 on the node", name)
	case ch != chassisID:
		r.problem(obj, "management port %s is bound on chassis %s, the node's chassis is %s", name, ch, chassisID)
	case !sbview.Up(b):
		r.problem(obj, "management port %s is bound but not up: ovn-controller has not installed it", name)
	}
}
