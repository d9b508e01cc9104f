package node

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/kovn-io/kovn/go-controller/pkg/config"
	"github.com/kovn-io/kovn/go-controller/pkg/controller/internal/ctltest"
	"github.com/kovn-io/kovn/go-controller/pkg/ipam"
	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// checkNode compares what NB holds for a node with what it should: its
// switch, ports and, with gw, gateway router, external switch, routes and
// SNAT; without gw, none of those.
func checkNode(t *testing.T, nb client.Client, cfg *config.Controller, node string, subnet netip.Prefix, gw *kube.NodeGateway) error {
	t.Helper()
	gwIP, mgmt := ipam.GatewayIP(subnet), ipam.ManagementIP(subnet)
	ls, err := one(t, nb, node, lsName)
	if err != nil {
		return err
	}
	if got := ls.OtherConfig["subnet"]; got != subnet.String() {
		return fmt.Errorf("switch %s subnet %q, want %s", node, got, subnet)
	}
	group, err := nbops.GetLoadBalancerGroup(nb, own.ClusterLBGroup)
	if err != nil {
		return err
	}
	if !slices.Equal(ls.LoadBalancerGroup, []string{group.UUID}) {
		return fmt.Errorf("switch %s load_balancer_group %v, want the cluster group %s", node, ls.LoadBalancerGroup, group.UUID)
	}
	// One ACL: allow-related for all IP, so conntrack is on before any
	// policy arrives (StatefulACL).
	if len(ls.ACLs) != 1 {
		return fmt.Errorf("switch %s has %d ACLs, want the stateful one", node, len(ls.ACLs))
	}
	acl := &nbdb.ACL{UUID: ls.ACLs[0]}
	if err := nb.Get(context.Background(), acl); err != nil {
		return err
	}
	if acl.Action != nbdb.ACLActionAllowRelated || acl.Match != "ip" || acl.Priority != 0 || acl.ExternalIDs[own.OwnerKey] != node {
		return fmt.Errorf("switch %s ACL %+v", node, acl)
	}
	if ports := switchPortNames(t, nb, ls); !ports["stos-"+node] || !ports["kovn-mp-"+node] {
		return fmt.Errorf("switch %s ports %v", node, slices.Sorted(maps.Keys(ports)))
	}
	mp, err := one(t, nb, "kovn-mp-"+node, lspName)
	if err != nil {
		return err
	}
	if want := ipam.MACFromIP(mgmt).String() + " " + mgmt.String(); !slices.Equal(mp.Addresses, []string{want}) {
		return fmt.Errorf("management port addresses %v, want %q", mp.Addresses, want)
	}
	cr, err := one(t, nb, own.ClusterRouter, lrName)
	if err != nil {
		return err
	}
	rtos, err := one(t, nb, "rtos-"+node, lrpName)
	if err != nil {
		return err
	}
	if want := netip.PrefixFrom(gwIP, subnet.Bits()).String(); !slices.Equal(rtos.Networks, []string{want}) || !routerPortNames(t, nb, cr)[rtos.Name] {
		return fmt.Errorf("rtos-%s networks %v (want %s) or not on the cluster router", node, rtos.Networks, want)
	}
	crRoutes := routes(t, nb, cr)
	tvs := list(t, nb, func(tv *nbdb.ChassisTemplateVar) bool { return tv.ExternalIDs[own.OwnerKey] == node })
	if gw == nil {
		if len(tvs) > 0 {
			return fmt.Errorf("template variables %+v for a node without gateway", tvs[0])
		}
		for r := range crRoutes {
			if strings.HasPrefix(r, subnet.String()) {
				return fmt.Errorf("cluster router route %q for a node without gateway", r)
			}
		}
		if _, err := one(t, nb, "GR_"+node, lrName); err == nil {
			return fmt.Errorf("GR_%s exists without a gateway", node)
		}
		if _, err := one(t, nb, "ext_"+node, lsName); err == nil {
			return fmt.Errorf("ext_%s exists without a gateway", node)
		}
		return nil
	}
	return checkGateway(t, nb, cfg, node, subnet, gw, group.UUID, tvs, crRoutes)
}

// checkGateway is checkNode's part for a node with a gateway.
func checkGateway(t *testing.T, nb client.Client, cfg *config.Controller, node string, subnet netip.Prefix,
	gw *kube.NodeGateway, group string, tvs []*nbdb.ChassisTemplateVar, crRoutes map[string]bool) error {
	t.Helper()
	gr, err := one(t, nb, "GR_"+node, lrName)
	if err != nil {
		return err
	}
	if gr.Options["chassis"] != gw.ChassisID || gr.Options["lb_force_snat_ip"] != "router_ip" {
		return fmt.Errorf("GR_%s options %v", node, gr.Options)
	}
	if !slices.Equal(gr.LoadBalancerGroup, []string{group}) {
		return fmt.Errorf("GR_%s load_balancer_group %v, want the cluster group %s", node, gr.LoadBalancerGroup, group)
	}
	nodeIP := netip.MustParsePrefix(gw.IP).Addr()
	if len(tvs) != 1 || tvs[0].Chassis != gw.ChassisID || !maps.Equal(tvs[0].Variables, map[string]string{own.NodeIPTemplateVar: nodeIP.String()}) ||
		tvs[0].ExternalIDs[own.KindKey] != own.KindNode {
		return fmt.Errorf("template variables of %s: %+v, want %s=%s on %s", node, tvs, own.NodeIPTemplateVar, nodeIP, gw.ChassisID)
	}
	if got := routerPortNames(t, nb, gr); !maps.Equal(got, map[string]bool{"rtoj-GR_" + node: true, "rtoe-GR_" + node: true}) {
		return fmt.Errorf("GR_%s ports %v", node, got)
	}
	join, err := joinIP(t, nb, node)
	if err != nil {
		return err
	}
	if join.Bits() != 16 || !netip.MustParsePrefix("100.64.0.0/16").Contains(join.Addr()) || join.Addr() == netip.MustParseAddr("100.64.0.1") {
		return fmt.Errorf("join address %s", join)
	}
	rtoj, _ := one(t, nb, "rtoj-GR_"+node, lrpName)
	if rtoj.MAC != ipam.MACFromIP(join.Addr()).String() {
		return fmt.Errorf("rtoj-GR_%s mac %s for %s", node, rtoj.MAC, join)
	}
	rtoe, err := one(t, nb, "rtoe-GR_"+node, lrpName)
	if err != nil {
		return err
	}
	if rtoe.MAC != gw.MAC || !slices.Equal(rtoe.Networks, []string{gw.IP}) {
		return fmt.Errorf("rtoe-GR_%s mac %s networks %v", node, rtoe.MAC, rtoe.Networks)
	}
	wantRoutes := map[string]bool{"0.0.0.0/0 via " + gw.NextHop + " port rtoe-GR_" + node: true}
	for _, cidr := range cfg.ClusterCIDRs {
		wantRoutes[cidr.String()+" via 100.64.0.1"] = true
	}
	if got := routes(t, nb, gr); !maps.Equal(got, wantRoutes) {
		return fmt.Errorf("GR_%s routes %v, want %v", node, got, wantRoutes)
	}
	if got := nats(t, nb, gr); !maps.Equal(got, map[string]bool{"snat " + nodeIP.String() + "<-" + subnet.String(): true}) {
		return fmt.Errorf("GR_%s NATs %v", node, got)
	}
	if want := subnet.String() + " via " + join.Addr().String() + " src-ip"; !crRoutes[want] {
		return fmt.Errorf("cluster router routes %v lack %q", crRoutes, want)
	}
	ext, err := one(t, nb, "ext_"+node, lsName)
	if err != nil {
		return err
	}
	if got := switchPortNames(t, nb, ext); !maps.Equal(got, map[string]bool{"etor-GR_" + node: true, "lnet-" + node: true}) {
		return fmt.Errorf("ext_%s ports %v", node, got)
	}
	js, err := one(t, nb, own.JoinSwitch, lsName)
	if err != nil {
		return err
	}
	if !switchPortNames(t, nb, js)["jtor-GR_"+node] {
		return fmt.Errorf("join switch lacks jtor-GR_%s", node)
	}
	return nil
}

func (h *harness) waitNode(node string, subnet netip.Prefix, gw *kube.NodeGateway) {
	h.t.Helper()
	ctltest.WaitFor(h.t, func() error { return checkNode(h.t, h.NB, h.cfg, node, subnet, gw) })
}

func TestStartCreatesClusterTopology(t *testing.T) {
	h := newHarness(t, testConfig())
	h.start()
	ctltest.WaitFor(t, func() error {
		cr, err := one(t, h.NB, own.ClusterRouter, lrName)
		if err != nil {
			return err
		}
		rtoj, err := one(t, h.NB, "rtoj-"+own.ClusterRouter, lrpName)
		if err != nil || !routerPortNames(t, h.NB, cr)[rtoj.Name] || !slices.Equal(rtoj.Networks, []string{"100.64.0.1/16"}) {
			return fmt.Errorf("cluster router join port: %v %+v", err, rtoj)
		}
		js, err := one(t, h.NB, own.JoinSwitch, lsName)
		if err != nil || !switchPortNames(t, h.NB, js)["jtor-"+own.ClusterRouter] {
			return fmt.Errorf("join switch: %v", err)
		}
		if _, err := nbops.GetLoadBalancerGroup(h.NB, own.ClusterLBGroup); err != nil {
			return err
		}
		return nil
	})
}

func TestNodeSubnetsAndRows(t *testing.T) {
	h := newHarness(t, testConfig())
	h.start()
	h.createNode("n1", nil)
	s1 := h.waitSubnet("n1")
	h.createNode("n2", nil)
	s2 := h.waitSubnet("n2")
	for _, s := range []netip.Prefix{s1, s2} {
		if s.Bits() != 24 || !h.cfg.ClusterCIDRs[0].Contains(s.Addr()) {
			t.Errorf("subnet %s is not a /24 of %s", s, h.cfg.ClusterCIDRs[0])
		}
	}
	if s1.Overlaps(s2) {
		t.Fatalf("n1 and n2 share %s / %s", s1, s2)
	}
	h.waitNode("n1", s1, nil)
	h.waitNode("n2", s2, nil)
}

func TestNodeGatewayPublishedLater(t *testing.T) {
	h := newHarness(t, testConfig())
	h.start()
	h.createNode("n1", nil)
	s1 := h.waitSubnet("n1")
	h.waitNode("n1", s1, nil)

	gw := testGateway()
	h.patchNode("n1", gatewayAnnotation(gw), nil)
	h.waitNode("n1", s1, gw)

	gw2 := &kube.NodeGateway{ChassisID: "chassis-2", IP: "172.18.0.3/16", NextHop: "172.18.0.1", MAC: "02:42:ac:12:00:03"}
	h.createNode("n2", gatewayAnnotation(gw2))
	s2 := h.waitSubnet("n2")
	h.waitNode("n2", s2, gw2)
	j1, _ := joinIP(t, h.NB, "n1")
	j2, _ := joinIP(t, h.NB, "n2")
	if j1 == j2 {
		t.Errorf("n1 and n2 share join address %s", j1)
	}
	h.waitNode("n1", s1, gw) // n2's routes did not disturb n1's
}

func TestNodeDeletedAndSubnetReused(t *testing.T) {
	cfg := testConfig()
	// Three /24s: the external port switch takes one, the nodes two.
	cfg.ClusterCIDRs = []netip.Prefix{netip.MustParsePrefix("10.128.0.0/23"), netip.MustParsePrefix("10.128.2.0/24")}
	h := newHarness(t, cfg)
	inst := h.start()
	gw := testGateway()
	h.createNode("a", gatewayAnnotation(gw))
	sa := h.waitSubnet("a")
	h.createNode("b", nil)
	sb := h.waitSubnet("b")
	h.waitNode("a", sa, gw)
	h.waitNode("b", sb, nil)

	h.createNode("c", nil)
	inst.waitProblem(t, "ClusterCIDRExhausted")
	if _, err := one(t, h.NB, "c", lsName); err == nil {
		t.Error("switch for a node without subnet")
	}

	h.deleteNode("a")
	ctltest.WaitFor(t, func() error {
		if n := ownedBy(t, h.NB, "a"); n > 0 {
			return fmt.Errorf("%d rows of a left", n)
		}
		for _, name := range []string{"a", "ext_a"} {
			if _, err := one(t, h.NB, name, lsName); err == nil {
				return fmt.Errorf("switch %s left", name)
			}
		}
		if _, err := one(t, h.NB, "GR_a", lrName); err == nil {
			return fmt.Errorf("GR_a left")
		}
		for _, p := range []string{"rtos-a", "rtoj-GR_a", "rtoe-GR_a"} {
			if _, err := one(t, h.NB, p, lrpName); err == nil {
				return fmt.Errorf("router port %s left", p)
			}
		}
		for _, p := range []string{"stos-a", "kovn-mp-a", "jtor-GR_a", "etor-GR_a", "lnet-a"} {
			if _, err := one(t, h.NB, p, lspName); err == nil {
				return fmt.Errorf("switch port %s left", p)
			}
		}
		if _, held := inst.c.subnets.Get("a"); held {
			return fmt.Errorf("subnet of a still held")
		}
		return nil
	})
	h.waitNode("b", sb, nil)

	// The freed subnet goes to the node that was waiting, once it changes.
	h.patchNode("c", nil, map[string]string{"touched": "yes"})
	if sc := h.waitSubnet("c"); sc != sa {
		t.Fatalf("c got %s, want a's freed %s", sc, sa)
	}
	h.waitNode("c", sa, nil)
}

func TestNodeInvalidSubnetAnnotation(t *testing.T) {
	for _, tc := range []struct {
		name, value, reason string
	}{
		{"not JSON", "10.128.5.0/24", "InvalidSubnetAnnotation"},
		{"not a CIDR", `["10.128.5.0"]`, "InvalidSubnetAnnotation"},
		{"host bits set", `["10.128.5.1/24"]`, "InvalidSubnetAnnotation"},
		{"empty list", `[]`, "InvalidSubnetAnnotation"},
		{"outside the cluster CIDR", `["192.168.0.0/24"]`, "SubnetConflict"},
		{"wrong length", `["10.128.8.0/23"]`, "SubnetConflict"},
		{"another node's subnet", "", "SubnetConflict"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, testConfig())
			inst := h.start()
			h.createNode("good", nil)
			sGood := h.waitSubnet("good")
			h.waitNode("good", sGood, nil)
			value := tc.value
			if value == "" {
				value = kube.MarshalNodeSubnets([]netip.Prefix{sGood})
			}
			patchesBefore := h.Patches("nodes")
			h.createNode("bad", map[string]string{kube.NodeSubnetsAnnotation: value})
			inst.waitProblem(t, tc.reason)
			if ev := <-inst.events.Events; !strings.Contains(ev, "Warning "+tc.reason) {
				t.Errorf("event %q, want a %s warning", ev, tc.reason)
			}

			// Nothing else breaks: a new node is served, the good one is intact,
			// the bad one gets no rows and its annotation is left to the user.
			h.createNode("next", nil)
			sNext := h.waitSubnet("next")
			h.waitNode("next", sNext, nil)
			h.waitNode("good", sGood, nil)
			if _, err := one(t, h.NB, "bad", lsName); err == nil {
				t.Error("switch for the node with the bad annotation")
			}
			if got := h.Patches("nodes") - patchesBefore; got != 1 {
				t.Errorf("%d node patches, want 1 (next's subnet)", got)
			}
			if inst.Syncs("error") > 0 {
				t.Errorf("%v failed syncs", inst.Syncs("error"))
			}

			// A restart with the bad node present changes nothing, in
			// whatever order the nodes are listed: the subnet NB serves
			// stays with the node it serves.
			inst.Stop()
			again := h.start()
			again.WaitSynced(t, 3)
			if txns, _ := again.Tx.Stats(); txns != 0 {
				t.Errorf("%d transactions after restart", txns)
			}
			if _, err := one(t, h.NB, "bad", lsName); err == nil {
				t.Error("switch for the node with the bad annotation after restart")
			}
			if owner, _ := again.c.subnets.Owner(sGood); owner != "good" {
				t.Errorf("after restart %s is held by %q, want good", sGood, owner)
			}
			h.waitNode("good", sGood, nil)
		})
	}
}

func TestNodeRestartIsQuietAndRebuildsAllocators(t *testing.T) {
	h := newHarness(t, testConfig())
	first := h.start()
	gw1 := testGateway()
	gw2 := &kube.NodeGateway{ChassisID: "chassis-2", IP: "172.18.0.3/16", NextHop: "172.18.0.1", MAC: "02:42:ac:12:00:03"}
	h.createNode("g1", gatewayAnnotation(gw1))
	h.waitNode("g1", h.waitSubnet("g1"), gw1)
	h.createNode("g2", gatewayAnnotation(gw2))
	s2 := h.waitSubnet("g2")
	h.waitNode("g2", s2, gw2)
	h.createNode("plain", nil)
	sPlain := h.waitSubnet("plain")
	h.waitNode("plain", sPlain, nil)
	// g1 leaves, so a restarted join allocator that did not read g2's
	// address back from NB would hand g2 a lower one.
	h.deleteNode("g1")
	ctltest.WaitFor(t, func() error {
		if n := ownedBy(t, h.NB, "g1"); n > 0 {
			return fmt.Errorf("%d rows of g1 left", n)
		}
		return nil
	})
	j2, err := joinIP(t, h.NB, "g2")
	if err != nil {
		t.Fatal(err)
	}
	first.WaitSynced(t, 4)
	first.Stop()

	h.KC.ClearActions()
	second := h.startNoRun()
	if got, _ := second.c.subnets.Get("g2"); got != s2 {
		t.Errorf("after Start g2 holds subnet %v, want %s", got, s2)
	}
	if got, _ := second.c.subnets.Get("plain"); got != sPlain {
		t.Errorf("after Start plain holds subnet %v, want %s", got, sPlain)
	}
	if got, _ := second.c.join.Get("g2"); got != j2.Addr() {
		t.Errorf("after Start g2 holds join address %v, want %s", got, j2.Addr())
	}
	second.Run()
	second.WaitSynced(t, 2)
	if txns, ops := second.Tx.Stats(); txns != 0 {
		t.Errorf("restart on a converged NB sent %d transactions (%d ops)", txns, ops)
	}
	if n := h.Patches("nodes"); n != 0 {
		t.Errorf("restart patched nodes %d times", n)
	}

	gw3 := &kube.NodeGateway{ChassisID: "chassis-3", IP: "172.18.0.4/16", NextHop: "172.18.0.1", MAC: "02:42:ac:12:00:04"}
	h.createNode("g3", gatewayAnnotation(gw3))
	s3 := h.waitSubnet("g3")
	if s3 == s2 || s3 == sPlain {
		t.Fatalf("g3 got subnet %s that is in use", s3)
	}
	h.waitNode("g3", s3, gw3)
	if j3, _ := joinIP(t, h.NB, "g3"); j3 == j2 {
		t.Fatalf("g3 got g2's join address %s", j3)
	}
	h.waitNode("g2", s2, gw2)
}

func TestStartDeletesRowsOfNodesGoneWhileDown(t *testing.T) {
	h := newHarness(t, testConfig())
	first := h.start()
	gw := testGateway()
	h.createNode("gone", gatewayAnnotation(gw))
	h.waitNode("gone", h.waitSubnet("gone"), gw)
	h.createNode("kept", nil)
	sKept := h.waitSubnet("kept")
	h.waitNode("kept", sKept, nil)
	first.Stop()

	h.deleteNode("gone")
	second := h.startNoRun()
	if txns, _ := second.Tx.Stats(); txns != 1 {
		t.Errorf("Start sent %d transactions, want 1", txns)
	}
	ctltest.WaitFor(t, func() error {
		if n := ownedBy(t, h.NB, "gone"); n > 0 {
			return fmt.Errorf("%d rows of the deleted node left", n)
		}
		return nil
	})
	h.waitNode("kept", sKept, nil)
	if lr, err := one(t, h.NB, own.ClusterRouter, lrName); err != nil || len(lr.StaticRoutes) != 0 {
		t.Errorf("cluster router: %v, routes %v", err, lr)
	}
}

// A host reinstalled under a new chassis name moves its node IP variable:
// the new chassis gets it, the old row goes.
func TestNodeChassisChangeMovesTemplateVar(t *testing.T) {
	h := newHarness(t, testConfig())
	h.start()
	gw := testGateway()
	h.createNode("n1", gatewayAnnotation(gw))
	s1 := h.waitSubnet("n1")
	h.waitNode("n1", s1, gw)
	moved := *gw
	moved.ChassisID = "chassis-new"
	h.patchNode("n1", gatewayAnnotation(&moved), nil)
	h.waitNode("n1", s1, &moved) // checks n1 owns exactly one row, on the new chassis
	if _, err := nbops.GetChassisTemplateVar(h.NB, gw.ChassisID); err == nil {
		t.Error("old chassis still has a template variable row")
	}
}
