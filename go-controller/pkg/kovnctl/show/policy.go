package show

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/tree"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// Policy shows a NetworkPolicy's port group (the pods it selects), its
// ACLs, the address sets they refer to, and the isolation groups of its
// namespace that make its allows matter.
func (s *Shower) Policy(ctx context.Context, ns, name string) (*tree.Node, error) {
	root := tree.New("NetworkPolicy", ns+"/"+name)
	if s.Kube != nil {
		np, err := s.Kube.NetworkingV1().NetworkPolicies(ns).Get(ctx, name, metav1.GetOptions{})
		if apiState(root, true, err) {
			policyFacts(root, np)
		}
	} else {
		apiState(root, false, nil)
	}
	pgName := own.PolicyPortGroup(ns, name)
	pg := s.NB.PortGroup(pgName)
	if pg == nil {
		root.Set("nb", "no port group "+pgName+": kovn-controller has not programmed the policy")
	} else {
		s.portGroup(root, pg)
	}
	for _, dir := range []string{"ingress", "egress"} {
		if iso := s.NB.PortGroup(own.IsolationPortGroup(ns, dir)); iso != nil {
			s.portGroup(root, iso).Set("meaning", fmt.Sprintf("namespace %s: pods isolated for %s by some policy", ns, dir))
		}
	}
	return root, nil
}

func policyFacts(n *tree.Node, np *networkingv1.NetworkPolicy) {
	n.Set("podSelector", metav1.FormatLabelSelector(&np.Spec.PodSelector))
	var types []string
	for _, t := range np.Spec.PolicyTypes {
		types = append(types, string(t))
	}
	n.Set("policyTypes", types)
	n.Set("ingress rules", len(np.Spec.Ingress)).Set("egress rules", len(np.Spec.Egress))
}

// setRef finds the address sets an ACL match refers to ($name).
var setRef = regexp.MustCompile(`\$([A-Za-z_.][A-Za-z_.0-9]*)`)

func (s *Shower) portGroup(parent *tree.Node, pg *nbdb.PortGroup) *tree.Node {
	n := parent.Child("Port_Group", pg.Name).Set("uuid", pg.UUID).Set("owner", ownerNote(pg.ExternalIDs))
	ports := s.NB.PortNames(pg.Ports)
	if len(ports) == 0 {
		n.Set("ports", "none (selects no running pod)")
	} else {
		n.Set("ports", ports)
	}
	seen := map[string]bool{}
	var sets []string
	for _, a := range s.NB.ACLsOf(pg) {
		aclNode(n, a)
		for _, m := range setRef.FindAllStringSubmatch(a.Match, -1) {
			if !seen[m[1]] {
				seen[m[1]] = true
				sets = append(sets, m[1])
			}
		}
	}
	for _, name := range sets {
		as := s.NB.AddressSet(name)
		c := n.Child("Address_Set", name)
		if as == nil {
			c.Set("note", "missing: the ACLs referring to it match nothing (northd ignores them)")
			continue
		}
		c.Set("meaning", setMeaning(as.ExternalIDs))
		if len(as.Addresses) == 0 {
			c.Set("addresses", "none")
		} else {
			c.Set("addresses", as.Addresses)
		}
	}
	return n
}

func aclNode(parent *tree.Node, a *nbdb.ACL) {
	title := fmt.Sprintf("%s %d %s", a.Direction, a.Priority, a.Action)
	n := parent.Child("ACL", title).Set("uuid", a.UUID).Set("match", a.Match).
		Set("id", a.ExternalIDs[own.IDKey]).Set("options", a.Options)
	if a.Log {
		sev := ""
		if a.Severity != nil {
			sev = *a.Severity
		}
		n.Set("log", strings.TrimSpace("yes "+sev))
	}
}
