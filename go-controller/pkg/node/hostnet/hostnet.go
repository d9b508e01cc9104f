// Package hostnet changes the host's own network: it moves the node's
// addresses and routes from its NIC onto br-ex (the shared gateway), sets
// up the management port, and reads back what the node agent publishes.
package hostnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/coreos/go-iptables/iptables"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// MoveAddresses moves the NIC's global addresses and its routes onto the
// bridge. It is idempotent: when the NIC has nothing left to move (a
// restart after a successful move), it changes nothing.
func MoveAddresses(nic, bridge string) error {
	from, err := netlink.LinkByName(nic)
	if err != nil {
		return fmt.Errorf("gateway interface %s: %w", nic, err)
	}
	to, err := netlink.LinkByName(bridge)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", bridge, err)
	}
	if err := netlink.LinkSetUp(to); err != nil {
		return err
	}
	addrs, err := netlink.AddrList(from, netlink.FAMILY_ALL)
	if err != nil {
		return err
	}
	routes, err := netlink.RouteList(from, netlink.FAMILY_ALL)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if a.Scope != int(netlink.SCOPE_UNIVERSE) {
			continue // link-local addresses stay with the NIC
		}
		moved := &netlink.Addr{IPNet: a.IPNet}
		if err := netlink.AddrReplace(to, moved); err != nil {
			return fmt.Errorf("add %s to %s: %w", a.IPNet, bridge, err)
		}
		if err := netlink.AddrDel(from, &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return fmt.Errorf("remove %s from %s: %w", a.IPNet, nic, err)
		}
	}
	// Deleting the addresses took the connected routes with them; the
	// routes through a gateway must be re-created on the bridge.
	for _, r := range routes {
		if r.Gw == nil || r.Table != unix.RT_TABLE_MAIN {
			continue
		}
		nr := r
		nr.LinkIndex = to.Attrs().Index
		nr.ILinkIndex = 0
		if err := netlink.RouteReplace(&nr); err != nil {
			return fmt.Errorf("route %v via %s on %s: %w", r.Dst, r.Gw, bridge, err)
		}
	}
	return nil
}

// Gateway is what the host's shared gateway looks like.
type Gateway struct {
	IP      netip.Prefix
	NextHop netip.Addr
	MAC     net.HardwareAddr
}

// ReadGateway reads the bridge's first global IPv4 address, its MAC and the
// default route's next hop.
func ReadGateway(bridge string) (*Gateway, error) {
	link, err := netlink.LinkByName(bridge)
	if err != nil {
		return nil, err
	}
	g := &Gateway{MAC: link.Attrs().HardwareAddr}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return nil, err
	}
	for _, a := range addrs {
		if a.Scope == int(netlink.SCOPE_UNIVERSE) {
			ip, _ := netip.AddrFromSlice(a.IP.To4())
			ones, _ := a.Mask.Size()
			g.IP = netip.PrefixFrom(ip, ones)
			break
		}
	}
	if !g.IP.IsValid() {
		return nil, fmt.Errorf("%s has no IPv4 address", bridge)
	}
	routes, err := netlink.RouteList(link, netlink.FAMILY_V4)
	if err != nil {
		return nil, err
	}
	for _, r := range routes {
		if (r.Dst == nil || r.Dst.String() == "0.0.0.0/0") && r.Gw != nil {
			g.NextHop, _ = netip.AddrFromSlice(r.Gw.To4())
		}
	}
	// No default route is not an error here: OVS may have bounced the tap
	// and the kernel dropped the route; the caller knows the next hop from
	// what it published before.
	return g, nil
}

// WaitLink waits for a link to appear (OVS creates internal ports
// asynchronously), subscribing to link updates rather than polling.
func WaitLink(name string, timeout time.Duration) (netlink.Link, error) {
	updates := make(chan netlink.LinkUpdate, 16)
	done := make(chan struct{})
	defer close(done)
	if err := netlink.LinkSubscribe(updates, done); err != nil {
		return nil, err
	}
	if l, err := netlink.LinkByName(name); err == nil {
		return l, nil
	}
	deadline := time.After(timeout)
	for {
		select {
		case u := <-updates:
			if u.Attrs().Name == name {
				return netlink.LinkByName(name)
			}
		case <-deadline:
			return nil, fmt.Errorf("interface %s did not appear within %s", name, timeout)
		}
	}
}

// ManagementPort gives the host side of the management port its address
// and MTU and sets it up, changing only what differs (the agent calls it on
// every netlink change; a no-op must not cause another change).
func ManagementPort(name string, addr netip.Prefix, mtu int) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	if link.Attrs().MTU != mtu {
		if err := netlink.LinkSetMTU(link, mtu); err != nil {
			return err
		}
	}
	ipn := &net.IPNet{IP: addr.Addr().AsSlice(), Mask: net.CIDRMask(addr.Bits(), addr.Addr().BitLen())}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return err
	}
	have := false
	for _, a := range addrs {
		if a.IPNet.String() == ipn.String() {
			have = true
		}
	}
	if !have {
		if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: ipn}); err != nil {
			return fmt.Errorf("address %s on %s: %w", addr, name, err)
		}
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		return netlink.LinkSetUp(link)
	}
	return nil
}

// EnsureHostPortMasquerade makes connections the host DNATs to a pod (the
// portmap plugin's hostPort rules) leave through the management port with
// the management address as source. Without it the pod would answer
// through its gateway router, SNATed to the node IP from another port, and
// the client would never see a reply it can match.
func EnsureHostPortMasquerade(mgmtIf string) error {
	ipt, err := iptables.New()
	if err != nil {
		return err
	}
	return ipt.AppendUnique("nat", "POSTROUTING", "-o", mgmtIf, "-m", "conntrack", "--ctstate", "DNAT",
		"-m", "comment", "--comment", "kovn: hostPort replies return through the management port", "-j", "MASQUERADE")
}

// Route is a route the agent keeps on the host.
type Route struct {
	Dst netip.Prefix
	Via netip.Addr
	Dev string
}

// EnsureRoutes (re)adds routes. RouteReplace is idempotent and cheap.
func EnsureRoutes(routes []Route) error {
	for _, r := range routes {
		link, err := netlink.LinkByName(r.Dev)
		if err != nil {
			return err
		}
		dst := &net.IPNet{IP: r.Dst.Addr().AsSlice(), Mask: net.CIDRMask(r.Dst.Bits(), r.Dst.Addr().BitLen())}
		if err := netlink.RouteReplace(&netlink.Route{LinkIndex: link.Attrs().Index, Dst: dst, Gw: r.Via.AsSlice()}); err != nil {
			return fmt.Errorf("route %s via %s dev %s: %w", r.Dst, r.Via, r.Dev, err)
		}
	}
	return nil
}

// Changes delivers a signal whenever a route or link changes on the host,
// so the agent can restore its routes at once: the kernel drops every route
// through a device that goes down, which OVS's userspace datapath does to
// its tap devices when it reconfigures them.
func Changes(ctx context.Context) (<-chan struct{}, error) {
	routes := make(chan netlink.RouteUpdate, 64)
	links := make(chan netlink.LinkUpdate, 64)
	if err := netlink.RouteSubscribe(routes, ctx.Done()); err != nil {
		return nil, err
	}
	if err := netlink.LinkSubscribe(links, ctx.Done()); err != nil {
		return nil, err
	}
	out := make(chan struct{}, 1)
	notify := func() {
		select {
		case out <- struct{}{}:
		default: // one pending signal is enough
		}
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-routes:
				if !ok {
					return
				}
				notify()
			case _, ok := <-links:
				if !ok {
					return
				}
				notify()
			}
		}
	}()
	return out, nil
}

// IsolateNIC keeps the host's own stack away from a NIC that OVS's
// userspace datapath reads through a raw socket. The kernel still receives
// every frame on it too, and since the node IP is local (on br-ex) it would
// answer traffic meant for the gateway router — a TCP RST to every SYN-ACK
// of a pod's outgoing connection. Packet sockets see frames before the raw
// table, so OVS is unaffected. With the kernel datapath the NIC's frames go
// to OVS only, and this is not needed.
func IsolateNIC(nic string) error {
	for _, proto := range []iptables.Protocol{iptables.ProtocolIPv4, iptables.ProtocolIPv6} {
		ipt, err := iptables.NewWithProtocol(proto)
		if err != nil {
			return err
		}
		if err := ipt.AppendUnique("raw", "PREROUTING", "-i", nic, "-m", "comment", "--comment",
			"kovn: "+nic+" belongs to the OVS userspace datapath", "-j", "DROP"); err != nil {
			return err
		}
	}
	// ARP is not IP: tell the kernel not to answer it on the NIC either.
	return os.WriteFile("/proc/sys/net/ipv4/conf/"+nic+"/arp_ignore", []byte("8\n"), 0o644)
}

// DefaultNextHop returns the IPv4 default route's next hop through dev, or
// an invalid address when there is none.
func DefaultNextHop(dev string) netip.Addr {
	link, err := netlink.LinkByName(dev)
	if err != nil {
		return netip.Addr{}
	}
	routes, err := netlink.RouteList(link, netlink.FAMILY_V4)
	if err != nil {
		return netip.Addr{}
	}
	for _, r := range routes {
		if (r.Dst == nil || r.Dst.String() == "0.0.0.0/0") && r.Gw != nil {
			a, _ := netip.AddrFromSlice(r.Gw.To4())
			return a
		}
	}
	return netip.Addr{}
}

// EnableForwarding turns on IPv4 forwarding: hostPort traffic arrives on
// br-ex and leaves, DNATed, through the management port.
func EnableForwarding() error {
	return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1\n"), 0o644)
}
