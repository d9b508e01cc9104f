package show

import (
	"context"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/tree"
	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// ExternalPort shows what an ExternalPort (a VM's or bare-metal host's
// port, docs/externalports.md) became: its spec and the status
// kovn-controller wrote, its logical switch port with the SB binding, the
// switch, the port groups holding it (NetworkPolicies select external
// ports by their labels, as pods) and the address sets holding its IP.
func (s *Shower) ExternalPort(ctx context.Context, ns, name string) (*tree.Node, error) {
	root := tree.New(kube.ExternalPortKind, ns+"/"+name)
	var ep *kube.ExternalPort
	if s.Dyn != nil {
		e, err := kube.GetExternalPort(ctx, s.Dyn, ns, name)
		if apiState(root, true, err) {
			ep = e
		}
	} else {
		apiState(root, false, nil)
	}
	if ep != nil {
		externalPortFacts(root, ep)
	}
	port := own.ExternalPortPort(ns, name)
	lsp := s.NB.SwitchPort(port)
	if lsp == nil {
		// Without a port kovn-controller either refused the spec (the
		// Ready condition and a Warning Event say why) or never synced it.
		s.warning(ctx, root, kube.ExternalPortKind, ns, name, "")
		root.Set("nb", fmt.Sprintf("no logical switch port %s: %s", port, whyNoExternalPort(ep)))
		return root, nil
	}
	pn := s.switchPort(root, lsp)
	if ep != nil && lsp.Options["requested-chassis"] != ep.Spec.Chassis {
		pn.Set("note", "requested-chassis is not spec.chassis: kovn-controller has not applied the move yet")
	}
	s.portContext(root, pn, lsp)
	return root, nil
}

func externalPortFacts(n *tree.Node, ep *kube.ExternalPort) {
	n.Set("labels", ep.Labels).Set("spec.chassis", ep.Spec.Chassis).Set("spec.ip", ep.Spec.IP).Set("spec.mac", ep.Spec.MAC)
	st := ep.Status
	n.Set("status.ips", st.IPs).Set("status.mac", st.MAC).Set("status.gateway", st.Gateway).
		Set("status.ifaceID", st.IfaceID).Set("status.chassis", st.Chassis)
	var conds []string
	for _, c := range st.Conditions {
		conds = append(conds, fmt.Sprintf("%s=%s %s: %s", c.Type, c.Status, c.Reason, c.Message))
	}
	slices.Sort(conds)
	n.Set("conditions", conds)
}

// whyNoExternalPort says, from the ExternalPort, why it has no port.
func whyNoExternalPort(ep *kube.ExternalPort) string {
	if ep == nil {
		return "and no ExternalPort to explain it"
	}
	ready := meta.FindStatusCondition(ep.Status.Conditions, kube.ExternalPortReady)
	switch {
	case ready != nil && ready.Status == metav1.ConditionFalse:
		return fmt.Sprintf("kovn-controller refused it: %s: %s", ready.Reason, ready.Message)
	case ready == nil:
		// kovn-controller runs external ports only when it found the CRD
		// at its start.
		return "kovn-controller has not synced it (is it running and leading, and was the ExternalPort CRD installed when it started? see kovnctl status)"
	}
	return "its status says Ready but NB has no port: kovn-controller has not caught up (see kovnctl status)"
}
