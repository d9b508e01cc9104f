package podif

import (
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	"github.com/vishvananda/netlink"
)

// newNamespaces gives the test a "host" and a "pod" network namespace, so
// nothing is created in the namespace the tests run in.
func newNamespaces(t *testing.T) (host, pod ns.NetNS) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	var err error
	if host, err = testutils.NewNS(); err != nil {
		t.Fatal(err)
	}
	if pod, err = testutils.NewNS(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, n := range []ns.NetNS{pod, host} {
			_ = n.Close()
			if err := testutils.UnmountNS(n); err != nil {
				t.Errorf("remove test namespace: %v", err)
			}
		}
	})
	return host, pod
}

func TestSetupCheckTeardown(t *testing.T) {
	host, pod := newNamespaces(t)
	mac, _ := net.ParseMAC("0a:58:0a:80:01:05")
	cfg := Config{
		NetNS: pod.Path(), IfName: "eth0", HostIfName: HostIfName("0123456789abcdef0123"),
		MAC: mac, Addrs: []netip.Prefix{netip.MustParsePrefix("10.128.1.5/24")},
		Gateways: []netip.Addr{netip.MustParseAddr("10.128.1.1")},
		Routes:   []Route{{Dst: netip.MustParsePrefix("10.96.0.0/16"), NextHop: netip.MustParseAddr("10.128.1.1")}},
		MTU:      1400, TxChecksumOff: true, HostStackOff: true,
	}
	if cfg.HostIfName != "kv0123456789abc" || len(cfg.HostIfName) > 15 {
		t.Fatalf("host name %q", cfg.HostIfName)
	}
	err := host.Do(func(ns.NetNS) error {
		res, err := Setup(cfg)
		if err != nil {
			return err
		}
		if res.ContainerMAC.String() != mac.String() {
			t.Errorf("container MAC %s", res.ContainerMAC)
		}
		l, err := netlink.LinkByName(cfg.HostIfName)
		if err != nil {
			return err
		}
		if l.Attrs().OperState != netlink.OperUp && l.Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("host end not up")
		}
		if on, err := TxChecksumEnabled(cfg.HostIfName); err != nil || on {
			t.Errorf("host end tx checksum on=%v err=%v", on, err)
		}
		// The host must not answer the pod's ARP for its own addresses.
		if b, err := os.ReadFile("/proc/sys/net/ipv4/conf/" + cfg.HostIfName + "/arp_ignore"); err != nil || strings.TrimSpace(string(b)) != "8" {
			t.Errorf("host end arp_ignore %q, %v; want 8", b, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(pod.Path(), "eth0", cfg.Addrs); err != nil {
		t.Fatal(err)
	}
	err = pod.Do(func(ns.NetNS) error {
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		if l.Attrs().MTU != 1400 || l.Attrs().HardwareAddr.String() != mac.String() {
			t.Errorf("eth0 mtu %d mac %s", l.Attrs().MTU, l.Attrs().HardwareAddr)
		}
		if on, err := TxChecksumEnabled("eth0"); err != nil || on {
			t.Errorf("eth0 tx checksum on=%v err=%v", on, err)
		}
		routes, err := netlink.RouteList(l, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		var def, svc bool
		for _, r := range routes {
			if r.Dst == nil || r.Dst.String() == "0.0.0.0/0" {
				def = r.Gw.String() == "10.128.1.1"
			}
			if r.Dst != nil && r.Dst.String() == "10.96.0.0/16" {
				svc = true
			}
		}
		if !def || !svc {
			t.Errorf("routes %v: default=%v service=%v", routes, def, svc)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = host.Do(func(ns.NetNS) error {
		if err := Teardown(cfg.HostIfName); err != nil {
			return err
		}
		if _, err := netlink.LinkByName(cfg.HostIfName); err == nil {
			t.Errorf("host end survived teardown")
		}
		return Teardown(cfg.HostIfName) // idempotent
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(pod.Path(), "eth0", cfg.Addrs); err == nil {
		t.Fatal("Check passed after teardown")
	}
}

func TestSetupFailureLeavesNothing(t *testing.T) {
	host, pod := newNamespaces(t)
	mac, _ := net.ParseMAC("0a:58:0a:80:01:06")
	cfg := Config{
		NetNS: pod.Path(), IfName: "eth0", HostIfName: "kvfailcase", MAC: mac,
		// A gateway outside every address of the interface cannot be routed:
		// Setup fails after the veth exists and must remove it.
		Addrs:    []netip.Prefix{netip.MustParsePrefix("10.128.1.6/24")},
		Gateways: []netip.Addr{netip.MustParseAddr("192.0.2.1")},
		MTU:      1400,
	}
	err := host.Do(func(ns.NetNS) error {
		if _, err := Setup(cfg); err == nil {
			t.Fatal("Setup with an unreachable gateway succeeded")
		}
		if _, err := netlink.LinkByName(cfg.HostIfName); err == nil {
			t.Error("host end left behind after a failed Setup")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = pod.Do(func(ns.NetNS) error {
		if _, err := netlink.LinkByName("eth0"); err == nil {
			t.Error("eth0 left behind after a failed Setup")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Setup(Config{NetNS: "/proc/self/ns/nope", IfName: "eth0", HostIfName: "kvnons"}); err == nil {
		t.Fatal("Setup with a missing netns succeeded")
	}
}
