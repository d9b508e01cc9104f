// Package podif makes and removes a pod's network interface: a veth pair
// whose container end becomes eth0 in the pod's network namespace with the
// pod's MAC, addresses, MTU and routes, and whose host end is left for the
// caller to plug into br-int.
package podif

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/containernetworking/plugins/pkg/ip"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
)

// Config is what the pod's interface must look like.
type Config struct {
	NetNS      string // path of the pod's network namespace
	IfName     string // inside the pod, usually eth0
	HostIfName string // host end, derived from the container id
	MAC        net.HardwareAddr
	Addrs      []netip.Prefix
	Gateways   []netip.Addr // default route per family
	Routes     []Route      // extra routes
	MTU        int
	// TxChecksumOff turns off TX checksum offload on both ends: a userspace
	// (netdev) datapath forwards frames raw and would pass on the partial
	// checksums the kernel leaves for the NIC, so TCP would fail.
	TxChecksumOff bool
	// HostStackOff keeps the host's own stack off the host end. A
	// userspace datapath reads the veth through a packet socket, so the
	// host kernel sees the pod's frames too: it would answer the pod's ARP
	// for a host address (the management port's) with the veth's MAC, and
	// the pod's packets would then reach the host past OVN, while the
	// replies come back through OVN's conntrack, which drops them as
	// invalid. The host end gets arp_ignore=8 and no IPv6.
	HostStackOff bool
}

// Route is a route inside the pod.
type Route struct {
	Dst     netip.Prefix
	NextHop netip.Addr
}

// Result describes what was made.
type Result struct {
	HostIfName   string
	HostMAC      net.HardwareAddr
	ContainerMAC net.HardwareAddr
	Sandbox      string
}

// HostIfName derives the host end's name from the container id: stable,
// unique per sandbox, within the 15-byte limit of Linux interface names.
func HostIfName(containerID string) string {
	if len(containerID) > 13 {
		containerID = containerID[:13]
	}
	return "kv" + containerID
}

// Setup creates the pair and configures the pod side. On any error what
// was made is removed again, so a failed ADD leaves nothing behind.
func Setup(cfg Config) (res *Result, err error) {
	netns, err := ns.GetNS(cfg.NetNS)
	if err != nil {
		return nil, fmt.Errorf("open netns %s: %w", cfg.NetNS, err)
	}
	defer netns.Close()
	hostNS, err := ns.GetCurrentNS()
	if err != nil {
		return nil, err
	}
	defer hostNS.Close()
	// A leftover host end from an earlier, failed attempt would make the
	// veth creation fail; it belongs to this sandbox, so remove it.
	_ = ip.DelLinkByName(cfg.HostIfName)

	res = &Result{HostIfName: cfg.HostIfName, Sandbox: cfg.NetNS}
	defer func() {
		if err != nil {
			_ = ip.DelLinkByName(cfg.HostIfName)
		}
	}()
	err = netns.Do(func(hostNS ns.NetNS) error {
		hostIf, contIf, err := ip.SetupVethWithName(cfg.IfName, cfg.HostIfName, cfg.MTU, cfg.MAC.String(), hostNS)
		if err != nil {
			return fmt.Errorf("create veth %s/%s: %w", cfg.IfName, cfg.HostIfName, err)
		}
		res.HostMAC, res.ContainerMAC = hostIf.HardwareAddr, contIf.HardwareAddr
		return configureContainer(cfg)
	})
	if err != nil {
		return nil, err
	}
	host, err := netlink.LinkByName(cfg.HostIfName)
	if err != nil {
		return nil, fmt.Errorf("host end %s: %w", cfg.HostIfName, err)
	}
	if cfg.TxChecksumOff {
		if err := TxChecksumOff(cfg.HostIfName); err != nil {
			return nil, err
		}
	}
	if cfg.HostStackOff {
		if err := hostStackOff(cfg.HostIfName); err != nil {
			return nil, err
		}
	}
	if err := netlink.LinkSetUp(host); err != nil {
		return nil, fmt.Errorf("set %s up: %w", cfg.HostIfName, err)
	}
	return res, nil
}

// configureContainer runs inside the pod's namespace.
func configureContainer(cfg Config) error {
	link, err := netlink.LinkByName(cfg.IfName)
	if err != nil {
		return err
	}
	if cfg.TxChecksumOff {
		if err := TxChecksumOff(cfg.IfName); err != nil {
			return err
		}
	}
	for _, a := range cfg.Addrs {
		addr := &netlink.Addr{IPNet: prefixToIPNet(a)}
		if err := netlink.AddrAdd(link, addr); err != nil {
			return fmt.Errorf("add %s to %s: %w", a, cfg.IfName, err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return err
	}
	for _, gw := range cfg.Gateways {
		dst := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		if gw.Is6() {
			dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		}
		if err := addRoute(link, dst, gw); err != nil {
			return err
		}
	}
	for _, r := range cfg.Routes {
		if err := addRoute(link, r.Dst, r.NextHop); err != nil {
			return err
		}
	}
	return nil
}

func addRoute(link netlink.Link, dst netip.Prefix, via netip.Addr) error {
	err := netlink.RouteReplace(&netlink.Route{
		LinkIndex: link.Attrs().Index, Dst: prefixToIPNet(dst), Gw: via.AsSlice(),
	})
	if err != nil {
		return fmt.Errorf("route %s via %s: %w", dst, via, err)
	}
	return nil
}

// Teardown removes the host end (and with it the pair). It is idempotent:
// a missing link, or a namespace already gone, is success.
func Teardown(hostIfName string) error {
	err := ip.DelLinkByName(hostIfName)
	if err != nil && !errors.Is(err, ip.ErrLinkNotFound) {
		return fmt.Errorf("delete %s: %w", hostIfName, err)
	}
	return nil
}

// Check verifies that the pod's interface still has its addresses.
func Check(netnsPath, ifName string, want []netip.Prefix) error {
	netns, err := ns.GetNS(netnsPath)
	if err != nil {
		return err
	}
	defer netns.Close()
	return netns.Do(func(ns.NetNS) error {
		link, err := netlink.LinkByName(ifName)
		if err != nil {
			return fmt.Errorf("%s: %w", ifName, err)
		}
		addrs, err := netlink.AddrList(link, netlink.FAMILY_ALL)
		if err != nil {
			return err
		}
		have := map[string]bool{}
		for _, a := range addrs {
			have[a.IPNet.String()] = true
		}
		for _, w := range want {
			if !have[w.String()] {
				return fmt.Errorf("%s lacks %s", ifName, w)
			}
		}
		return nil
	})
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// hostStackOff makes the host kernel ignore an interface it would
// otherwise treat as one of its own (see Config.HostStackOff).
func hostStackOff(ifName string) error {
	for _, kv := range [][2]string{
		{"/proc/sys/net/ipv4/conf/" + ifName + "/arp_ignore", "8"},
		{"/proc/sys/net/ipv6/conf/" + ifName + "/disable_ipv6", "1"},
	} {
		if err := os.WriteFile(kv[0], []byte(kv[1]+"\n"), 0o644); err != nil && !(os.IsNotExist(err) && strings.Contains(kv[0], "ipv6")) {
			return fmt.Errorf("%s: %w", kv[0], err)
		}
	}
	return nil
}
