package nbview

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
)

// Address is one entry of a switch port's addresses column, "MAC IP…".
type Address struct {
	MAC string
	IPs []netip.Addr
}

// ParseAddresses reads an addresses (or port_security) column. The
// keywords OVN allows there ("router", "unknown", "dynamic") carry no
// address of their own and are skipped, as are malformed entries.
func ParseAddresses(entries []string) []Address {
	var out []Address
	for _, e := range entries {
		f := strings.Fields(e)
		if len(f) == 0 || f[0] == "router" || f[0] == "unknown" || f[0] == "dynamic" {
			continue
		}
		a := Address{MAC: f[0]}
		for _, s := range f[1:] {
			if ip, err := netip.ParseAddr(s); err == nil {
				a.IPs = append(a.IPs, ip)
			} else if p, err := netip.ParsePrefix(s); err == nil {
				a.IPs = append(a.IPs, p.Addr())
			}
		}
		out = append(out, a)
	}
	return out
}

// PortIPv4 is a port's MAC and first IPv4 address (kovn programs IPv4).
func PortIPv4(lsp *nbdb.LogicalSwitchPort) (mac string, ip netip.Addr, ok bool) {
	for _, a := range ParseAddresses(lsp.Addresses) {
		for _, ip := range a.IPs {
			if ip.Is4() {
				return a.MAC, ip, true
			}
		}
	}
	return "", netip.Addr{}, false
}

// SwitchRouterPorts are the router ports a switch is attached to, through
// its "router" type ports' options:router-port.
func (v *View) SwitchRouterPorts(ls *nbdb.LogicalSwitch) []*nbdb.LogicalRouterPort {
	var out []*nbdb.LogicalRouterPort
	for _, u := range ls.Ports {
		lsp := v.SwitchPortByUUID(u)
		if lsp == nil || lsp.Type != "router" {
			continue
		}
		if lrp := v.RouterPort(lsp.Options["router-port"]); lrp != nil {
			out = append(out, lrp)
		}
	}
	return out
}

// GatewayFor is the router port on ls whose network holds ip: a pod's
// default gateway (the node switch's rtos- port, .1 of the subnet).
func (v *View) GatewayFor(ls *nbdb.LogicalSwitch, ip netip.Addr) (*nbdb.LogicalRouterPort, netip.Prefix, bool) {
	for _, lrp := range v.SwitchRouterPorts(ls) {
		for _, n := range lrp.Networks {
			if p, err := netip.ParsePrefix(n); err == nil && p.Contains(ip) {
				return lrp, p, true
			}
		}
	}
	return nil, netip.Prefix{}, false
}

// PortWithAddress is the port of ls that owns ip, nil when none does.
func (v *View) PortWithAddress(ls *nbdb.LogicalSwitch, ip netip.Addr) *nbdb.LogicalSwitchPort {
	for _, u := range ls.Ports {
		lsp := v.SwitchPortByUUID(u)
		if lsp == nil {
			continue
		}
		for _, a := range ParseAddresses(lsp.Addresses) {
			for _, x := range a.IPs {
				if x == ip {
					return lsp
				}
			}
		}
	}
	return nil
}

// PortNames turns switch port UUIDs into names (the UUID itself when the
// port is not in the view).
func (v *View) PortNames(uuids []string) []string {
	out := make([]string, 0, len(uuids))
	for _, u := range uuids {
		if p := v.SwitchPortByUUID(u); p != nil {
			out = append(out, p.Name)
		} else {
			out = append(out, u)
		}
	}
	return sortedStrings(out)
}

// SwitchesWithGroup and RoutersWithGroup say where a load balancer group
// applies.
func (v *View) SwitchesWithGroup(lbgUUID string) []string {
	var out []string
	for _, ls := range v.Switches {
		if contains(ls.LoadBalancerGroup, lbgUUID) {
			out = append(out, ls.Name)
		}
	}
	return out
}

// RoutersWithGroup: see SwitchesWithGroup.
func (v *View) RoutersWithGroup(lbgUUID string) []string {
	var out []string
	for _, lr := range v.Routers {
		if contains(lr.LoadBalancerGroup, lbgUUID) {
			out = append(out, lr.Name)
		}
	}
	return out
}

// SwitchesWithLB, RoutersWithLB and GroupsWithLB say what references a
// load balancer directly.
func (v *View) SwitchesWithLB(lbUUID string) []string {
	var out []string
	for _, ls := range v.Switches {
		if contains(ls.LoadBalancer, lbUUID) {
			out = append(out, ls.Name)
		}
	}
	return out
}

// RoutersWithLB: see SwitchesWithLB.
func (v *View) RoutersWithLB(lbUUID string) []string {
	var out []string
	for _, lr := range v.Routers {
		if contains(lr.LoadBalancer, lbUUID) {
			out = append(out, lr.Name)
		}
	}
	return out
}

// GroupsWithLB: see SwitchesWithLB.
func (v *View) GroupsWithLB(lbUUID string) []*nbdb.LoadBalancerGroup {
	var out []*nbdb.LoadBalancerGroup
	for _, g := range v.LBGroups {
		if contains(g.LoadBalancer, lbUUID) {
			out = append(out, g)
		}
	}
	return out
}

func contains(s []string, x string) bool { return slices.Contains(s, x) }

func sortedStrings(s []string) []string {
	slices.Sort(s)
	return s
}
