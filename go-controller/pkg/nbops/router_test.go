package nbops_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

func TestEnsureRouterAndPort(t *testing.T) {
	e := memEnv(t)
	lr := &nbdb.LogicalRouter{Name: "ovn_cluster_router", Options: map[string]string{"mcast_relay": "true"}}
	ops, lrUUID, err := nbops.EnsureRouter(e.c, lr)
	wantOps(t, ops, err, "wait Logical_Router", "insert Logical_Router")
	lrp := &nbdb.LogicalRouterPort{
		Name:     "rtos-node1",
		MAC:      "0a:58:0a:80:01:01",
		Networks: []string{"10.128.1.1/24", "fd00:10:128:1::1/64"},
	}
	more, _, err := nbops.EnsureRouterPort(e.c, lrUUID, lrp)
	wantOps(t, more, err, "insert Logical_Router_Port", "mutate Logical_Router")
	e.apply(append(ops, more...), nil)

	build := func() ([]ovsdb.Operation, error) {
		ops, _, err := nbops.EnsureRouter(e.c, lr)
		if err != nil || len(ops) > 0 {
			return ops, err
		}
		ops, _, err = nbops.EnsureRouterPort(e.c, e.routerNamed(lr.Name).UUID, lrp)
		return ops, err
	}
	ops, err = build()
	wantOps(t, ops, err)

	// Networks is a set; order does not matter, content does.
	lrp.Networks = []string{"fd00:10:128:1::1/64", "10.128.1.1/24"}
	ops, err = build()
	wantOps(t, ops, err)
	lrp.Networks = []string{"10.128.1.1/24"}
	ops, err = build()
	wantOps(t, ops, err, "update Logical_Router_Port")
	e.apply(ops, nil)
	e.converged(build)

	lr.Enabled = ptr(false)
	ops, err = build()
	wantOps(t, ops, err, "update Logical_Router")
	e.apply(ops, nil)
	e.converged(build)

	// Move the port to a second router.
	ops, _, err = nbops.EnsureRouter(e.c, &nbdb.LogicalRouter{Name: "GR_node1"})
	e.apply(ops, err)
	gr := e.routerNamed("GR_node1").UUID
	ops, _, err = nbops.EnsureRouterPort(e.c, gr, lrp)
	wantOps(t, ops, err, "mutate Logical_Router", "mutate Logical_Router")
	e.apply(ops, nil)
	e.converged(func() ([]ovsdb.Operation, error) { return dropUUID(nbops.EnsureRouterPort(e.c, gr, lrp)) })
	if ports := e.routerNamed("ovn_cluster_router").Ports; len(ports) != 0 {
		t.Fatalf("port still on the old router: %v", ports)
	}

	ops, err = nbops.DeleteRouterPort(e.c, lrp.Name)
	wantOps(t, ops, err, "mutate Logical_Router", "delete Logical_Router_Port")
	e.apply(ops, nil)
	ops, err = nbops.DeleteRouterPort(e.c, lrp.Name)
	wantOps(t, ops, err)

	ops, err = nbops.DeleteRouter(e.c, "GR_node1")
	wantOps(t, ops, err, "delete Logical_Router")
	e.apply(ops, nil)
	ops, err = nbops.DeleteRouter(e.c, "GR_node1")
	wantOps(t, ops, err)
}

func TestEnsureRouterPortValidates(t *testing.T) {
	e := memEnv(t)
	ops, lr, err := nbops.EnsureRouter(e.c, &nbdb.LogicalRouter{Name: "r"})
	e.apply(ops, err)
	if _, _, err := nbops.EnsureRouterPort(e.c, lr, &nbdb.LogicalRouterPort{Name: "p", MAC: "0a:58:00:00:00:01"}); err == nil {
		t.Fatal("router port without networks accepted")
	}
	_, _, err = nbops.EnsureRouterPort(e.c, "7a9f3c6e-0000-4000-8000-000000000000",
		&nbdb.LogicalRouterPort{Name: "p", MAC: "0a:58:00:00:00:01", Networks: []string{"10.0.0.1/24"}})
	if !errors.Is(err, nbops.ErrNotFound) {
		t.Fatalf("port on an unknown router: %v", err)
	}
}

func TestOwned(t *testing.T) {
	e := memEnv(t)
	var ops []ovsdb.Operation
	for _, ls := range []*nbdb.LogicalSwitch{
		{Name: "n2", ExternalIDs: own.IDs("Node", "n2", "")},
		{Name: "n1", ExternalIDs: own.IDs("Node", "n1", "")},
		{Name: "join", ExternalIDs: own.IDs("Cluster", "default", "")},
		{Name: "foreign"},
	} {
		more, _, err := nbops.EnsureSwitch(e.c, ls)
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, more...)
	}
	e.apply(ops, nil)
	got := nbops.Owned[nbdb.LogicalSwitch](e.c, "Node")
	var names []string
	for _, ls := range got {
		names = append(names, ls.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"n1", "n2"}) {
		t.Fatalf("Owned(Node) = %v", names)
	}
	if !slices.IsSortedFunc(got, func(a, b *nbdb.LogicalSwitch) int {
		if a.UUID < b.UUID {
			return -1
		}
		return 1
	}) {
		t.Error("Owned rows not sorted by UUID")
	}
	if got := nbops.Owned[nbdb.AddressSet](e.c, "Node"); len(got) != 0 {
		t.Fatalf("Owned address sets = %v", got)
	}
	if got := nbops.Owned[nbdb.LogicalSwitch](e.c, ""); got != nil {
		t.Fatalf("Owned(\"\") = %v", got)
	}

	// Get* read the cache by name.
	if ls, err := nbops.GetSwitch(e.c, "n1"); err != nil || ls.Name != "n1" {
		t.Fatalf("GetSwitch(n1) = %v, %v", ls, err)
	}
	for _, name := range []string{"nope", ""} {
		if _, err := nbops.GetSwitch(e.c, name); err == nil {
			t.Errorf("GetSwitch(%q) found something", name)
		}
	}
	if _, err := nbops.GetRouter(e.c, "n1"); !errors.Is(err, nbops.ErrNotFound) {
		t.Fatalf("GetRouter(n1) = %v, want ErrNotFound", err)
	}
	if _, err := nbops.GetAddressSet(e.c, "n1"); !errors.Is(err, nbops.ErrNotFound) {
		t.Fatalf("GetAddressSet(n1) = %v, want ErrNotFound", err)
	}
}
