// Package externalport gives ExternalPorts (kovn.io/v1alpha1) — VMs' and
// bare-metal hosts' ports — an address and a logical switch port like a
// pod's, namespace address-set membership, and a status that says what to
// plug in where. In overlay mode every external port sits on one switch,
// kovn_external, whatever chassis it binds on: a VM that moves changes
// only its port's requested-chassis and keeps its address and MAC. In
// underlay mode external ports share the flat switch and its address pool
// with pods.
package externalport

import (
	"net"
	"net/netip"

	"github.com/kovn-io/kovn/go-controller/pkg/ipam"
	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// Network is where external ports get their addresses.
type Network struct {
	Switch  string // logical switch name
	Subnet  netip.Prefix
	Gateway netip.Addr
	// Routes are what a host keeping its own default route sends through
	// Gateway: the cluster and service CIDRs (overlay), the service CIDRs
	// (underlay, where pods are on the physical subnet already).
	Routes []netip.Prefix
	MTU    int
}

// MAC is the port's MAC: the one asked for, else derived from the IP
// like a pod's. A bad MAC in the spec is reported by the caller.
func MAC(ep *kube.ExternalPort, ip netip.Addr) (net.HardwareAddr, error) {
	if ep.Spec.MAC == "" {
		return ipam.MACFromIP(ip), nil
	}
	return net.ParseMAC(ep.Spec.MAC)
}

// Port is the logical switch port of an external port: bound only on the
// chassis its spec names, reachable only from its own MAC and IP.
func Port(ep *kube.ExternalPort, ip netip.Addr, mac net.HardwareAddr) *nbdb.LogicalSwitchPort {
	addr := mac.String() + " " + ip.String()
	return &nbdb.LogicalSwitchPort{
		Name:         own.ExternalPortPort(ep.Namespace, ep.Name),
		Addresses:    []string{addr},
		PortSecurity: []string{addr},
		Options:      map[string]string{"requested-chassis": ep.Spec.Chassis},
		ExternalIDs:  own.IDs(own.KindExternalPort, ep.Namespace+"/"+ep.Name, ""),
	}
}

// Status is what the controller tells the port's owner, without the
// conditions (see conditions).
func Status(ep *kube.ExternalPort, n Network, ip netip.Addr, mac net.HardwareAddr) kube.ExternalPortStatus {
	st := kube.ExternalPortStatus{
		IPs:                []string{netip.PrefixFrom(ip, n.Subnet.Bits()).String()},
		MAC:                mac.String(),
		Gateway:            n.Gateway.String(),
		MTU:                n.MTU,
		IfaceID:            own.ExternalPortPort(ep.Namespace, ep.Name),
		ObservedGeneration: ep.Generation,
	}
	for _, r := range n.Routes {
		st.Routes = append(st.Routes, r.String())
	}
	return st
}
