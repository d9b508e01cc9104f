package nbops_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
	"github.com/kovn-io/kovn/go-controller/pkg/testenv"
)

func desiredLB() *nbdb.LoadBalancer {
	return &nbdb.LoadBalancer{
		Name:     "Service_default/web_TCP",
		Protocol: ptr(nbdb.LoadBalancerProtocolTCP),
		Vips: map[string]string{
			"10.96.0.10:80":  "10.128.1.5:8080,10.128.2.7:8080",
			"10.96.0.10:443": "10.128.1.5:8443",
		},
		Options:     map[string]string{"reject": "true", "event": "false"},
		ExternalIDs: own.IDs(own.KindService, "default/web", "tcp"),
	}
}

func (e *env) lb(name string) *nbdb.LoadBalancer {
	e.t.Helper()
	lb, err := nbops.GetLoadBalancer(e.c, name)
	if err != nil {
		e.t.Fatal(err)
	}
	return lb
}

func TestEnsureLoadBalancer(t *testing.T) {
	bothDBs(t, func(t *testing.T, e *env) {
		want := desiredLB()
		ops, uuid, err := nbops.EnsureLoadBalancer(e.c, want)
		wantOps(t, ops, err, "wait Load_Balancer", "insert Load_Balancer")
		if !ovsdb.IsNamedUUID(uuid) {
			t.Fatalf("uuid %q of a load balancer to insert", uuid)
		}
		e.apply(ops, nil)
		ops, uuid, err = nbops.EnsureLoadBalancer(e.c, want)
		wantOps(t, ops, err)
		got := e.lb(want.Name)
		if got.UUID != uuid || !maps.Equal(got.Vips, want.Vips) || got.Protocol == nil || *got.Protocol != "tcp" ||
			got.Options["reject"] != "true" || got.ExternalIDs[own.OwnerKey] != "default/web" {
			t.Fatalf("load balancer %+v (uuid %s)", got, uuid)
		}

		// One backend goes: one update of vips alone.
		want.Vips["10.96.0.10:80"] = "10.128.2.7:8080"
		ops, _, err = nbops.EnsureLoadBalancer(e.c, want)
		wantOps(t, ops, err, "update Load_Balancer")
		if len(ops[0].Row) != 1 || ops[0].Row["vips"] == nil {
			t.Fatalf("update row %v, want vips only", ops[0].Row)
		}
		e.apply(ops, nil)
		e.converged(func() ([]ovsdb.Operation, error) { return dropUUID(nbops.EnsureLoadBalancer(e.c, want)) })
		if got := e.lb(want.Name).Vips["10.96.0.10:80"]; got != "10.128.2.7:8080" {
			t.Fatalf("vip after update: %q", got)
		}

		ops, err = nbops.DeleteLoadBalancer(e.c, want.Name)
		wantOps(t, ops, err, "delete Load_Balancer")
		e.apply(ops, nil)
		ops, err = nbops.DeleteLoadBalancer(e.c, want.Name)
		wantOps(t, ops, err)
		if _, err := nbops.GetLoadBalancer(e.c, want.Name); !errors.Is(err, nbops.ErrNotFound) {
			t.Fatalf("after delete: %v, want ErrNotFound", err)
		}
	})
}

func TestEnsureLoadBalancerNoDuplicateFromStaleOps(t *testing.T) {
	e := memEnv(t)
	ops, _, err := nbops.EnsureLoadBalancer(e.c, desiredLB())
	e.apply(ops, err)
	err = e.tx.Transact(context.Background(), "stale", ops)
	var txnErr *nbops.TxnError
	if !errors.As(err, &txnErr) {
		t.Fatalf("replaying the insert: %v, want a TxnError from the wait guard", err)
	}
	e.lb(desiredLB().Name) // fails on two
}

func TestLoadBalancerGroupMembership(t *testing.T) {
	e := memEnv(t)
	if _, err := nbops.LoadBalancerGroupAdd(e.c, own.ClusterLBGroup, "x"); !errors.Is(err, nbops.ErrNotFound) {
		t.Fatalf("add to a missing group: %v, want ErrNotFound", err)
	}
	ops, gUUID, err := nbops.EnsureLoadBalancerGroup(e.c, &nbdb.LoadBalancerGroup{Name: own.ClusterLBGroup})
	wantOps(t, ops, err, "insert Load_Balancer_Group")
	if !ovsdb.IsNamedUUID(gUUID) {
		t.Fatalf("group uuid %q", gUUID)
	}
	// A switch and a router referring to the group it is inserted with.
	more, _, err := nbops.EnsureSwitch(e.c, &nbdb.LogicalSwitch{Name: "node1", LoadBalancerGroup: []string{gUUID}})
	ops = append(ops, more...)
	if err != nil {
		t.Fatal(err)
	}
	more, _, err = nbops.EnsureRouter(e.c, &nbdb.LogicalRouter{Name: "GR_node1"})
	e.apply(append(ops, more...), err)
	g, err := nbops.GetLoadBalancerGroup(e.c, own.ClusterLBGroup)
	if err != nil {
		t.Fatal(err)
	}
	ops, uuid, err := nbops.EnsureLoadBalancerGroup(e.c, &nbdb.LoadBalancerGroup{Name: own.ClusterLBGroup})
	wantOps(t, ops, err)
	if uuid != g.UUID || !slices.Equal(e.switchNamed("node1").LoadBalancerGroup, []string{g.UUID}) {
		t.Fatalf("group uuid %s / %s, switch refers to %v", uuid, g.UUID, e.switchNamed("node1").LoadBalancerGroup)
	}

	// A new load balancer joins the group, the switch and the router in
	// its insert's transaction, by named UUID.
	ops, lbUUID, err := nbops.EnsureLoadBalancer(e.c, desiredLB())
	if err != nil {
		t.Fatal(err)
	}
	for _, add := range []func() ([]ovsdb.Operation, error){
		func() ([]ovsdb.Operation, error) {
			return nbops.LoadBalancerGroupAdd(e.c, own.ClusterLBGroup, lbUUID, lbUUID)
		},
		func() ([]ovsdb.Operation, error) { return nbops.SwitchLoadBalancersAdd(e.c, "node1", lbUUID) },
		func() ([]ovsdb.Operation, error) { return nbops.RouterLoadBalancersAdd(e.c, "GR_node1", lbUUID) },
	} {
		more, err := add()
		wantOps(t, more, err, "mutate "+more[0].Table)
		ops = append(ops, more...)
	}
	e.apply(ops, nil)
	real := e.lb(desiredLB().Name).UUID
	e.converged(func() ([]ovsdb.Operation, error) {
		var all []ovsdb.Operation
		for _, f := range []func() ([]ovsdb.Operation, error){
			func() ([]ovsdb.Operation, error) { return nbops.LoadBalancerGroupAdd(e.c, own.ClusterLBGroup, real) },
			func() ([]ovsdb.Operation, error) { return nbops.SwitchLoadBalancersAdd(e.c, "node1", real) },
			func() ([]ovsdb.Operation, error) { return nbops.RouterLoadBalancersAdd(e.c, "GR_node1", real) },
			func() ([]ovsdb.Operation, error) { return dropUUID(nbops.EnsureLoadBalancer(e.c, desiredLB())) },
		} {
			ops, err := f()
			if err != nil {
				return nil, err
			}
			all = append(all, ops...)
		}
		return all, nil
	})
	g, _ = nbops.GetLoadBalancerGroup(e.c, own.ClusterLBGroup)
	if !slices.Equal(g.LoadBalancer, []string{real}) || !slices.Equal(e.switchNamed("node1").LoadBalancer, []string{real}) ||
		!slices.Equal(e.routerNamed("GR_node1").LoadBalancer, []string{real}) {
		t.Fatalf("group %v, switch %v, router %v, want %s everywhere", g.LoadBalancer,
			e.switchNamed("node1").LoadBalancer, e.routerNamed("GR_node1").LoadBalancer, real)
	}

	testDeleteUnlinks(t, e, real)
}

// testDeleteUnlinks continues TestLoadBalancerGroupMembership with the
// load balancer real in the group, on node1 and on GR_node1.
func testDeleteUnlinks(t *testing.T, e *env, real string) {
	t.Helper()
	// Remove takes it out of one holder only.
	ops, err := nbops.SwitchLoadBalancersRemove(e.c, "node1", real, "not-held")
	wantOps(t, ops, err, "mutate Logical_Switch")
	e.apply(ops, nil)
	e.converged(func() ([]ovsdb.Operation, error) { return nbops.SwitchLoadBalancersRemove(e.c, "node1", real) })
	ops, err = nbops.SwitchLoadBalancersAdd(e.c, "node1", real)
	e.apply(ops, err)

	// Delete unlinks it from every holder, then deletes it.
	ops, err = nbops.DeleteLoadBalancer(e.c, desiredLB().Name)
	wantOps(t, ops, err, "mutate Load_Balancer_Group", "mutate Logical_Switch", "mutate Logical_Router", "delete Load_Balancer")
	e.apply(ops, nil)
	g, _ := nbops.GetLoadBalancerGroup(e.c, own.ClusterLBGroup)
	if len(g.LoadBalancer) != 0 || len(e.switchNamed("node1").LoadBalancer) != 0 || len(e.routerNamed("GR_node1").LoadBalancer) != 0 {
		t.Fatalf("references left after delete: group %v switch %v router %v", g.LoadBalancer,
			e.switchNamed("node1").LoadBalancer, e.routerNamed("GR_node1").LoadBalancer)
	}
	ops, err = nbops.LoadBalancerGroupRemove(e.c, own.ClusterLBGroup, real)
	wantOps(t, ops, err)
	if _, err := nbops.RouterLoadBalancersAdd(e.c, "GR_missing", real); !errors.Is(err, nbops.ErrNotFound) {
		t.Fatalf("add to a missing router: %v", err)
	}
}

func TestChassisTemplateVar(t *testing.T) {
	bothDBs(t, func(t *testing.T, e *env) {
		ids := own.IDs(own.KindNode, "node1", "")
		vars := map[string]string{own.NodeIPTemplateVar: "172.18.0.2"}
		ops, err := nbops.EnsureChassisTemplateVar(e.c, "chassis-1", vars, ids)
		wantOps(t, ops, err, "insert Chassis_Template_Var")
		e.apply(ops, nil)
		ops, err = nbops.EnsureChassisTemplateVar(e.c, "chassis-1", vars, ids)
		wantOps(t, ops, err)

		// Another writer's key on the same chassis.
		ops, err = nbops.EnsureChassisTemplateVar(e.c, "chassis-1", map[string]string{"OTHER": "x"}, nil)
		wantOps(t, ops, err, "mutate Chassis_Template_Var")
		e.apply(ops, nil)

		// A changed value replaces only that key, and survives the other's.
		vars[own.NodeIPTemplateVar] = "172.18.0.9"
		ops, err = nbops.EnsureChassisTemplateVar(e.c, "chassis-1", vars, ids)
		wantOps(t, ops, err, "mutate Chassis_Template_Var")
		e.apply(ops, nil)
		e.converged(func() ([]ovsdb.Operation, error) { return nbops.EnsureChassisTemplateVar(e.c, "chassis-1", vars, ids) })
		tv, err := nbops.GetChassisTemplateVar(e.c, "chassis-1")
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]string{own.NodeIPTemplateVar: "172.18.0.9", "OTHER": "x"}; !maps.Equal(tv.Variables, want) {
			t.Fatalf("variables %v, want %v", tv.Variables, want)
		}
		if !maps.Equal(tv.ExternalIDs, ids) {
			t.Fatalf("external_ids %v", tv.ExternalIDs)
		}

		ops, err = nbops.DeleteChassisTemplateVar(e.c, "chassis-1")
		wantOps(t, ops, err, "delete Chassis_Template_Var")
		e.apply(ops, nil)
		ops, err = nbops.DeleteChassisTemplateVar(e.c, "chassis-1")
		wantOps(t, ops, err)
	})
}

// TestLoadBalancerOptionsInNorthd checks, against real northd, that the
// options the service controller relies on mean what it assumes: reject
// turns a VIP without backends into a reject flow; a template VIP on
// ^KOVN_NODEIP is accepted and load-balanced; affinity_timeout commits a
// client's backend; lb_force_snat_ip=router_ip SNATs load-balanced
// traffic to the router port's address, and skip_snat exempts a load
// balancer from it.
func TestLoadBalancerOptionsInNorthd(t *testing.T) {
	o := testenv.StartOVN(t)
	e := newEnv(t, o.NBAddr)
	ops, lsUUID, err := nbops.EnsureSwitch(e.c, &nbdb.LogicalSwitch{Name: "node1"})
	if err != nil {
		t.Fatal(err)
	}
	// northd SNATs to router_ip only on router ports with a peer.
	more, _, err := nbops.EnsureSwitchPort(e.c, lsUUID, &nbdb.LogicalSwitchPort{Name: "etor-GR_node1", Type: "router",
		Addresses: []string{"router"}, Options: map[string]string{"router-port": "rtoe-GR_node1"}})
	ops = append(ops, more...)
	if err != nil {
		t.Fatal(err)
	}
	more, lrUUID, err := nbops.EnsureRouter(e.c, &nbdb.LogicalRouter{Name: "GR_node1",
		Options: map[string]string{"chassis": "chassis-1", "lb_force_snat_ip": "router_ip"}})
	ops = append(ops, more...)
	if err != nil {
		t.Fatal(err)
	}
	more, _, err = nbops.EnsureRouterPort(e.c, lrUUID, &nbdb.LogicalRouterPort{
		Name: "rtoe-GR_node1", MAC: "02:42:ac:12:00:02", Networks: []string{"172.18.0.2/16"}})
	e.apply(append(ops, more...), err)
	ops = nil
	for _, lb := range []struct {
		row    *nbdb.LoadBalancer
		router bool
	}{
		{row: &nbdb.LoadBalancer{Name: "empty", Protocol: ptr("tcp"), Vips: map[string]string{"10.96.0.20:80": ""},
			Options: map[string]string{"reject": "true", "event": "false"}}},
		{row: &nbdb.LoadBalancer{Name: "tmpl", Protocol: ptr("tcp"), Vips: map[string]string{own.NodeIPTemplateVIP(30080): "10.128.1.5:8080"},
			Options: map[string]string{"template": "true", "address-family": "ipv4"}}},
		{row: &nbdb.LoadBalancer{Name: "sticky", Protocol: ptr("udp"), Vips: map[string]string{"10.96.0.21:53": "10.128.1.6:53"},
			Options: map[string]string{"affinity_timeout": "10800"}}},
		{row: &nbdb.LoadBalancer{Name: "local", Protocol: ptr("tcp"), Vips: map[string]string{"172.18.0.2:30081": "10.128.1.5:8080"},
			Options: map[string]string{"skip_snat": "true"}}, router: true},
	} {
		more, uuid, err := nbops.EnsureLoadBalancer(e.c, lb.row)
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, more...)
		if lb.router {
			more, err = nbops.RouterLoadBalancersAdd(e.c, "GR_node1", uuid)
		} else {
			more, err = nbops.SwitchLoadBalancersAdd(e.c, "node1", uuid)
		}
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, more...)
	}
	more, err = nbops.EnsureChassisTemplateVar(e.c, "chassis-1", map[string]string{own.NodeIPTemplateVar: "172.18.0.2"}, nil)
	e.apply(append(ops, more...), err)

	want := []struct{ match, action string }{
		{"ip4.dst == 10.96.0.20 && tcp.dst == 80", "reject"},
		{"ip4.dst == ^KOVN_NODEIP && tcp.dst == 30080", "ct_lb_mark(backends=10.128.1.5:8080)"},
		{"reg1 == 10.96.0.21 && reg2[0..15] == 53", "commit_lb_aff"},
		{"ip4.dst == 172.18.0.2 && tcp && tcp.dst == 30081", "flags.skip_snat_for_lb = 1"},
		{"flags.force_snat_for_lb == 1", "ct_snat(172.18.0.2)"},
	}
	testenv.WaitFor(t, waitTimeout, func() error {
		flows := logicalFlows(o.SBCtl(t, "--columns=match,actions", "find", "logical_flow"))
		for _, w := range want {
			if !slices.ContainsFunc(flows, func(f [2]string) bool {
				return strings.Contains(f[0], w.match) && strings.Contains(f[1], w.action)
			}) {
				return errors.New("no logical flow matching " + w.match + " does " + w.action)
			}
		}
		return nil
	})
}

// logicalFlows parses ovn-sbctl's list output of match and actions.
func logicalFlows(out string) [][2]string {
	var flows [][2]string
	for _, rec := range strings.Split(out, "\n\n") {
		var f [2]string
		for _, line := range strings.Split(rec, "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			switch strings.TrimSpace(k) {
			case "match":
				f[0] = strings.TrimSpace(v)
			case "actions":
				f[1] = strings.TrimSpace(v)
			}
		}
		flows = append(flows, f)
	}
	return flows
}
