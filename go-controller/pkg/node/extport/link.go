package extport

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// linkConfig is what an internal port's kernel link must look like.
type linkConfig struct {
	MAC     net.HardwareAddr
	Addr    netip.Prefix
	MTU     int // 0 leaves the MTU alone
	Gateway netip.Addr
	Routes  []netip.Prefix // through Gateway, on this link
}

// configureLink brings link name in line with want. It changes only what
// differs, so a pass with nothing to do causes no netlink event: kovn-node
// runs it on every event, and a pass that always wrote would wake itself.
func configureLink(name string, want linkConfig) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("interface %s: %w", name, err)
	}
	attrs := link.Attrs()
	if want.MAC != nil && !bytes.Equal(attrs.HardwareAddr, want.MAC) {
		// OVS sets it too, from the Interface's mac column, but on the
		// userspace datapath the tap may carry a random one until then.
		if err := netlink.LinkSetHardwareAddr(link, want.MAC); err != nil {
			return fmt.Errorf("set MAC %s on %s: %w", want.MAC, name, err)
		}
	}
	if want.MTU > 0 && attrs.MTU != want.MTU {
		if err := netlink.LinkSetMTU(link, want.MTU); err != nil {
			return fmt.Errorf("set MTU %d on %s: %w", want.MTU, name, err)
		}
	}
	if err := syncAddr(link, want.Addr); err != nil {
		return err
	}
	if attrs.Flags&net.FlagUp == 0 {
		if err := netlink.LinkSetUp(link); err != nil {
			return fmt.Errorf("set %s up: %w", name, err)
		}
	}
	return syncRoutes(link, want.Gateway, want.Routes)
}

// syncAddr leaves addr the link's only global address: the link is the
// port's alone, and an address the controller gave it before would
// otherwise stay when it assigns another.
func syncAddr(link netlink.Link, addr netip.Prefix) error {
	name := link.Attrs().Name
	addrs, err := netlink.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("addresses of %s: %w", name, err)
	}
	want := prefixIPNet(addr)
	have := false
	for _, a := range addrs {
		switch {
		case a.IPNet.String() == want.String():
			have = true
		case a.Scope == int(netlink.SCOPE_UNIVERSE):
			if err := netlink.AddrDel(link, &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
				return fmt.Errorf("remove stale address %s from %s: %w", a.IPNet, name, err)
			}
		}
	}
	if have {
		return nil
	}
	if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: want}); err != nil {
		return fmt.Errorf("address %s on %s: %w", addr, name, err)
	}
	return nil
}

// routeEntry is a route of the main table, as far as planRoutes cares.
type routeEntry struct {
	Dst       netip.Prefix
	Gw        netip.Addr // invalid for a connected or multipath route
	LinkIndex int
}

// planRoutes compares the routes the link should have (each of want
// through gw) with the main table's. It deletes the link's routes through
// a gateway that are not wanted (an earlier status's) and adds the
// missing ones, but refuses to take over a destination another link
// holds: replacing it would cut off whatever the host routes there now
// (on a Kubernetes node, the management port holds the cluster CIDR).
func planRoutes(link int, gw netip.Addr, want []netip.Prefix, have []routeEntry) (add, del []routeEntry, err error) {
	present := map[routeEntry]bool{}
	for _, r := range have {
		wanted := r.LinkIndex == link && r.Gw == gw && slices.Contains(want, r.Dst)
		switch {
		case wanted:
			present[r] = true
		case r.LinkIndex == link && r.Gw.IsValid():
			del = append(del, r)
		}
	}
	var conflicts []string
	for _, dst := range want {
		r := routeEntry{Dst: dst, Gw: gw, LinkIndex: link}
		if present[r] {
			continue
		}
		for _, h := range have {
			if h.Dst == dst && h.LinkIndex != link {
				conflicts = append(conflicts, fmt.Sprintf("%s (link index %d)", dst, h.LinkIndex))
				break
			}
		}
		add = append(add, r)
	}
	if len(conflicts) > 0 {
		return nil, nil, fmt.Errorf("routes already go through another interface, not taking them over: %v", conflicts)
	}
	return add, del, nil
}

// syncRoutes applies planRoutes to the kernel's main table.
func syncRoutes(link netlink.Link, gw netip.Addr, want []netip.Prefix) error {
	family := netlink.FAMILY_V4
	if gw.Is6() {
		family = netlink.FAMILY_V6
	}
	// A nil link lists the whole main table (RouteList skips other
	// tables unless asked), which the conflict check needs.
	rs, err := netlink.RouteList(nil, family)
	if err != nil {
		return fmt.Errorf("list routes: %w", err)
	}
	have := make([]routeEntry, 0, len(rs))
	for _, r := range rs {
		have = append(have, toEntry(r))
	}
	idx := link.Attrs().Index
	add, del, err := planRoutes(idx, gw, want, have)
	if err != nil {
		return fmt.Errorf("%s: %w", link.Attrs().Name, err)
	}
	for _, r := range del {
		nr := &netlink.Route{LinkIndex: idx, Dst: prefixIPNet(r.Dst), Gw: r.Gw.AsSlice()}
		if err := netlink.RouteDel(nr); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("remove stale route %s via %s dev %s: %w", r.Dst, r.Gw, link.Attrs().Name, err)
		}
	}
	for _, r := range add {
		nr := &netlink.Route{LinkIndex: idx, Dst: prefixIPNet(r.Dst), Gw: r.Gw.AsSlice()}
		if err := netlink.RouteReplace(nr); err != nil {
			return fmt.Errorf("route %s via %s dev %s: %w", r.Dst, r.Gw, link.Attrs().Name, err)
		}
	}
	return nil
}

func toEntry(r netlink.Route) routeEntry {
	e := routeEntry{LinkIndex: r.LinkIndex}
	if r.Dst != nil {
		ones, _ := r.Dst.Mask.Size()
		if a, ok := netip.AddrFromSlice(r.Dst.IP); ok {
			e.Dst = netip.PrefixFrom(a.Unmap(), ones)
		}
	} else if r.Family == netlink.FAMILY_V6 {
		e.Dst = netip.MustParsePrefix("::/0")
	} else {
		e.Dst = netip.MustParsePrefix("0.0.0.0/0")
	}
	if a, ok := netip.AddrFromSlice(r.Gw); ok {
		e.Gw = a.Unmap()
	}
	return e
}

func prefixIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// userspaceDatapath tells from the kernel whether bridge runs on OVS's
// userspace (netdev) datapath: its bridge device is then a tap, where the
// kernel datapath makes an "openvswitch" device. (The Open_vSwitch
// database says it too, but the ovs package does not expose the bridge's
// datapath_type.)
func userspaceDatapath(bridge string) (bool, error) {
	l, err := netlink.LinkByName(bridge)
	if err != nil {
		return false, fmt.Errorf("cannot tell the datapath type of %s from its device: %w", bridge, err)
	}
	return l.Type() == "tuntap", nil
}

// checkLink makes sure the interface to plug exists — OVS would accept the
// row and only report the missing device in the Interface's error column —
// and is up: a hypervisor brings its taps up, a veth made by hand is down,
// and a down port drops every frame without a word.
func checkLink(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("interface %s: %w", name, err)
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		if err := netlink.LinkSetUp(l); err != nil {
			return fmt.Errorf("bring %s up: %w", name, err)
		}
	}
	return nil
}
