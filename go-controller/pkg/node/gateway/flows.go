package gateway

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"

	"github.com/digitalocean/go-openvswitch/ovs"

	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

const (
	// cookieKovn marks kovn's flows ("kovn" in ASCII); the low 32 bits hold
	// the rule set's hash.
	cookieKovn uint64 = 0x6b6f766e << 32
	cookieMask uint64 = 0xffffffff << 32
)

// tableIn is the only table: the rules are stateless.
const tableIn = 0

// Config describes one node's shared-gateway bridge.
type Config struct {
	// Bridge is the bridge holding the node IP on its LOCAL port (br-ex).
	Bridge string
	// NIC is the bridge's port to the physical network (eth0).
	NIC string
	// PatchPort is ovn-controller's patch port from Bridge to br-int for
	// the localnet port; "" until it exists (see PatchPort), in which case
	// only the host's flows are installed.
	PatchPort string
	// NodeIP is the address shared by the host and GR_<node>; IPv4 only.
	NodeIP netip.Addr
	// MAC is the address shared by the bridge's LOCAL port and the GR's
	// external port.
	MAC net.HardwareAddr
	// NodePorts is the Kubernetes NodePort range (30000-32767 by default):
	// new connections to the node IP on these TCP and UDP ports belong to
	// the GR's load balancers, not to the host. The zero range steers none.
	NodePorts PortRange
	// RunDir is Open vSwitch's run directory, where db.sock and
	// <Bridge>.mgmt live; "" leaves the choice to ovs-vsctl and ovs-ofctl
	// ($OVS_RUNDIR, else /var/run/openvswitch).
	RunDir string
	// Resolve, if set, gives an interface's OpenFlow number and the bridge
	// it is on (kovn-node reads them from its OVSDB cache); nil asks
	// ovs-vsctl.
	Resolve func(ctx context.Context, iface string) (ofport int, bridge string, err error)
}

func (c Config) validate() error {
	var errs []error
	if c.Bridge == "" {
		errs = append(errs, errors.New("bridge is empty"))
	}
	if c.NIC == "" {
		errs = append(errs, errors.New("NIC is empty"))
	}
	if !c.NodeIP.Is4() {
		errs = append(errs, fmt.Errorf("node IP %v: only IPv4 is supported", c.NodeIP))
	}
	if len(c.MAC) != 6 {
		errs = append(errs, fmt.Errorf("MAC %q is not a 48-bit address", c.MAC))
	}
	if c.NodePorts.Min > c.NodePorts.Max {
		errs = append(errs, fmt.Errorf("node port range %d-%d is empty", c.NodePorts.Min, c.NodePorts.Max))
	}
	if c.NodePorts.Max >= own.GatewaySNATPortMin {
		errs = append(errs, fmt.Errorf("node port range %d-%d overlaps the gateway's SNAT ports %s", c.NodePorts.Min, c.NodePorts.Max, own.GatewaySNATPortRange))
	}
	if c.PatchPort != "" && (c.PatchPort == c.NIC || c.PatchPort == c.Bridge) {
		errs = append(errs, fmt.Errorf("patch port %q is also the NIC or the bridge", c.PatchPort))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("gateway config: %w", err)
	}
	return nil
}

// PortRange is an inclusive range of TCP/UDP ports.
type PortRange struct{ Min, Max uint16 }

// ofports are the OpenFlow numbers of the bridge's ports; patch is 0 while
// the patch port does not exist.
type ofports struct {
	nic, patch int
}

// desiredFlows returns the bridge's rule set, each flow carrying the cookie
// that identifies this exact set (see the package documentation for the
// reason of every flow).
func desiredFlows(cfg Config, p ofports) ([]*ovs.Flow, uint64, error) {
	nodeIP := ovs.NetworkDestination(cfg.NodeIP.String())
	flows := []*ovs.Flow{
		{Table: tableIn, Priority: 100, Protocol: ovs.ProtocolIPv4, InPort: ovs.PortLOCAL,
			Actions: []ovs.Action{ovs.Output(p.nic)}},
		{Table: tableIn, Priority: 90, Protocol: ovs.ProtocolIPv4, InPort: p.nic,
			Actions: []ovs.Action{ovs.Local()}},
		{Table: tableIn, Priority: 100, Protocol: ovs.ProtocolARP,
			Actions: []ovs.Action{ovs.Flood()}},
		{Table: tableIn, Priority: 1,
			Actions: []ovs.Action{ovs.Normal()}},
	}
	if p.patch != 0 {
		mac := ovs.DataLinkDestination(cfg.MAC.String())
		ovnPorts := ovs.TransportDestinationMaskedPort(own.GatewaySNATPortMin, own.GatewaySNATPortMask)
		flows = append(flows,
			&ovs.Flow{Table: tableIn, Priority: 110, InPort: ovs.PortLOCAL, Matches: []ovs.Match{mac},
				Actions: []ovs.Action{ovs.Output(p.patch)}},
			&ovs.Flow{Table: tableIn, Priority: 110, InPort: p.patch, Matches: []ovs.Match{mac},
				Actions: []ovs.Action{ovs.Local()}},
			&ovs.Flow{Table: tableIn, Priority: 100, Protocol: ovs.ProtocolIPv4, InPort: p.patch,
				Actions: []ovs.Action{ovs.Output(p.nic)}},
			&ovs.Flow{Table: tableIn, Priority: 100, Protocol: ovs.ProtocolTCPv4, InPort: p.nic, Matches: []ovs.Match{nodeIP, ovnPorts},
				Actions: []ovs.Action{ovs.Output(p.patch)}},
			&ovs.Flow{Table: tableIn, Priority: 100, Protocol: ovs.ProtocolUDPv4, InPort: p.nic, Matches: []ovs.Match{nodeIP, ovnPorts},
				Actions: []ovs.Action{ovs.Output(p.patch)}},
			// Echo requests are the host's to answer; echo replies and
			// errors may concern either side's connections, and each side
			// drops what it does not expect.
			&ovs.Flow{Table: tableIn, Priority: 105, Protocol: ovs.ProtocolICMPv4, InPort: p.nic,
				Matches: []ovs.Match{nodeIP, ovs.ICMPType(8)}, Actions: []ovs.Action{ovs.Local()}},
			&ovs.Flow{Table: tableIn, Priority: 100, Protocol: ovs.ProtocolICMPv4, InPort: p.nic, Matches: []ovs.Match{nodeIP},
				Actions: []ovs.Action{ovs.Local(), ovs.Output(p.patch)}},
			// Fragments after the first carry no ports: they cannot be
			// steered, so both sides get them and each reassembles what
			// it has the first fragment of (a large UDP reply to a pod).
			&ovs.Flow{Table: tableIn, Priority: 101, Protocol: ovs.ProtocolIPv4, InPort: p.nic,
				Matches: []ovs.Match{nodeIP, ovs.IPFrag(ovs.IPFragFlagLater)}, Actions: []ovs.Action{ovs.Local(), ovs.Output(p.patch)}},
		)
		np, err := nodePortFlows(cfg, p, nodeIP)
		if err != nil {
			return nil, 0, err
		}
		flows = append(flows, np...)
	}
	// The hash covers the text OVS receives, so any change (ports renumbered,
	// another node IP or MAC, a flow added in a later version) yields a new
	// cookie and therefore a rewrite.
	h := fnv.New32a()
	for _, f := range flows {
		text, err := f.MarshalText()
		if err != nil {
			return nil, 0, fmt.Errorf("flow %#v: %w", f, err)
		}
		h.Write(text)
		h.Write([]byte{'\n'})
	}
	cookie := cookieKovn | uint64(h.Sum32())
	for _, f := range flows {
		f.Cookie = cookie
	}
	return flows, cookie, nil
}

// nodePortFlows send TCP and UDP for the node IP's NodePorts to the GR,
// whose load balancers own them; a range becomes a few masked matches.
func nodePortFlows(cfg Config, p ofports, nodeIP ovs.Match) ([]*ovs.Flow, error) {
	if cfg.NodePorts == (PortRange{}) {
		return nil, nil
	}
	r := ovs.PortRange{Start: cfg.NodePorts.Min, End: cfg.NodePorts.Max}
	bits, err := r.BitwiseMatch()
	if err != nil {
		return nil, fmt.Errorf("node port range: %w", err)
	}
	var flows []*ovs.Flow
	for _, proto := range []ovs.Protocol{ovs.ProtocolTCPv4, ovs.ProtocolUDPv4} {
		for _, b := range bits {
			flows = append(flows, &ovs.Flow{Table: tableIn, Priority: 100, Protocol: proto, InPort: p.nic,
				Matches: []ovs.Match{nodeIP, ovs.TransportDestinationMaskedPort(b.Value, b.Mask)},
				Actions: []ovs.Action{ovs.Output(p.patch)}})
		}
	}
	return flows, nil
}
