package nbview

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
)

func TestParseAddresses(t *testing.T) {
	got := ParseAddresses([]string{"router", "unknown", "0a:58:0a:80:01:05 10.128.1.5 fd00::5", "dynamic", "", "0a:00:00:00:00:01 10.0.0.0/8"})
	if len(got) != 2 || got[0].MAC != "0a:58:0a:80:01:05" ||
		!slices.Equal(got[0].IPs, []netip.Addr{netip.MustParseAddr("10.128.1.5"), netip.MustParseAddr("fd00::5")}) ||
		got[1].IPs[0] != netip.MustParseAddr("10.0.0.0") {
		t.Errorf("%+v", got)
	}
	mac, ip, ok := PortIPv4(&nbdb.LogicalSwitchPort{Addresses: []string{"0a:58:0a:80:01:05 fd00::5 10.128.1.5"}})
	if !ok || mac != "0a:58:0a:80:01:05" || ip.String() != "10.128.1.5" {
		t.Errorf("PortIPv4 %s %s %v", mac, ip, ok)
	}
	if _, _, ok := PortIPv4(&nbdb.LogicalSwitchPort{Addresses: []string{"router"}}); ok {
		t.Error("router port has an IPv4 address")
	}
}

func TestReverseIndexes(t *testing.T) {
	v := Build(Rows{
		Switches: []*nbdb.LogicalSwitch{{UUID: "ls", Name: "n1", Ports: []string{"p1", "stos"}, LoadBalancerGroup: []string{"g"}}},
		SwitchPorts: []*nbdb.LogicalSwitchPort{
			{UUID: "p1", Name: "a_p1", Addresses: []string{"0a:58:0a:80:01:05 10.128.1.5"}},
			{UUID: "stos", Name: "stos-n1", Type: "router", Options: map[string]string{"router-port": "rtos-n1"}},
		},
		Routers:     []*nbdb.LogicalRouter{{UUID: "lr", Name: "r", Ports: []string{"rtos"}, LoadBalancer: []string{"lb"}}},
		RouterPorts: []*nbdb.LogicalRouterPort{{UUID: "rtos", Name: "rtos-n1", MAC: "0a:58:0a:80:01:01", Networks: []string{"10.128.1.1/24"}}},
		PortGroups:  []*nbdb.PortGroup{{UUID: "pg", Name: "g1", Ports: []string{"p1"}, ACLs: []string{"acl-1234"}}, {UUID: "pg2", Name: "g2"}},
		AddressSets: []*nbdb.AddressSet{{UUID: "as", Name: "s1", Addresses: []string{"10.128.0.0/16"}}, {UUID: "as2", Name: "s2", Addresses: []string{"10.128.1.6"}}},
		ACLs:        []*nbdb.ACL{{UUID: "acl-1234", Priority: 1000}},
		LBs:         []*nbdb.LoadBalancer{{UUID: "lb", Name: "l"}},
		LBGroups:    []*nbdb.LoadBalancerGroup{{UUID: "g", Name: "grp", LoadBalancer: []string{"lb"}}},
	})
	ip := netip.MustParseAddr("10.128.1.5")
	if ls := v.SwitchOf("p1"); ls == nil || ls.Name != "n1" {
		t.Errorf("SwitchOf %v", ls)
	}
	if lr := v.RouterOf("rtos"); lr == nil || lr.Name != "r" {
		t.Errorf("RouterOf %v", lr)
	}
	if lrp, p, ok := v.GatewayFor(v.Switch("n1"), ip); !ok || lrp.Name != "rtos-n1" || p.String() != "10.128.1.1/24" {
		t.Errorf("GatewayFor %v %v %v", lrp, p, ok)
	}
	if _, _, ok := v.GatewayFor(v.Switch("n1"), netip.MustParseAddr("10.1.0.1")); ok {
		t.Error("gateway for an address off the subnet")
	}
	if p := v.PortWithAddress(v.Switch("n1"), ip); p == nil || p.Name != "a_p1" {
		t.Errorf("PortWithAddress %v", p)
	}
	if g := v.GroupsWithPort("p1"); len(g) != 1 || g[0].Name != "g1" {
		t.Errorf("GroupsWithPort %v", g)
	}
	if s := v.SetsWithAddress(ip); len(s) != 1 || s[0].Name != "s1" {
		t.Errorf("SetsWithAddress %v", s)
	}
	if a := v.ACLsByUUIDPrefix("acl-12"); len(a) != 1 || v.GroupOf(a[0].UUID).Name != "g1" {
		t.Errorf("ACLsByUUIDPrefix %v", a)
	}
	if len(v.ACLsByUUIDPrefix("")) != 0 {
		t.Error("an empty prefix matches")
	}
	if !slices.Equal(v.SwitchesWithGroup("g"), []string{"n1"}) || !slices.Equal(v.RoutersWithLB("lb"), []string{"r"}) ||
		len(v.GroupsWithLB("lb")) != 1 {
		t.Error("load balancer references")
	}
	if got := v.PortNames([]string{"stos", "p1", "gone"}); !slices.Equal(got, []string{"a_p1", "gone", "stos-n1"}) {
		t.Errorf("PortNames %q", got)
	}
}
