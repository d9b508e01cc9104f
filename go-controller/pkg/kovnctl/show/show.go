// Package show is `kovnctl show`: what one Kubernetes object became in
// OVN NB (and, where it says something, SB), as a tree. The object is
// read from the API when there is one, but the NB rows are found by the
// names and ownership kovn gives them (package ownership), so rows left
// behind by a deleted object are shown too, and so is an object whose
// rows are missing.
package show

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/nbview"
	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/sbview"
	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/tree"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// Shower answers show requests from one snapshot.
type Shower struct {
	Kube kubernetes.Interface // nil: NB (and SB) only
	// Dyn reads kovn's own resources (ExternalPorts); nil: NB (and SB) only.
	Dyn dynamic.Interface
	NB  *nbview.View
	SB  *sbview.View // nil: SB facts left out
}

// Kinds are the object kinds show knows, for the command's help.
var Kinds = []string{"pod", "service", "policy", "node", "externalport"}

// Show dispatches on kind ("pod", "svc", …) and NAME ("ns/name" or,
// for namespaced kinds, "name" in namespace ns).
func (s *Shower) Show(ctx context.Context, kind, name, ns string) (*tree.Node, error) {
	switch strings.ToLower(kind) {
	case "pod", "pods", "po":
		n, p, err := namespaced(name, ns)
		if err != nil {
			return nil, err
		}
		return s.Pod(ctx, n, p)
	case "service", "services", "svc":
		n, p, err := namespaced(name, ns)
		if err != nil {
			return nil, err
		}
		return s.Service(ctx, n, p)
	case "policy", "networkpolicy", "networkpolicies", "netpol":
		n, p, err := namespaced(name, ns)
		if err != nil {
			return nil, err
		}
		return s.Policy(ctx, n, p)
	case "node", "nodes", "no":
		return s.Node(ctx, name)
	case "externalport", "externalports", "eport", "ep":
		n, p, err := namespaced(name, ns)
		if err != nil {
			return nil, err
		}
		return s.ExternalPort(ctx, n, p)
	}
	return nil, fmt.Errorf("unknown kind %q; want one of %s", kind, strings.Join(Kinds, ", "))
}

func namespaced(name, ns string) (string, string, error) {
	if a, b, ok := strings.Cut(name, "/"); ok {
		if a == "" || b == "" || strings.Contains(b, "/") {
			return "", "", fmt.Errorf("%q is not NAMESPACE/NAME", name)
		}
		return a, b, nil
	}
	if name == "" {
		return "", "", fmt.Errorf("no name given")
	}
	if ns == "" {
		ns = "default"
	}
	return ns, name, nil
}

// apiState fills a root node with how the API answered, when it was
// consulted: "found", or why the object is not there.
func apiState(n *tree.Node, consulted bool, err error) bool {
	switch {
	case !consulted:
		n.Set("api", "not consulted (no kubeconfig)")
	case apierrors.IsNotFound(err):
		n.Set("api", "not found: any rows below are left from a deleted object")
	case err != nil:
		n.Set("api", "error: "+err.Error())
	default:
		return true
	}
	return false
}

// ownerNote is a row's owner in words, from its external_ids.
func ownerNote(ids map[string]string) string {
	kind, owner := own.OwnerOf(ids)
	if kind == "" {
		return ""
	}
	s := kind + " " + owner
	if id := ids[own.IDKey]; id != "" {
		s += " (" + id + ")"
	}
	return s
}

// switchPort adds a logical switch port with its key columns.
func (s *Shower) switchPort(parent *tree.Node, lsp *nbdb.LogicalSwitchPort) *tree.Node {
	n := parent.Child("Logical_Switch_Port", lsp.Name).
		Set("uuid", lsp.UUID).Set("type", lsp.Type).
		Set("addresses", lsp.Addresses).Set("port_security", lsp.PortSecurity)
	if lsp.TagRequest != nil {
		n.Set("tag_request", *lsp.TagRequest)
	}
	if lsp.Tag != nil {
		n.Set("tag", *lsp.Tag)
	}
	if lsp.Up != nil {
		n.Set("up", *lsp.Up)
	}
	if lsp.Enabled != nil && !*lsp.Enabled {
		n.Set("enabled", false)
	}
	return n.Set("options", lsp.Options).Set("external_ids", lsp.ExternalIDs)
}

// binding adds a port's SB Port_Binding: where it is bound and whether
// ovn-controller installed it.
func (s *Shower) binding(parent *tree.Node, port string) {
	if s.SB == nil {
		return
	}
	b := s.SB.Binding(port)
	if b == nil {
		parent.Child("Port_Binding", port).Set("state", "absent in SB: northd has not translated the port yet")
		return
	}
	n := parent.Child("Port_Binding", port)
	if ch := s.SB.BoundChassis(b); ch != "" {
		n.Set("chassis", ch)
	} else {
		n.Set("chassis", "none (not bound: no interface with this iface-id is plugged on any chassis)")
	}
	n.Set("up", sbview.Up(b))
}

func (s *Shower) routerPort(parent *tree.Node, lrp *nbdb.LogicalRouterPort) *tree.Node {
	n := parent.Child("Logical_Router_Port", lrp.Name).Set("mac", lrp.MAC).Set("networks", lrp.Networks).
		Set("options", lrp.Options)
	if lr := s.NB.RouterOf(lrp.UUID); lr != nil && parent.Kind != "Logical_Router" {
		n.Set("router", lr.Name)
	}
	return n
}

func groupNames(v *nbview.View, uuids []string) []string {
	var out []string
	for _, u := range uuids {
		if g := v.LoadBalancerGroupByUUID(u); g != nil {
			out = append(out, g.Name)
		} else {
			out = append(out, u)
		}
	}
	return out
}
