package ovs

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/vswitchd"
)

// PortInfo is what the cache says about one port and its interface.
type PortInfo struct {
	Name string
	// Type is the interface type: "" for a system device (NIC, veth),
	// "internal", "patch", "geneve", ….
	Type string
	// ExternalIDs are the interface's (where iface-id and kovn's keys live).
	ExternalIDs map[string]string
	// OFPort is 0 until ovs-vswitchd has opened the interface, and -1 when
	// it could not (Error then says why).
	OFPort int
	// Installed is external_ids:ovn-installed=true.
	Installed bool
	// Error is the interface's error column, set by ovs-vswitchd.
	Error string
}

// Ports lists bridge's ports, sorted by name, with their interfaces as the
// cache shows them: for the agent's start-up cleanup of ports whose pods
// are gone. A missing bridge has no ports.
func (c *Client) Ports(ctx context.Context, bridge string) ([]PortInfo, error) {
	br, err := c.bridge(ctx, bridge)
	if err != nil || br == nil {
		return nil, err
	}
	infos := make([]PortInfo, 0, len(br.Ports))
	for _, u := range br.Ports {
		port, err := get(ctx, c.ovs, &vswitchd.Port{UUID: u})
		if err != nil {
			return nil, err
		}
		if port == nil {
			// Deleted since the bridge was read.
			continue
		}
		info := PortInfo{Name: port.Name}
		iface, err := c.portIface(ctx, port)
		if err != nil {
			return nil, err
		}
		if iface != nil {
			info.fill(iface)
		}
		infos = append(infos, info)
	}
	slices.SortFunc(infos, func(a, b PortInfo) int { return cmp.Compare(a.Name, b.Name) })
	return infos, nil
}

// portIface returns the port's interface of the same name, or its first
// one for a port (a bond) that has none.
func (c *Client) portIface(ctx context.Context, port *vswitchd.Port) (*vswitchd.Interface, error) {
	var first *vswitchd.Interface
	for _, u := range port.Interfaces {
		iface, err := get(ctx, c.ovs, &vswitchd.Interface{UUID: u})
		if err != nil {
			return nil, err
		}
		if iface != nil && iface.Name == port.Name {
			return iface, nil
		}
		if first == nil {
			first = iface
		}
	}
	return first, nil
}

func (p *PortInfo) fill(iface *vswitchd.Interface) {
	p.Type = iface.Type
	p.ExternalIDs = maps.Clone(iface.ExternalIDs)
	if iface.Ofport != nil {
		p.OFPort = *iface.Ofport
	}
	p.Installed = iface.ExternalIDs[KeyOVNInstalled] == "true"
	if iface.Error != nil {
		p.Error = *iface.Error
	}
}

// describe says, for an error message, why an interface is not installed.
func (p *PortInfo) describe() string {
	switch {
	case p.OFPort == -1:
		return "interface has no ofport: device missing?"
	case p.OFPort == 0:
		return "no ofport yet: ovs-vswitchd has not opened the device (is it running?)"
	case p.ExternalIDs[KeyIfaceID] == "":
		return fmt.Sprintf("ofport %d but no external_ids:%s, so ovn-controller will not bind it", p.OFPort, KeyIfaceID)
	default:
		return fmt.Sprintf("ofport %d, %s=%s, but no %s=true from ovn-controller (is it running and does the logical port exist and request this chassis?)",
			p.OFPort, KeyIfaceID, p.ExternalIDs[KeyIfaceID], KeyOVNInstalled)
	}
}
