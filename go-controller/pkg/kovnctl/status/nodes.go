package status

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/nbview"
	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/sbview"
	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/node/heartbeat"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// nodes checks, for every Node, what each component records about it:
// the subnet (kovn-controller, on the Node), the gateway (kovn-node, on
// the Node), the switch and gateway router (kovn-controller, in NB), the
// chassis (ovn-controller, in SB) with its progress through nb_cfg, and
// kovn-node's heartbeat Lease.
//
// In underlay mode (NB has the one flat switch) nodes have no subnet and no
// gateway router: pods sit on the physical network, so only the chassis
// and the heartbeat are checked.
func nodes(r *Report, cfg Config, cl *cluster, nb *nbview.View, sb *sbview.View) {
	underlay := nb.Switch(own.UnderlaySwitch) != nil
	for i := range cl.nodes {
		n := &cl.nodes[i]
		obj := "node/" + n.Name
		before := len(r.Problems())
		var facts []string
		if underlay {
			facts = append(facts, "underlay")
		} else if s := nodeSubnet(r, obj, n, nb); s != "" {
			facts = append(facts, "subnet "+s)
		}
		gw := nodeGateway(r, obj, n)
		if gr := nb.Router(own.GatewayRouter(n.Name)); gr == nil {
			if gw != nil && !underlay {
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
		if f := nodeHeartbeat(r, cfg, obj, n.Name, cl); f != "" {
			facts = append(facts, f)
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

// nodeHeartbeat reads kovn-node's Lease (pkg/node/heartbeat): renewed
// within its duration means kovn-node is running. It returns the fact for
// the node's ok line, or "" when it reported a problem or the Leases could
// not be listed (reported once, by Run).
func nodeHeartbeat(r *Report, cfg Config, obj, node string, cl *cluster) string {
	if cl.leaseErr != nil {
		return ""
	}
	name := heartbeat.Namespace + "/" + heartbeat.LeaseName(node)
	l := cl.leases[heartbeat.LeaseName(node)]
	if l == nil {
		r.problem(obj, "kovn-node has never reported (no Lease %s)", name)
		return ""
	}
	if l.Spec.RenewTime == nil {
		r.problem(obj, "kovn-node has never reported (Lease %s has no renewTime)", name)
		return ""
	}
	dur := heartbeat.Duration
	if l.Spec.LeaseDurationSeconds != nil {
		dur = time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second
	}
	renewed := l.Spec.RenewTime.Time
	age := cfg.Now().Sub(renewed)
	switch {
	case age > dur:
		r.problem(obj, "kovn-node silent for %s (Lease %s last renewed at %s)", age.Round(time.Second), name, renewed.UTC().Format(time.RFC3339))
		return ""
	case age < -time.Second: // kovn-node's clock is ahead of this one
		return fmt.Sprintf("kovn-node renewed %s in the future (clock skew)", (-age).Round(time.Second))
	case age < 0:
		age = 0
	}
	return fmt.Sprintf("kovn-node renewed %s ago", age.Round(time.Second))
}
