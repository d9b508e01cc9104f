package show

import (
	"fmt"

	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/tree"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// underlayNode is a node's part in underlay mode (docs/underlay.md): no
// switch, cluster router port or gateway router of its own — those are
// absent by design, not missing — but its pods' ports on the one flat
// switch, which the localnet port bridges onto the physical network
// (tagged with the VLAN when one is set) through the bridge the chassis
// maps physnet to.
func (s *Shower) underlayNode(root *tree.Node, ls *nbdb.LogicalSwitch, node, chassisID string) {
	root.Set("mode", "underlay: pods sit on "+ls.Name+"; a node has no switch, cluster router port or gateway router of its own")
	n := root.Child("Logical_Switch", ls.Name).Set("uuid", ls.UUID).Set("other_config", ls.OtherConfig).
		Set("load_balancer_group", groupNames(s.NB, ls.LoadBalancerGroup)).Set("owner", ownerNote(ls.ExternalIDs))
	pods, onNode, extPorts := 0, 0, 0
	vlan := ""
	for _, lsp := range s.portsOf(ls) {
		// Pod and external ports are only counted: requested-chassis
		// says which are this node's (a node's name, or for an external
		// port possibly its chassis' system-id).
		rc := lsp.Options["requested-chassis"]
		here := rc != "" && (rc == node || rc == chassisID)
		switch kind, _ := own.OwnerOf(lsp.ExternalIDs); kind {
		case own.KindPod:
			pods++
			if here {
				onNode++
			}
			continue
		case own.KindExternalPort:
			if here {
				extPorts++
			}
			continue
		}
		s.switchPort(n, lsp)
		if lsp.Type == "localnet" {
			vlan = "untagged (" + lsp.Name + ")"
			if lsp.TagRequest != nil {
				vlan = fmt.Sprintf("%d (tag_request of %s)", *lsp.TagRequest, lsp.Name)
			}
		}
	}
	if vlan == "" {
		vlan = "no localnet port: the switch does not reach the physical network"
	}
	n.Set("vlan", vlan).Set("pod ports on the node", onNode).Set("pod ports on the switch", pods)
	if extPorts > 0 {
		n.Set("external ports on the node", extPorts)
	}
}
