package nbops_test

import (
	"slices"
	"sort"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

func route(owner map[string]string, prefix, nexthop string) *nbdb.LogicalRouterStaticRoute {
	ids := map[string]string{}
	for k, v := range owner {
		ids[k] = v
	}
	return &nbdb.LogicalRouterStaticRoute{IPPrefix: prefix, Nexthop: nexthop, ExternalIDs: ids}
}

// routes lists a router's static routes as "prefix via nexthop [owner]".
func (e *env) routes(router string) []string {
	e.t.Helper()
	var out []string
	for _, u := range e.routerNamed(router).StaticRoutes {
		r := e.c.Cache().Table(nbdb.LogicalRouterStaticRouteTable).Row(u).(*nbdb.LogicalRouterStaticRoute)
		out = append(out, r.IPPrefix+" via "+r.Nexthop+" ["+r.ExternalIDs[own.OwnerKey]+"]")
	}
	sort.Strings(out)
	return out
}

func TestEnsureStaticRoutesSetSemantics(t *testing.T) {
	bothDBs(t, func(t *testing.T, e *env) {
		ops, lr, err := nbops.EnsureRouter(e.c, &nbdb.LogicalRouter{Name: "r"})
		if err != nil {
			t.Fatal(err)
		}
		a, b := own.IDs("Node", "a", ""), own.IDs("Node", "b", "")
		wantA := []*nbdb.LogicalRouterStaticRoute{route(a, "10.128.1.0/24", "100.64.0.2"), route(a, "10.128.2.0/24", "100.64.0.2")}
		wantB := []*nbdb.LogicalRouterStaticRoute{route(b, "10.128.3.0/24", "100.64.0.3")}
		// Both owners' routes on a router inserted in the same transaction.
		for _, set := range []struct {
			owner map[string]string
			want  []*nbdb.LogicalRouterStaticRoute
		}{{a, wantA}, {b, wantB}} {
			more, err := nbops.EnsureStaticRoutes(e.c, lr, set.owner, set.want)
			if err != nil {
				t.Fatal(err)
			}
			ops = append(ops, more...)
		}
		e.apply(ops, nil)
		lr = e.routerNamed("r").UUID
		ops, err = nbops.EnsureStaticRoutes(e.c, lr, a, wantA)
		wantOps(t, ops, err)

		// Update one in place, drop one, add one; b's route is not a's to touch.
		wantA[0].Options = map[string]string{"ecmp_symmetric_reply": "true"}
		wantA = []*nbdb.LogicalRouterStaticRoute{wantA[0], route(a, "10.128.4.0/24", "100.64.0.2")}
		ops, err = nbops.EnsureStaticRoutes(e.c, lr, a, wantA)
		wantOps(t, ops, err,
			"insert Logical_Router_Static_Route", "mutate Logical_Router",
			"update Logical_Router_Static_Route",
			"mutate Logical_Router", "delete Logical_Router_Static_Route")
		e.apply(ops, nil)
		e.converged(func() ([]ovsdb.Operation, error) { return nbops.EnsureStaticRoutes(e.c, lr, a, wantA) })
		got := e.routes("r")
		want := []string{"10.128.1.0/24 via 100.64.0.2 [a]", "10.128.3.0/24 via 100.64.0.3 [b]", "10.128.4.0/24 via 100.64.0.2 [a]"}
		if !slices.Equal(got, want) {
			t.Fatalf("routes %v, want %v", got, want)
		}

		// A policy left out means dst-ip: the same route, no change.
		wantA[1].Policy = ptr(nbdb.LogicalRouterStaticRoutePolicyDstIP)
		ops, err = nbops.EnsureStaticRoutes(e.c, lr, a, wantA)
		wantOps(t, ops, err)

		// Emptying a's set leaves b's route alone.
		ops, err = nbops.EnsureStaticRoutes(e.c, lr, a, nil)
		wantOps(t, ops, err, "mutate Logical_Router", "delete Logical_Router_Static_Route", "delete Logical_Router_Static_Route")
		e.apply(ops, nil)
		e.converged(func() ([]ovsdb.Operation, error) { return nbops.EnsureStaticRoutes(e.c, lr, a, nil) })
		if got := e.routes("r"); !slices.Equal(got, []string{"10.128.3.0/24 via 100.64.0.3 [b]"}) {
			t.Fatalf("routes %v after emptying a", got)
		}
	})
}

func TestEnsureStaticRoutesValidates(t *testing.T) {
	e := memEnv(t)
	ops, lr, err := nbops.EnsureRouter(e.c, &nbdb.LogicalRouter{Name: "r"})
	e.apply(ops, err)
	lr = e.routerNamed("r").UUID
	a := own.IDs("Node", "a", "")
	for name, tc := range map[string]struct {
		owner map[string]string
		want  []*nbdb.LogicalRouterStaticRoute
	}{
		"empty owner":     {nil, nil},
		"route not owned": {a, []*nbdb.LogicalRouterStaticRoute{route(nil, "10.0.0.0/8", "1.1.1.1")}},
		"other owner":     {a, []*nbdb.LogicalRouterStaticRoute{route(own.IDs("Node", "b", ""), "10.0.0.0/8", "1.1.1.1")}},
		"twice":           {a, []*nbdb.LogicalRouterStaticRoute{route(a, "10.0.0.0/8", "1.1.1.1"), route(a, "10.0.0.0/8", "1.1.1.1")}},
	} {
		if _, err := nbops.EnsureStaticRoutes(e.c, lr, tc.owner, tc.want); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func nat(owner map[string]string, typ nbdb.NATType, logical, external string) *nbdb.NAT {
	return &nbdb.NAT{Type: typ, LogicalIP: logical, ExternalIP: external, ExternalIDs: own.IDs(owner[own.KindKey], owner[own.OwnerKey], "")}
}

func TestEnsureNATsSetSemantics(t *testing.T) {
	e := memEnv(t)
	ops, lr, err := nbops.EnsureRouter(e.c, &nbdb.LogicalRouter{Name: "GR_node1"})
	if err != nil {
		t.Fatal(err)
	}
	node, egress := own.IDs("Node", "node1", ""), own.IDs("EgressIP", "eip1", "")
	wantNode := []*nbdb.NAT{nat(node, nbdb.NATTypeSNAT, "10.128.0.0/14", "172.18.0.2")}
	wantEgress := []*nbdb.NAT{nat(egress, nbdb.NATTypeSNAT, "10.128.1.5", "172.18.0.100")}
	for _, more := range [][]*nbdb.NAT{wantNode, wantEgress} {
		owner := node
		if more[0].ExternalIDs[own.OwnerKey] == "eip1" {
			owner = egress
		}
		natOps, err := nbops.EnsureNATs(e.c, lr, owner, more)
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, natOps...)
	}
	e.apply(ops, nil)
	lr = e.routerNamed("GR_node1").UUID
	ops, err = nbops.EnsureNATs(e.c, lr, node, wantNode)
	wantOps(t, ops, err)

	// A new external IP is a different NAT (identity), a new port range
	// the same one updated in place.
	wantNode[0].ExternalPortRange = "32768-60999"
	ops, err = nbops.EnsureNATs(e.c, lr, node, wantNode)
	wantOps(t, ops, err, "update NAT")
	e.apply(ops, nil)
	e.converged(func() ([]ovsdb.Operation, error) { return nbops.EnsureNATs(e.c, lr, node, wantNode) })

	wantNode[0].ExternalIP = "172.18.0.3"
	ops, err = nbops.EnsureNATs(e.c, lr, node, wantNode)
	wantOps(t, ops, err, "insert NAT", "mutate Logical_Router", "mutate Logical_Router", "delete NAT")
	e.apply(ops, nil)
	e.converged(func() ([]ovsdb.Operation, error) { return nbops.EnsureNATs(e.c, lr, node, wantNode) })

	var ext []string
	for _, u := range e.routerNamed("GR_node1").Nat {
		n := e.c.Cache().Table(nbdb.NATTable).Row(u).(*nbdb.NAT)
		ext = append(ext, n.LogicalIP+"->"+n.ExternalIP+" "+n.ExternalPortRange)
	}
	sort.Strings(ext)
	if want := []string{"10.128.0.0/14->172.18.0.3 32768-60999", "10.128.1.5->172.18.0.100 "}; !slices.Equal(ext, want) {
		t.Fatalf("NATs %q, want %q", ext, want)
	}
}
