package ovs

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/vswitchd"
)

// The gateway's flows on br-ex name two ports by OpenFlow number: the NIC
// and ovn-controller's localnet patch port. kovn-node checks those flows
// every 2 s; reading the ports from this client's cache instead of running
// ovs-vsctl three times a check saves about 30 ms of CPU per check and node
// on a busy machine (ovs-vsctl took 2.7 of 111 CPU-seconds in the lab's
// 100-pod burst).

// LocalnetPatchPort returns the port of bridge that ovn-controller created
// for a localnet port (it marks the Port row, not the Interface, with
// external_ids:ovn-localnet-port), or "" when there is none yet. More than
// one is an error: the caller must say which is the gateway's.
func (c *Client) LocalnetPatchPort(ctx context.Context, bridge string) (string, error) {
	br, err := c.bridge(ctx, bridge)
	if err != nil || br == nil {
		return "", err
	}
	var found []string
	for _, u := range br.Ports {
		p, err := get(ctx, c.ovs, &vswitchd.Port{UUID: u})
		if err != nil {
			return "", err
		}
		if p == nil {
			continue // deleted since the bridge was read
		}
		if _, ok := p.ExternalIDs["ovn-localnet-port"]; ok {
			found = append(found, p.Name)
		}
	}
	slices.Sort(found)
	switch len(found) {
	case 0:
		return "", nil
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("bridge %s has several localnet patch ports: %s", bridge, strings.Join(found, ", "))
}

// OFPort returns the OpenFlow number ovs-vswitchd gave interface name and
// the bridge its port is on. A number of 0 means not numbered yet (or
// refused: see the interface's error column); a missing interface is an
// error.
func (c *Client) OFPort(ctx context.Context, name string) (ofport int, bridge string, err error) {
	iface, err := c.iface(ctx, name)
	if err != nil {
		return 0, "", err
	}
	if iface == nil {
		return 0, "", fmt.Errorf("no interface %s", name)
	}
	if iface.Ofport != nil && *iface.Ofport > 0 {
		ofport = *iface.Ofport
	}
	port, err := c.port(ctx, name)
	if err != nil || port == nil {
		return ofport, "", err
	}
	br, err := c.bridgeOfPort(ctx, port.UUID)
	if err != nil || br == nil {
		return ofport, "", err
	}
	return ofport, br.Name, nil
}
