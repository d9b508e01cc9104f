package node

import (
	"fmt"
	"net/netip"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"k8s.io/klog/v2"

	"github.com/kovn-io/kovn/go-controller/pkg/config"
	"github.com/kovn-io/kovn/go-controller/pkg/ipam"
	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// ExternalRows are the overlay's switch for ExternalPorts and its link to
// the cluster router.
type ExternalRows struct {
	Switch      *nbdb.LogicalSwitch
	RouterPort  *nbdb.LogicalRouterPort
	SwitchToRtr *nbdb.LogicalSwitchPort
}

func clusterIDs(id string) map[string]string { return own.IDs(own.KindCluster, "cluster", id) }

// ExternalSwitchRows is a pure function of the switch's subnet: a node
// switch without a node, its gateway the subnet's first address.
func ExternalSwitchRows(subnet netip.Prefix, lbGroup string) ExternalRows {
	gw := ipam.GatewayIP(subnet)
	ids := clusterIDs("external-ports")
	return ExternalRows{
		Switch: &nbdb.LogicalSwitch{
			Name:              own.ExternalPortSwitch,
			OtherConfig:       map[string]string{"subnet": subnet.String()},
			ExternalIDs:       ids,
			LoadBalancerGroup: lbGroups(lbGroup),
		},
		RouterPort: &nbdb.LogicalRouterPort{
			Name:        own.RouterToSwitchPort(own.ExternalPortSwitch),
			MAC:         ipam.MACFromIP(gw).String(),
			Networks:    []string{netip.PrefixFrom(gw, subnet.Bits()).String()},
			ExternalIDs: ids,
		},
		SwitchToRtr: &nbdb.LogicalSwitchPort{
			Name:        own.SwitchToRouterPort(own.ExternalPortSwitch),
			Type:        "router",
			Addresses:   []string{"router"},
			Options:     map[string]string{"router-port": own.RouterToSwitchPort(own.ExternalPortSwitch)},
			ExternalIDs: ids,
		},
	}
}

// UnderlayRows are underlay mode's whole topology: one flat switch whose
// localnet port bridges it onto the physical network (tagged when a VLAN
// is set); the physical router is the gateway, so there is no OVN router.
func UnderlayRows(u config.Underlay, lbGroup string) (*nbdb.LogicalSwitch, *nbdb.LogicalSwitchPort) {
	ids := clusterIDs("underlay")
	ls := &nbdb.LogicalSwitch{
		Name:              own.UnderlaySwitch,
		OtherConfig:       map[string]string{"subnet": u.Subnet.String()},
		ExternalIDs:       ids,
		LoadBalancerGroup: lbGroups(lbGroup),
	}
	// Each row gets its own map: the builders may keep them.
	ln := &nbdb.LogicalSwitchPort{
		Name:      own.UnderlayLocalnetPort,
		Type:      "localnet",
		Addresses: []string{"unknown"},
		// Every node maps this network to br-ex, which holds its uplink.
		Options:     map[string]string{"network_name": own.PhysicalNetwork},
		ExternalIDs: clusterIDs("underlay"),
	}
	if u.VLAN != 0 {
		tag := u.VLAN
		ln.TagRequest = &tag
	}
	return ls, ln
}

// externalSwitchSubnet is kovn_external's subnet: the one NB serves (kept
// across restarts), else a new one from the cluster CIDR. Called by Start
// after the nodes' subnets are reserved, so a new one cannot take theirs.
func (c *Controller) externalSwitchSubnet() (netip.Prefix, error) {
	if ls, err := nbops.GetSwitch(c.nb, own.ExternalPortSwitch); err == nil {
		if p, err := netip.ParsePrefix(ls.OtherConfig["subnet"]); err == nil {
			err := c.subnets.Reserve(own.ExternalPortSwitch, p)
			if err == nil {
				return p, nil
			}
			klog.InfoS("external port subnet conflicts with a node's; it gets a new one", "subnet", p, "err", err)
		}
	}
	p, err := c.subnets.Allocate(own.ExternalPortSwitch)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("subnet for external ports: %w", err)
	}
	return p, nil
}

// externalOps ensures the external port switch on the cluster router.
func (c *Controller) externalOps(lrUUID, lbGroup string) ([]ovsdb.Operation, error) {
	subnet, err := c.externalSwitchSubnet()
	if err != nil {
		return nil, err
	}
	r := ExternalSwitchRows(subnet, lbGroup)
	b := &opsBuilder{nb: c.nb}
	lsUUID := b.ensureSwitch(r.Switch)
	b.ensureSwitchPort(lsUUID, r.SwitchToRtr)
	b.ensureRouterPort(lrUUID, r.RouterPort)
	return b.ops, b.err
}

// underlayOps ensures underlay mode's switch and localnet port.
func (c *Controller) underlayOps(lbGroup string) ([]ovsdb.Operation, error) {
	ls, ln := UnderlayRows(c.cfg.Underlay, lbGroup)
	b := &opsBuilder{nb: c.nb}
	lsUUID := b.ensureSwitch(ls)
	b.ensureSwitchPort(lsUUID, ln)
	return b.ops, b.err
}
