// Package extport plugs the host side of an ExternalPort (kube.ExternalPort)
// into br-int: an existing interface (a VM's tap, the host end of a veth)
// as a system port, or an OVS internal port that carries a bare-metal
// host's own address on kovn's network. It writes the iface-id the
// controller assigned and waits for ovn-controller's ovn-installed, as CNI
// ADD does for a pod.
package extport

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/node/hostnet"
	"github.com/kovn-io/kovn/go-controller/pkg/node/ovs"
	"github.com/kovn-io/kovn/go-controller/pkg/node/podif"
)

// KeyExternalPort is the Interface external_ids key that marks a port as
// an ExternalPort's (its value is the iface-id). kovn-node's pod-port
// cleanup and metrics look only at ports with kovn.io/pod, so they leave
// these alone; Unplug removes only ports that carry it.
const KeyExternalPort = "kovn.io/external-port"

// gatewayBridge is the bridge no port may be moved off: ovs.AddPort moves
// an interface that is on another bridge, and moving the uplink NIC out
// of br-ex cuts the host off.
const gatewayBridge = "br-ex"

// kernel is what plugging needs from the host's network stack; tests,
// which cannot touch the host's links, replace it.
type kernel struct {
	checkLink func(name string) error
	userspace func(bridge string) (bool, error)
	txCsumOff func(name string) error
	waitLink  func(name string, timeout time.Duration) error
	configure func(name string, want linkConfig) error
}

func hostKernel() kernel {
	return kernel{
		checkLink: checkLink,
		userspace: userspaceDatapath,
		txCsumOff: podif.TxChecksumOff,
		waitLink: func(name string, timeout time.Duration) error {
			_, err := hostnet.WaitLink(name, timeout)
			return err
		},
		configure: configureLink,
	}
}

type plugger struct {
	o *ovs.Client
	k kernel
}

// Plug adds the existing host interface iface to bridge (br-int) as a
// system port with external_ids:iface-id=ifaceID and KeyExternalPort, and
// waits, within timeout, until ovn-controller has set ovn-installed on it.
// Plugging again with the same iface-id changes nothing; another iface-id
// replaces the binding (and waits for the new one). Other external_ids
// already on the interface (libvirt's, say) are kept. On the userspace
// datapath TX checksum offload is turned off on iface first: that datapath
// reads the frames raw, partial checksums and all, and TCP fails.
//
// Plug refuses an interface that is already a pod's or kovn's own port (it
// has another iface-id and no KeyExternalPort) or that is on br-ex.
func Plug(ctx context.Context, o *ovs.Client, bridge, iface, ifaceID string, timeout time.Duration) error {
	return plugger{o: o, k: hostKernel()}.plug(ctx, bridge, iface, ifaceID, timeout)
}

func (p plugger) plug(ctx context.Context, bridge, iface, ifaceID string, timeout time.Duration) error {
	if ifaceID == "" {
		return errors.New("plug: empty iface-id")
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := p.k.checkLink(iface); err != nil {
		return err
	}
	cur, err := p.existingIDs(ctx, bridge, iface, "")
	if err != nil {
		return err
	}
	userspace, err := p.k.userspace(bridge)
	if err != nil {
		return err
	}
	if userspace {
		if err := p.k.txCsumOff(iface); err != nil {
			return err
		}
	}
	if err := p.o.AddPort(ctx, bridge, iface, portIDs(cur, ifaceID)); err != nil {
		return fmt.Errorf("plug %s into %s: %w", iface, bridge, err)
	}
	return p.o.WaitInstalled(ctx, iface, timeout)
}

// PlugInternal makes (or updates) the OVS internal port name on bridge
// with the status' MAC and external_ids:iface-id=ifaceID (st.IfaceID when
// empty), waits for its kernel link, gives the link the MAC, MTU and first
// address of st, sets it up and routes st.Routes through st.Gateway on it.
// Default routes in st.Routes are left out: the host keeps its own. It
// then waits, within timeout, for ovn-installed, and re-applies the link's
// configuration, which the userspace datapath may have bounced meanwhile.
// Every step changes only what differs.
func PlugInternal(ctx context.Context, o *ovs.Client, bridge, name, ifaceID string, st *kube.ExternalPortStatus, timeout time.Duration) error {
	return plugger{o: o, k: hostKernel()}.plugInternal(ctx, bridge, name, ifaceID, st, timeout)
}

func (p plugger) plugInternal(ctx context.Context, bridge, name, ifaceID string, st *kube.ExternalPortStatus, timeout time.Duration) error {
	a, err := ParseStatus(st)
	if err != nil {
		return err
	}
	if a.MAC == nil {
		// OVS would pick a random one, which port security drops.
		return errors.New("the status has no MAC yet")
	}
	if ifaceID == "" {
		ifaceID = a.IfaceID
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cur, err := p.existingIDs(ctx, bridge, name, "internal")
	if err != nil {
		return err
	}
	if err := p.o.AddInternalPort(ctx, bridge, name, portIDs(cur, ifaceID), a.MAC.String()); err != nil {
		return fmt.Errorf("internal port %s on %s: %w", name, bridge, err)
	}
	if err := p.k.waitLink(name, remaining(ctx)); err != nil {
		return err
	}
	want := linkConfig{MAC: a.MAC, Addr: a.Addr, MTU: a.MTU, Gateway: a.Gateway, Routes: a.Routes}
	if err := p.k.configure(name, want); err != nil {
		return err
	}
	if err := p.o.WaitInstalled(ctx, name, timeout); err != nil {
		return err
	}
	return p.k.configure(name, want)
}

// Unplug removes iface's port from bridge. A port that is not there is no
// error; one that is not an ExternalPort's (no KeyExternalPort: a pod's,
// the management port, a tunnel) is refused, so a mistyped name cannot
// unplug the node.
func Unplug(ctx context.Context, o *ovs.Client, bridge, iface string) error {
	ports, err := o.Ports(ctx, bridge)
	if err != nil {
		return err
	}
	for _, pi := range ports {
		if pi.Name == iface && pi.ExternalIDs[KeyExternalPort] == "" {
			return fmt.Errorf("port %s on %s is not an external port (no external_ids:%s); not removing it", iface, bridge, KeyExternalPort)
		}
	}
	return o.DeletePort(ctx, bridge, iface)
}

// existingIDs returns the external_ids of port name on bridge, nil when it
// is not there, and refuses a port this package must not take over.
func (p plugger) existingIDs(ctx context.Context, bridge, name, ifaceType string) (map[string]string, error) {
	if bridge != gatewayBridge {
		ports, err := p.o.Ports(ctx, gatewayBridge)
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(ports, func(pi ovs.PortInfo) bool { return pi.Name == name }) {
			return nil, fmt.Errorf("%s is a port of %s; not moving it to %s", name, gatewayBridge, bridge)
		}
	}
	ports, err := p.o.Ports(ctx, bridge)
	if err != nil {
		return nil, err
	}
	if len(ports) == 0 {
		// Every bridge has its own local port, so no ports means no
		// bridge; ovn-controller makes br-int once it has its chassis.
		return nil, fmt.Errorf("bridge %s does not exist (is ovn-controller running and connected to SB?)", bridge)
	}
	for _, pi := range ports {
		if pi.Name != name {
			continue
		}
		if err := ownable(pi, ifaceType); err != nil {
			return nil, fmt.Errorf("port %s on %s: %w", name, bridge, err)
		}
		return pi.ExternalIDs, nil
	}
	return nil, nil
}

// ownable says whether an existing port may become (or stays) an
// ExternalPort's port of the given interface type.
func ownable(pi ovs.PortInfo, ifaceType string) error {
	if pi.Type != ifaceType {
		return fmt.Errorf("its interface type is %q, not %q", pi.Type, ifaceType)
	}
	if pi.ExternalIDs[KeyExternalPort] == "" && pi.ExternalIDs[ovs.KeyIfaceID] != "" {
		return fmt.Errorf("it is bound to iface-id %s and is not an external port (a pod's or kovn's own?)", pi.ExternalIDs[ovs.KeyIfaceID])
	}
	return nil
}

// portIDs is the interface's external_ids for ifaceID: what is there now,
// minus the binding keys, plus the new binding. ovn-installed goes too, so
// that a changed iface-id waits for the new binding (the ovs package
// ignores those keys when it compares, so an unchanged binding is no
// write). iface-id-ver goes because an ExternalPort has none, and a stale
// one would keep ovn-controller from binding.
func portIDs(cur map[string]string, ifaceID string) map[string]string {
	ids := map[string]string{}
	for k, v := range cur {
		switch k {
		case ovs.KeyIfaceID, ovs.KeyIfaceIDVer, ovs.KeyOVNInstalled, ovs.KeyOVNInstalledTS, KeyExternalPort:
		default:
			ids[k] = v
		}
	}
	ids[ovs.KeyIfaceID] = ifaceID
	ids[KeyExternalPort] = ifaceID
	return ids
}

func remaining(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), 0)
	}
	return time.Minute
}
