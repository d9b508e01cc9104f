package gateway

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"

	"github.com/digitalocean/go-openvswitch/ovs"
)

// DefaultZone is the conntrack zone of br-ex's flows when Config.Zone is 0.
// ovn-controller allocates its zones from 1 upward, one per logical port and
// router on the chassis, so a zone this high stays clear of them.
const DefaultZone uint16 = 64000

// ct_mark values: who started the connection.
const (
	markOVN  = 1
	markHost = 2
)

const (
	// cookieKovn marks kovn's flows ("kovn" in ASCII); the low 32 bits hold
	// the rule set's hash.
	cookieKovn uint64 = 0x6b6f766e << 32
	cookieMask uint64 = 0xffffffff << 32
)

const (
	tableIn    = 0 // every packet starts here
	tableReply = 1 // packets from the NIC after their conntrack lookup
)

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
	// Zone is the conntrack zone of the bridge's flows; 0 means DefaultZone.
	Zone uint16
	// RunDir is Open vSwitch's run directory, where db.sock and
	// <Bridge>.mgmt live; "" leaves the choice to ovs-vsctl and ovs-ofctl
	// ($OVS_RUNDIR, else /var/run/openvswitch).
	RunDir string
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
	if c.PatchPort != "" && (c.PatchPort == c.NIC || c.PatchPort == c.Bridge) {
		errs = append(errs, fmt.Errorf("patch port %q is also the NIC or the bridge", c.PatchPort))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("gateway config: %w", err)
	}
	return nil
}

func (c Config) zone() uint16 {
	if c.Zone == 0 {
		return DefaultZone
	}
	return c.Zone
}

// ofports are the OpenFlow numbers of the bridge's ports; patch is 0 while
// the patch port does not exist.
type ofports struct {
	nic, patch int
}

// desiredFlows returns the bridge's rule set, each flow carrying the cookie
// that identifies this exact set (see the package documentation for the
// reason of every flow).
func desiredFlows(cfg Config, p ofports) ([]*ovs.Flow, uint64, error) {
	zone := cfg.zone()
	commit := func(mark int) ovs.Action {
		return ovs.ConnectionTracking(fmt.Sprintf("commit,zone=%d,exec(set_field:%d->ct_mark)", zone, mark))
	}
	flows := []*ovs.Flow{
		{Table: tableIn, Priority: 100, Protocol: ovs.ProtocolIPv4, InPort: p.nic,
			Actions: []ovs.Action{ovs.ConnectionTracking(fmt.Sprintf("zone=%d,table=%d", zone, tableReply))}},
		{Table: tableIn, Priority: 100, Protocol: ovs.ProtocolIPv4, InPort: ovs.PortLOCAL,
			Actions: []ovs.Action{commit(markHost), ovs.Output(p.nic)}},
		{Table: tableIn, Priority: 100, Protocol: ovs.ProtocolARP,
			Actions: []ovs.Action{ovs.Flood()}},
		{Table: tableIn, Priority: 1,
			Actions: []ovs.Action{ovs.Normal()}},
		{Table: tableReply, Priority: 0,
			Actions: []ovs.Action{ovs.Local()}},
	}
	if p.patch != 0 {
		mac := ovs.DataLinkDestination(cfg.MAC.String())
		ovnConn := func(state ovs.CTState) []ovs.Match {
			return []ovs.Match{
				ovs.ConnectionTrackingState(ovs.SetState(state), ovs.SetState(ovs.CTStateTracked)),
				ovs.ConnectionTrackingMark(markOVN, 0),
			}
		}
		flows = append(flows,
			&ovs.Flow{Table: tableIn, Priority: 110, InPort: ovs.PortLOCAL, Matches: []ovs.Match{mac},
				Actions: []ovs.Action{ovs.Output(p.patch)}},
			&ovs.Flow{Table: tableIn, Priority: 110, InPort: p.patch, Matches: []ovs.Match{mac},
				Actions: []ovs.Action{ovs.Local()}},
			&ovs.Flow{Table: tableIn, Priority: 100, Protocol: ovs.ProtocolIPv4, InPort: p.patch,
				Actions: []ovs.Action{commit(markOVN), ovs.Output(p.nic)}},
			&ovs.Flow{Table: tableReply, Priority: 100, Protocol: ovs.ProtocolIPv4, Matches: ovnConn(ovs.CTStateEstablished),
				Actions: []ovs.Action{ovs.Output(p.patch)}},
			&ovs.Flow{Table: tableReply, Priority: 100, Protocol: ovs.ProtocolIPv4, Matches: ovnConn(ovs.CTStateRelated),
				Actions: []ovs.Action{ovs.Output(p.patch)}},
		)
	}
	// The hash covers the text OVS receives, so any change (ports renumbered,
	// another zone or MAC, a flow added in a later version) yields a new
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
