package show

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/events"
	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/nbview"
	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/tree"
	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// Pod shows a pod's port, its switch and SB binding, the port groups
// holding it (which policies select it, where it is isolated) and the
// address sets holding its IP.
func (s *Shower) Pod(ctx context.Context, ns, name string) (*tree.Node, error) {
	root := tree.New("Pod", ns+"/"+name)
	var pod *corev1.Pod
	if s.Kube != nil {
		p, err := s.Kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if apiState(root, true, err) {
			pod = p
		}
	} else {
		apiState(root, false, nil)
	}
	if pod != nil {
		podFacts(root, pod)
	}
	lsp := s.NB.SwitchPort(own.PodPort(ns, name))
	if lsp == nil {
		why, expected := whyNoPort(pod)
		// When kovn-controller refused the pod, its Event on the pod says why.
		if pod != nil && !expected && s.warning(ctx, root, "Pod", ns, name, string(pod.UID)) &&
			pod.Annotations[kube.PodNetworkAnnotation] == "" {
			why = "kovn-controller refused to give it an address: its Warning Event below says why"
		}
		root.Set("nb", fmt.Sprintf("no logical switch port %s: %s", own.PodPort(ns, name), why))
		return root, nil
	}
	pn := s.switchPort(root, lsp)
	if pod != nil && lsp.Options["iface-id-ver"] != "" && lsp.Options["iface-id-ver"] != string(pod.UID) {
		pn.Set("note", "iface-id-ver is not this pod's UID: the port is still an earlier pod's of the same name")
	}
	s.portContext(root, pn, lsp)
	return root, nil
}

// portContext adds what a pod's or an external port's switch port is part
// of: its SB binding (under pn), its switch, the port groups holding it
// (which policies select it, where it is isolated) and the address sets
// holding its IP.
func (s *Shower) portContext(root, pn *tree.Node, lsp *nbdb.LogicalSwitchPort) {
	s.binding(pn, lsp.Name)
	if ls := s.NB.SwitchOf(lsp.UUID); ls != nil {
		root.Child("Logical_Switch", ls.Name).Set("subnet", ls.OtherConfig["subnet"]).Set("owner", ownerNote(ls.ExternalIDs))
	}
	for _, pg := range s.NB.GroupsWithPort(lsp.UUID) {
		root.Child("Port_Group", pg.Name).Set("meaning", groupMeaning(pg.ExternalIDs)).Set("acls", len(pg.ACLs))
	}
	if _, ip, ok := nbview.PortIPv4(lsp); ok {
		for _, as := range s.NB.SetsWithAddress(ip) {
			root.Child("Address_Set", as.Name).Set("meaning", setMeaning(as.ExternalIDs)).Set("contains", ip.String())
		}
	}
}

// warning adds the latest Warning Event kovn-controller recorded on an
// object (kind, ns/name; uid "" for any incarnation) and tells whether
// there is one. Without an API there is none to read.
func (s *Shower) warning(ctx context.Context, root *tree.Node, kind, ns, name, uid string) bool {
	if s.Kube == nil {
		return false
	}
	e, err := events.Latest(ctx, s.Kube, kind, ns, name, uid)
	if err != nil {
		root.Set("events", "cannot read kovn-controller's Events: "+err.Error())
		return false
	}
	if e == nil {
		return false
	}
	root.Child("Event", e.Reason).Set("type", e.Type).Set("from", kube.ControllerComponent).Set("message", e.Message).
		Set("count", int(events.Count(e))).Set("last", events.When(e).UTC().Format(time.RFC3339))
	return true
}

func podFacts(n *tree.Node, pod *corev1.Pod) {
	n.Set("uid", string(pod.UID)).Set("node", pod.Spec.NodeName).Set("phase", string(pod.Status.Phase))
	if pod.Spec.HostNetwork {
		n.Set("hostNetwork", true)
	}
	if s, ok := pod.Annotations[kube.PodNetworkAnnotation]; ok {
		if pn, err := kube.ParsePodNetwork(s); err == nil {
			n.Set("pod-network", fmt.Sprintf("ips %s mac %s gateway %s mtu %d",
				strings.Join(pn.IPs, ","), pn.MAC, strings.Join(pn.Gateway, ","), pn.MTU))
		} else {
			n.Set("pod-network", "invalid: "+err.Error())
		}
	}
}

// whyNoPort guesses, from the pod, why it has no port, and whether that
// is expected.
func whyNoPort(pod *corev1.Pod) (string, bool) {
	switch {
	case pod == nil:
		return "and no pod to explain it", false
	case pod.Spec.HostNetwork:
		return "expected, the pod uses the host network", true
	case pod.Spec.NodeName == "":
		return "expected, the pod is not scheduled yet", true
	case pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed:
		return "expected, the pod has finished", true
	case pod.Annotations[kube.PodNetworkAnnotation] == "":
		return "kovn-controller has not given it an address yet, and no Warning Event of its says why (is it running and leading? see kovnctl status)", false
	}
	return "it has an address but no port: kovn-controller has not programmed it (see kovnctl status)", false
}

// groupMeaning says what membership of a port group means for a pod.
func groupMeaning(ids map[string]string) string {
	kind, owner := own.OwnerOf(ids)
	switch kind {
	case own.KindNetworkPolicy:
		return "selected by NetworkPolicy " + owner
	case own.KindPolicyIsolation:
		return fmt.Sprintf("isolated for %s in namespace %s (default deny below every allow)", ids[own.IDKey], owner)
	}
	return ownerNote(ids)
}

// setMeaning says what an address set holding a pod's IP is.
func setMeaning(ids map[string]string) string {
	kind, owner := own.OwnerOf(ids)
	switch kind {
	case own.KindNamespace:
		return "pods and external ports of namespace " + owner
	case own.KindPolicySelector:
		return "peer selector " + ids[own.IDKey]
	case own.KindPolicyInfra:
		return "node management addresses"
	}
	return ownerNote(ids)
}
