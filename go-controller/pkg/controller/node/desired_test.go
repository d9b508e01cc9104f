package node

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/kovn-io/kovn/go-controller/pkg/config"
	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

func testGateway() *kube.NodeGateway {
	return &kube.NodeGateway{ChassisID: "chassis-1", IP: "172.18.0.2/16", NextHop: "172.18.0.1", MAC: "02:42:ac:12:00:02"}
}

func testInputs(gw *kube.NodeGateway) Inputs {
	in := Inputs{
		Node:              "n1",
		Subnet:            netip.MustParsePrefix("10.128.1.0/24"),
		JoinSubnet:        netip.MustParsePrefix("100.64.0.0/16"),
		ClusterJoin:       netip.MustParseAddr("100.64.0.1"),
		ClusterCIDRs:      []netip.Prefix{netip.MustParsePrefix("10.128.0.0/14")},
		LoadBalancerGroup: "lbg-uuid",
	}
	if gw != nil {
		in.Gateway, in.GatewayIP, in.JoinIP = gw, netip.MustParsePrefix(gw.IP), netip.MustParseAddr("100.64.0.2")
	}
	return in
}

func eq[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestDesiredWithoutGateway(t *testing.T) {
	r := Desired(testInputs(nil))
	owner := map[string]string{own.KindKey: own.KindNode, own.OwnerKey: "n1"}

	eq(t, "switch name", r.Switch.Name, "n1")
	eq(t, "switch other_config", r.Switch.OtherConfig, map[string]string{"subnet": "10.128.1.0/24", "exclude_ips": "10.128.1.2"})
	eq(t, "switch external_ids", r.Switch.ExternalIDs, owner)
	eq(t, "switch load_balancer_group", r.Switch.LoadBalancerGroup, []string{"lbg-uuid"})

	eq(t, "rtos name", r.RouterPort.Name, "rtos-n1")
	eq(t, "rtos mac", r.RouterPort.MAC, "0a:58:0a:80:01:01")
	eq(t, "rtos networks", r.RouterPort.Networks, []string{"10.128.1.1/24"})

	eq(t, "stos name", r.SwitchToRtr.Name, "stos-n1")
	eq(t, "stos type", r.SwitchToRtr.Type, "router")
	eq(t, "stos addresses", r.SwitchToRtr.Addresses, []string{"router"})
	eq(t, "stos options", r.SwitchToRtr.Options, map[string]string{"router-port": "rtos-n1"})

	eq(t, "mgmt name", r.Management.Name, "kovn-mp-n1")
	eq(t, "mgmt addresses", r.Management.Addresses, []string{"0a:58:0a:80:01:02 10.128.1.2"})
	eq(t, "mgmt port_security", r.Management.PortSecurity, []string{"0a:58:0a:80:01:02 10.128.1.2"})

	if r.Gateway != nil {
		t.Errorf("gateway rows without a gateway: %+v", r.Gateway)
	}
	if len(r.ClusterRoutes) != 0 {
		t.Errorf("cluster routes without a gateway: %d", len(r.ClusterRoutes))
	}
	for name, ids := range map[string]map[string]string{"rtos": r.RouterPort.ExternalIDs, "stos": r.SwitchToRtr.ExternalIDs, "mgmt": r.Management.ExternalIDs} {
		eq(t, name+" external_ids", ids, owner)
	}
}

func TestDesiredWithGateway(t *testing.T) {
	r := Desired(testInputs(testGateway()))
	g := r.Gateway
	if g == nil {
		t.Fatal("no gateway rows")
	}

	eq(t, "GR name", g.Router.Name, "GR_n1")
	eq(t, "GR chassis", g.Router.Options["chassis"], "chassis-1")
	eq(t, "GR lb_force_snat_ip", g.Router.Options["lb_force_snat_ip"], "router_ip")
	eq(t, "GR load_balancer_group", g.Router.LoadBalancerGroup, []string{"lbg-uuid"})
	eq(t, "switch load_balancer_group", r.Switch.LoadBalancerGroup, []string{"lbg-uuid"})
	eq(t, "template var chassis", g.TemplateVar.Chassis, "chassis-1")
	eq(t, "template var variables", g.TemplateVar.Variables, map[string]string{own.NodeIPTemplateVar: "172.18.0.2"})

	eq(t, "join port name", g.JoinPort.Name, "rtoj-GR_n1")
	eq(t, "join port mac", g.JoinPort.MAC, "0a:58:64:40:00:02")
	eq(t, "join port networks", g.JoinPort.Networks, []string{"100.64.0.2/16"})
	eq(t, "jtor name", g.JoinSwitchP.Name, "jtor-GR_n1")
	eq(t, "jtor type", g.JoinSwitchP.Type, "router")
	eq(t, "jtor options", g.JoinSwitchP.Options, map[string]string{"router-port": "rtoj-GR_n1"})

	eq(t, "ext port name", g.ExtPort.Name, "rtoe-GR_n1")
	eq(t, "ext port mac", g.ExtPort.MAC, "02:42:ac:12:00:02")
	eq(t, "ext port networks", g.ExtPort.Networks, []string{"172.18.0.2/16"})
	eq(t, "ext switch", g.ExtSwitch.Name, "ext_n1")
	eq(t, "etor options", g.ExtSwitchP.Options, map[string]string{"router-port": "rtoe-GR_n1"})
	eq(t, "localnet type", g.Localnet.Type, "localnet")
	eq(t, "localnet addresses", g.Localnet.Addresses, []string{"unknown"})
	eq(t, "localnet network", g.Localnet.Options["network_name"], own.PhysicalNetwork)

	type route struct {
		prefix, nexthop string
		output, policy  any
	}
	var routes []route
	for _, rt := range g.Routes {
		routes = append(routes, route{rt.IPPrefix, rt.Nexthop, deref(rt.OutputPort), deref(rt.Policy)})
	}
	eq(t, "GR routes", routes, []route{
		{"0.0.0.0/0", "172.18.0.1", "rtoe-GR_n1", nil},
		{"10.128.0.0/14", "100.64.0.1", nil, nil},
	})

	if len(g.NATs) != 1 {
		t.Fatalf("%d NATs, want 1", len(g.NATs))
	}
	nat := g.NATs[0]
	eq(t, "NAT", [3]string{string(nat.Type), nat.ExternalIP, nat.LogicalIP}, [3]string{"snat", "172.18.0.2", "10.128.1.0/24"})

	if len(r.ClusterRoutes) != 2 {
		t.Fatalf("%d cluster routes, want 2", len(r.ClusterRoutes))
	}
	cr := r.ClusterRoutes[0]
	eq(t, "cluster route", route{cr.IPPrefix, cr.Nexthop, deref(cr.OutputPort), deref(cr.Policy)},
		route{"10.128.1.0/24", "100.64.0.2", nil, nbdb.LogicalRouterStaticRoutePolicySrcIP})
	jr := r.ClusterRoutes[1]
	eq(t, "join route", route{jr.IPPrefix, jr.Nexthop, deref(jr.OutputPort), deref(jr.Policy)},
		route{"100.64.0.2/32", "100.64.0.2", nil, nil})
	if cr.Policy == &nbdb.LogicalRouterStaticRoutePolicySrcIP {
		t.Error("the route's policy points at the generated package variable")
	}

	// Every row must say it is the node's: Start's garbage collection and
	// the route/NAT builders find them by these ids.
	ids := []map[string]string{g.Router.ExternalIDs, g.TemplateVar.ExternalIDs, g.JoinPort.ExternalIDs, g.JoinSwitchP.ExternalIDs,
		g.ExtPort.ExternalIDs, g.ExtSwitch.ExternalIDs, g.ExtSwitchP.ExternalIDs, g.Localnet.ExternalIDs,
		nat.ExternalIDs, cr.ExternalIDs, jr.ExternalIDs}
	for _, rt := range g.Routes {
		ids = append(ids, rt.ExternalIDs)
	}
	for i, m := range ids {
		if m[own.KindKey] != own.KindNode || m[own.OwnerKey] != "n1" {
			t.Errorf("row %d external_ids %v do not name node n1", i, m)
		}
	}
}

func TestDesiredClusterRoutePerCIDRAndPure(t *testing.T) {
	in := testInputs(testGateway())
	in.ClusterCIDRs = append(in.ClusterCIDRs, netip.MustParsePrefix("10.200.0.0/16"))
	r := Desired(in)
	var got []string
	for _, rt := range r.Gateway.Routes[1:] {
		got = append(got, rt.IPPrefix+" via "+rt.Nexthop)
	}
	eq(t, "cluster CIDR routes", got, []string{"10.128.0.0/14 via 100.64.0.1", "10.200.0.0/16 via 100.64.0.1"})
	if !reflect.DeepEqual(r, Desired(in)) {
		t.Error("Desired is not a pure function of its inputs")
	}
}

func TestUnderlayRows(t *testing.T) {
	u := config.Underlay{Subnet: netip.MustParsePrefix("172.20.0.0/24"), Gateway: netip.MustParseAddr("172.20.0.1"), VLAN: 100}
	ls, ln := UnderlayRows(u, "lbg-uuid")
	if ls.Name != own.UnderlaySwitch || ls.OtherConfig["subnet"] != "172.20.0.0/24" || len(ls.LoadBalancerGroup) != 1 {
		t.Errorf("switch = %+v", ls)
	}
	if ln.Type != "localnet" || ln.Options["network_name"] != own.PhysicalNetwork || ln.TagRequest == nil || *ln.TagRequest != 100 {
		t.Errorf("localnet port = %+v", ln)
	}
	u.VLAN = 0
	if _, ln := UnderlayRows(u, ""); ln.TagRequest != nil {
		t.Errorf("untagged underlay has tag %d", *ln.TagRequest)
	}
}

func TestExternalSwitchRows(t *testing.T) {
	r := ExternalSwitchRows(netip.MustParsePrefix("10.131.255.0/24"), "g")
	if r.Switch.Name != own.ExternalPortSwitch || r.RouterPort.Networks[0] != "10.131.255.1/24" ||
		r.SwitchToRtr.Options["router-port"] != r.RouterPort.Name {
		t.Errorf("rows = %+v %+v %+v", r.Switch, r.RouterPort, r.SwitchToRtr)
	}
}
