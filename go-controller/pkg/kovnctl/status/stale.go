package status

import (
	"fmt"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/nbview"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// row is one kovn-owned NB row, table-independent.
type row struct {
	table, name string
	ids         map[string]string
}

// ownedRows lists the NB rows of every table kovn writes with external_ids.
func ownedRows(nb *nbview.View) []row {
	var out []row
	add := func(table, name string, ids map[string]string) {
		if ids[own.KindKey] != "" {
			out = append(out, row{table, name, ids})
		}
	}
	for _, x := range nb.Switches {
		add("Logical_Switch", x.Name, x.ExternalIDs)
	}
	for _, x := range nb.SwitchPorts {
		add("Logical_Switch_Port", x.Name, x.ExternalIDs)
	}
	for _, x := range nb.Routers {
		add("Logical_Router", x.Name, x.ExternalIDs)
	}
	for _, x := range nb.RouterPorts {
		add("Logical_Router_Port", x.Name, x.ExternalIDs)
	}
	for _, x := range nb.PortGroups {
		add("Port_Group", x.Name, x.ExternalIDs)
	}
	for _, x := range nb.AddressSets {
		add("Address_Set", x.Name, x.ExternalIDs)
	}
	for _, x := range nb.ACLs {
		add("ACL", short(x.UUID), x.ExternalIDs)
	}
	for _, x := range nb.LBs {
		add("Load_Balancer", x.Name, x.ExternalIDs)
	}
	for _, x := range nb.NATs {
		add("NAT", x.Type+" "+x.LogicalIP, x.ExternalIDs)
	}
	for _, x := range nb.Routes {
		add("Logical_Router_Static_Route", x.IPPrefix, x.ExternalIDs)
	}
	for _, x := range nb.TemplateVars {
		add("Chassis_Template_Var", x.Chassis, x.ExternalIDs)
	}
	return out
}

func short(u string) string {
	if len(u) > 8 {
		return u[:8]
	}
	return u
}

var setRef = regexp.MustCompile(`\$([A-Za-z_.][A-Za-z_.0-9]*)`)

// stale reports kovn-owned rows whose owner is gone, one line per owner
// naming its rows. The controllers delete such rows themselves (on the
// owner's delete event and at start-up), so any found means an event was
// missed by a controller that has not restarted since, or that none is
// running.
func stale(r *Report, cl *cluster, nb *nbview.View) {
	pods := map[string]*corev1.Pod{}
	for i := range cl.pods {
		pods[cl.pods[i].Namespace+"/"+cl.pods[i].Name] = &cl.pods[i]
	}
	nodes := map[string]bool{}
	for _, n := range cl.nodes {
		nodes[n.Name] = true
	}
	referenced := map[string]bool{}
	for _, a := range nb.ACLs {
		for _, m := range setRef.FindAllStringSubmatch(a.Match, -1) {
			referenced[m[1]] = true
		}
	}
	byOwner := map[string][]string{}
	var order []string
	for _, x := range ownedRows(nb) {
		kind, owner := own.OwnerOf(x.ids)
		why := ""
		switch kind {
		case own.KindNode:
			if !nodes[owner] {
				why = "no such Node"
			}
		case own.KindPod:
			why = podGone(pods[owner], x.ids[own.PodUIDKey])
		case own.KindNamespace:
			if !cl.namespaces[owner] {
				why = "no such Namespace"
			}
		case own.KindService:
			if !cl.services[owner] {
				why = "no such Service"
			}
		case own.KindNetworkPolicy:
			if cl.policies[owner] == nil {
				why = "no such NetworkPolicy"
			}
		case own.KindPolicyIsolation:
			dir, _, _ := strings.Cut(x.ids[own.IDKey], "/")
			if !isolates(cl, owner, dir) {
				why = fmt.Sprintf("no NetworkPolicy of namespace %s isolates for %s", owner, dir)
			}
		case own.KindPolicySelector:
			if x.table == "Address_Set" && !referenced[x.name] {
				why = "no ACL refers to it"
			}
		}
		if why == "" {
			continue
		}
		key := kind + " " + owner + " (" + why + ")"
		if byOwner[key] == nil {
			order = append(order, key)
		}
		byOwner[key] = append(byOwner[key], x.table+" "+x.name)
	}
	for _, key := range order {
		r.problem("stale", "rows of %s: %s", key, join(byOwner[key], 4))
	}
	if len(order) == 0 {
		r.ok("stale", "every kovn-owned NB row has its owner")
	}
}

// podGone says why a pod's rows are stale: gone, another incarnation, or
// no longer on the network.
func podGone(p *corev1.Pod, uid string) string {
	switch {
	case p == nil:
		return "no such Pod"
	case uid != "" && uid != string(p.UID):
		return "the Pod was recreated, UID " + string(p.UID)
	case !onNetwork(p):
		return "the Pod is finished or uses the host network"
	}
	return ""
}

// isolates tells whether a policy of ns isolates in dir. The API server
// fills in policyTypes on create, so reading them is enough.
func isolates(cl *cluster, ns, dir string) bool {
	want := networkingv1.PolicyTypeIngress
	if dir == "egress" {
		want = networkingv1.PolicyTypeEgress
	}
	for key, np := range cl.policies {
		if !strings.HasPrefix(key, ns+"/") {
			continue
		}
		types := np.Spec.PolicyTypes
		if len(types) == 0 { // not defaulted (a fake API): the API's rule
			types = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
			if len(np.Spec.Egress) > 0 {
				types = append(types, networkingv1.PolicyTypeEgress)
			}
		}
		for _, t := range types {
			if t == want {
				return true
			}
		}
	}
	return false
}
