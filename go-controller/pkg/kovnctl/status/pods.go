package status

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/events"
	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/nbview"
	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/sbview"
	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// onNetwork tells whether kovn gives the pod a port (as the pod
// controller decides).
func onNetwork(p *corev1.Pod) bool {
	return p.Spec.NodeName != "" && !p.Spec.HostNetwork &&
		p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed
}

// since is when the pod landed on its node: its PodScheduled condition,
// else its creation.
func since(p *corev1.Pod) time.Time {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionTrue && !c.LastTransitionTime.IsZero() {
			return c.LastTransitionTime.Time
		}
	}
	return p.CreationTimestamp.Time
}

// pods checks that every pod on the kovn network has its port, bound on
// its node's chassis and up (installed by ovn-controller, the SB side of
// ovn-installed). A pod still within the grace period is only counted.
// Nodes whose chassis is up but whose pods' ports stay unplugged past the
// grace are reported too: kovn-node may be stopped (its heartbeat, checked
// with the node, says so) or alive but failing CNI ADD. A pod without an
// address or port is kovn-controller's to fix, not kovn-node's: when
// kovn-controller refused it, its Warning Event on the pod says why.
func pods(ctx context.Context, r *Report, cfg Config, cl *cluster, nb *nbview.View, sb *sbview.View) {
	chassisOf := map[string]string{}
	for _, n := range cl.nodes {
		if gw, err := kube.ParseNodeGateway(n.Annotations[kube.NodeGatewayAnnotation]); err == nil {
			chassisOf[n.Name] = gw.ChassisID
		}
	}
	total, settling, bad := 0, 0, 0
	unpluggedOn := map[string][]string{} // node → pods
	for i := range cl.pods {
		p := &cl.pods[i]
		if !onNetwork(p) {
			continue
		}
		total++
		msg, unplugged := podProblem(p, nb, sb, chassisOf[p.Spec.NodeName])
		if msg == "" {
			continue
		}
		if cfg.Now().Sub(since(p)) < cfg.Grace {
			settling++
			continue
		}
		bad++
		if _, ok := p.Annotations[kube.PodNetworkAnnotation]; !ok {
			if e := cl.podWarnings(ctx, r).Latest(p.Namespace, p.Name, string(p.UID)); e != nil {
				msg = "kovn-controller refused the pod: " + events.Describe(e, cfg.Now())
			}
		}
		r.problem("pod/"+p.Namespace+"/"+p.Name, "%s", msg)
		if unplugged && cl.withChassis[p.Spec.NodeName] {
			unpluggedOn[p.Spec.NodeName] = append(unpluggedOn[p.Spec.NodeName], p.Namespace+"/"+p.Name)
		}
	}
	for _, node := range sortedKeys(unpluggedOn) {
		r.problem("node/"+node, "%d pod(s) on the node for over %s have no plugged port (%s): kovn-node there is stopped or failing CNI ADD",
			len(unpluggedOn[node]), cfg.Grace, join(unpluggedOn[node], 3))
	}
	msg := fmt.Sprintf("%d on the kovn network, %d with their port bound on their node and up", total, total-settling-bad)
	if settling > 0 {
		msg += fmt.Sprintf(", %d still being set up (for less than %s)", settling, cfg.Grace)
	}
	r.ok("pods", "%s", msg)
}

// podProblem says what is wrong with a pod's port ("" for nothing), and
// whether it is unplugged: in NB and SB, ready for the pod's interface, but
// bound to no chassis — what kovn-node's CNI ADD has not done.
func podProblem(p *corev1.Pod, nb *nbview.View, sb *sbview.View, nodeChassis string) (msg string, unplugged bool) {
	name := own.PodPort(p.Namespace, p.Name)
	if _, ok := p.Annotations[kube.PodNetworkAnnotation]; !ok {
		return fmt.Sprintf("no %s annotation: kovn-controller has not given it an address", kube.PodNetworkAnnotation), false
	}
	lsp := nb.SwitchPort(name)
	if lsp == nil {
		return fmt.Sprintf("no logical switch port %s in NB: kovn-controller has not programmed it", name), false
	}
	if v := lsp.Options["iface-id-ver"]; v != "" && v != string(p.UID) {
		return fmt.Sprintf("port %s still belongs to an earlier pod (iface-id-ver %s, pod UID %s)", name, v, p.UID), false
	}
	if sb == nil {
		return "", false
	}
	b := sb.Binding(name)
	if b == nil {
		return fmt.Sprintf("port %s has no Port_Binding in SB: northd has not translated it", name), false
	}
	ch := sb.BoundChassis(b)
	switch {
	case ch == "":
		return fmt.Sprintf("port %s is bound to no chassis: nothing on node %s has plugged it", name, p.Spec.NodeName), true
	case nodeChassis != "" && ch != nodeChassis:
		return fmt.Sprintf("port %s is bound on chassis %s, node %s's chassis is %s", name, ch, p.Spec.NodeName, nodeChassis), false
	case !sbview.Up(b):
		return fmt.Sprintf("port %s is bound on %s but not up: ovn-controller has not installed it (ovn-installed not set)", name, ch), false
	}
	return "", false
}

// podWarnings are kovn-controller's Warning Events on pods, listed once
// and only when a pod lacks its address: Events are many on a large
// cluster, and only such a pod needs them.
func (cl *cluster) podWarnings(ctx context.Context, r *Report) *events.Warnings {
	if !cl.warningsRead {
		cl.warningsRead = true
		w, err := events.List(ctx, cl.kube, "Pod", "", "")
		if err != nil {
			r.Notes = append(r.Notes, fmt.Sprintf("cannot list kovn-controller's Events on pods, which say why it refused a pod: %v", err))
		}
		cl.warnings = w
	}
	return cl.warnings
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// join lists at most n items and says how many more there are.
func join(items []string, n int) string {
	slices.Sort(items)
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], ", "), len(items)-n)
}
