package extport

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	"github.com/vishvananda/netlink"
)

func TestPlanRoutes(t *testing.T) {
	pfx, addr := netip.MustParsePrefix, netip.MustParseAddr
	gw := addr("10.128.250.1")
	want := []netip.Prefix{pfx("10.128.0.0/14"), pfx("10.96.0.0/16")}
	const link, other = 7, 2
	have := []routeEntry{
		{Dst: pfx("0.0.0.0/0"), Gw: addr("192.168.1.1"), LinkIndex: other}, // the host's own
		{Dst: pfx("10.128.250.0/24"), LinkIndex: link},                     // connected
		{Dst: pfx("10.128.0.0/14"), Gw: gw, LinkIndex: link},               // in place
		{Dst: pfx("10.96.0.0/16"), Gw: addr("10.128.250.9"), LinkIndex: link},
		{Dst: pfx("172.30.0.0/16"), Gw: gw, LinkIndex: link}, // an earlier status'
	}
	add, del, err := planRoutes(link, gw, want, have)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(add, del); got != "[{10.96.0.0/16 10.128.250.1 7}] [{10.96.0.0/16 10.128.250.9 7} {172.30.0.0/16 10.128.250.1 7}]" {
		t.Errorf("add, del = %s", got)
	}

	// Nothing to do: nothing planned.
	have = []routeEntry{{Dst: want[0], Gw: gw, LinkIndex: link}, {Dst: want[1], Gw: gw, LinkIndex: link}}
	if add, del, err := planRoutes(link, gw, want, have); err != nil || len(add)+len(del) != 0 {
		t.Errorf("in place: add %v del %v err %v", add, del, err)
	}

	// The management port of a Kubernetes node holds the cluster CIDR.
	have = []routeEntry{{Dst: want[0], Gw: addr("10.128.1.1"), LinkIndex: other}}
	if _, _, err := planRoutes(link, gw, want, have); err == nil || !strings.Contains(err.Error(), "10.128.0.0/14 (link index 2)") {
		t.Errorf("conflict: %v", err)
	}
}

// TestConfigureLink runs against a veth (standing in for the OVS
// internal port) in a private network namespace.
func TestConfigureLink(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	netns, err := testutils.NewNS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = netns.Close()
		_ = testutils.UnmountNS(netns)
	})
	err = netns.Do(func(ns.NetNS) error {
		// IPv6 autoconfiguration adds addresses and routes a second or
		// more after the link comes up (DAD), which the quiet check
		// below would count; kovn only manages IPv4 here.
		for _, k := range []string{"all", "default"} {
			if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+k+"/disable_ipv6", []byte("1"), 0o644); err != nil && !os.IsNotExist(err) {
				return err
			}
		}
		// A veth, not a dummy: the dummy module may be missing. Its peer
		// is up, so that the link has a carrier as a plugged port has.
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "kovn-host0"}, PeerName: "peer0"}); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "peer0"}}); err != nil {
			return err
		}
		mac, _ := net.ParseMAC("0a:58:0a:80:fa:05")
		want := linkConfig{
			MAC: mac, Addr: netip.MustParsePrefix("10.128.250.5/24"), MTU: 1400, Gateway: netip.MustParseAddr("10.128.250.1"),
			Routes: []netip.Prefix{netip.MustParsePrefix("10.128.0.0/14"), netip.MustParsePrefix("10.96.0.0/16")},
		}
		// An address and a route an earlier status left.
		l, _ := netlink.LinkByName("kovn-host0")
		if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: prefixIPNet(netip.MustParsePrefix("10.128.251.7/24"))}); err != nil {
			return err
		}
		if err := configureLink("kovn-host0", want); err != nil {
			return err
		}
		if err := checkLinkState(want); err != nil {
			return err
		}
		// A second pass must not touch the kernel: kovn-node runs one
		// on every netlink event, and would otherwise wake itself.
		if n := eventsDuring(t, func() error { return configureLink("kovn-host0", want) }); n != 0 {
			return fmt.Errorf("a pass with nothing to do caused %d netlink events", n)
		}
		// The status shrinks and moves: the old route and address go.
		want.Addr, want.Gateway = netip.MustParsePrefix("10.128.252.5/24"), netip.MustParseAddr("10.128.252.1")
		want.Routes = want.Routes[:1]
		if err := configureLink("kovn-host0", want); err != nil {
			return err
		}
		return checkLinkState(want)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkLinkState reads kovn-host0 back.
func checkLinkState(want linkConfig) error {
	l, err := netlink.LinkByName("kovn-host0")
	if err != nil {
		return err
	}
	if a := l.Attrs(); a.HardwareAddr.String() != want.MAC.String() || a.MTU != want.MTU || a.Flags&net.FlagUp == 0 {
		return fmt.Errorf("link %s mtu %d flags %v", a.HardwareAddr, a.MTU, a.Flags)
	}
	addrs, _ := netlink.AddrList(l, netlink.FAMILY_V4)
	if len(addrs) != 1 || addrs[0].IPNet.String() != want.Addr.String() {
		return fmt.Errorf("addresses %v, want only %s", addrs, want.Addr)
	}
	routes, _ := netlink.RouteList(l, netlink.FAMILY_V4)
	var got []string
	for _, r := range routes {
		if r.Gw != nil {
			got = append(got, r.Dst.String()+" via "+r.Gw.String())
		}
	}
	var exp []string
	for _, r := range want.Routes {
		exp = append(exp, r.String()+" via "+want.Gateway.String())
	}
	slices.Sort(got)
	slices.Sort(exp)
	if fmt.Sprint(got) != fmt.Sprint(exp) {
		return fmt.Errorf("routes %v, want %v", got, exp)
	}
	return nil
}

// eventsDuring counts the link, address and route events f causes.
func eventsDuring(t *testing.T, f func() error) int {
	done := make(chan struct{})
	defer close(done)
	links, addrs, routes := make(chan netlink.LinkUpdate, 64), make(chan netlink.AddrUpdate, 64), make(chan netlink.RouteUpdate, 64)
	if err := netlink.LinkSubscribe(links, done); err != nil {
		t.Fatal(err)
	}
	if err := netlink.AddrSubscribe(addrs, done); err != nil {
		t.Fatal(err)
	}
	if err := netlink.RouteSubscribe(routes, done); err != nil {
		t.Fatal(err)
	}
	// The kernel finishes bringing a link up on its own time (carrier
	// through linkwatch, up to a second late; IPv6 autoconfiguration):
	// those events belong to the first pass, so wait for a quiet spell
	// before the measured one.
	count := func(quietFor time.Duration, limit time.Duration) (int, bool) {
		n := 0
		deadline := time.After(limit)
		for {
			select {
			case <-links:
				n++
			case <-addrs:
				n++
			case <-routes:
				n++
			case <-time.After(quietFor):
				return n, true
			case <-deadline:
				return n, false
			}
		}
	}
	if _, quiet := count(300*time.Millisecond, 10*time.Second); !quiet {
		t.Fatal("the link never settled")
	}
	if err := f(); err != nil {
		t.Fatal(err)
	}
	n, _ := count(300*time.Millisecond, 2*time.Second)
	return n
}
