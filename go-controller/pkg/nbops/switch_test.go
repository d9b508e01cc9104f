package nbops_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

func desiredSwitch() *nbdb.LogicalSwitch {
	return &nbdb.LogicalSwitch{
		Name:        "node1",
		OtherConfig: map[string]string{"subnet": "10.128.1.0/24"},
		ExternalIDs: own.IDs("Node", "node1", ""),
	}
}

func TestEnsureSwitchCreateUpdateConverge(t *testing.T) {
	e := memEnv(t)
	want := desiredSwitch()
	ops, uuid, err := nbops.EnsureSwitch(e.c, want)
	wantOps(t, ops, err, "wait Logical_Switch", "insert Logical_Switch")
	if !ovsdb.IsNamedUUID(uuid) {
		t.Fatalf("uuid %q of a switch to insert is not a named UUID", uuid)
	}
	e.apply(ops, nil)
	// The Transactor waited for the insert to reach the cache, so the very
	// next build already converges, no polling needed.
	ops, uuid, err = nbops.EnsureSwitch(e.c, want)
	wantOps(t, ops, err)
	if got := e.switchNamed("node1"); got == nil || got.UUID != uuid || got.OtherConfig["subnet"] != "10.128.1.0/24" {
		t.Fatalf("switch %+v, uuid %s", got, uuid)
	}

	// One changed column is one update of that column only.
	want.OtherConfig = map[string]string{"subnet": "10.128.1.0/24", "mcast_snoop": "true"}
	ops, _, err = nbops.EnsureSwitch(e.c, want)
	wantOps(t, ops, err, "update Logical_Switch")
	if len(ops[0].Row) != 1 || ops[0].Row["other_config"] == nil {
		t.Fatalf("update row %v, want other_config only", ops[0].Row)
	}
	e.apply(ops, nil)
	e.converged(func() ([]ovsdb.Operation, error) { return dropUUID(nbops.EnsureSwitch(e.c, want)) })

	// Clearing a map is a change too.
	want.OtherConfig = nil
	ops, _, err = nbops.EnsureSwitch(e.c, want)
	wantOps(t, ops, err, "update Logical_Switch")
	e.apply(ops, nil)
	e.converged(func() ([]ovsdb.Operation, error) { return dropUUID(nbops.EnsureSwitch(e.c, want)) })
	if got := e.switchNamed("node1"); len(got.OtherConfig) != 0 {
		t.Fatalf("other_config %v after clearing", got.OtherConfig)
	}
}

func TestEnsureSwitchNilEqualsEmpty(t *testing.T) {
	e := memEnv(t)
	e.apply(nbopsSwitchOps(t, e, &nbdb.LogicalSwitch{Name: "s"}))
	for _, want := range []*nbdb.LogicalSwitch{
		{Name: "s", OtherConfig: map[string]string{}, ExternalIDs: map[string]string{}, LoadBalancerGroup: []string{}},
		{Name: "s"},
	} {
		ops, _, err := nbops.EnsureSwitch(e.c, want)
		wantOps(t, ops, err)
	}
}

func nbopsSwitchOps(t testing.TB, e *env, ls *nbdb.LogicalSwitch) ([]ovsdb.Operation, error) {
	t.Helper()
	ops, _, err := nbops.EnsureSwitch(e.c, ls)
	return ops, err
}

func TestEnsureSwitchLeavesUnownedColumns(t *testing.T) {
	e := memEnv(t)
	ops, sw, err := nbops.EnsureSwitch(e.c, desiredSwitch())
	if err != nil {
		t.Fatal(err)
	}
	more, _, err := nbops.EnsureSwitchPort(e.c, sw, &nbdb.LogicalSwitchPort{Name: "p1"})
	e.apply(append(ops, more...), err)
	// The desired switch has no ports: EnsureSwitch must not remove them.
	ops, _, err = nbops.EnsureSwitch(e.c, desiredSwitch())
	wantOps(t, ops, err)
	if got := e.switchNamed("node1"); len(got.Ports) != 1 {
		t.Fatalf("ports %v", got.Ports)
	}
}

// A stale cache (or a second writer) must not create a second switch of
// the same name: Logical_Switch has no schema index to stop it.
func TestEnsureSwitchNoDuplicateFromStaleOps(t *testing.T) {
	bothDBs(t, func(t *testing.T, e *env) {
		ops, _, err := nbops.EnsureSwitch(e.c, desiredSwitch())
		if err != nil {
			t.Fatal(err)
		}
		e.apply(ops, nil)
		err = e.tx.Transact(context.Background(), "stale", ops)
		var txnErr *nbops.TxnError
		var timedOut *ovsdb.TimedOut
		if !errors.As(err, &txnErr) || !errors.As(err, &timedOut) {
			t.Fatalf("replaying the insert: %v, want a TxnError from the wait guard", err)
		}
		e.switchNamed("node1") // fails on two
	})
}

func TestEnsureSwitchDuplicateNames(t *testing.T) {
	e := memEnv(t)
	for range 2 {
		ops, err := e.c.Create(&nbdb.LogicalSwitch{Name: "dup"})
		e.apply(ops, err)
	}
	e.converged(func() ([]ovsdb.Operation, error) {
		_, _, err := nbops.EnsureSwitch(e.c, &nbdb.LogicalSwitch{Name: "dup"})
		if !errors.Is(err, nbops.ErrDuplicate) {
			return []ovsdb.Operation{{}}, nil
		}
		return nil, nil
	})
	ops, err := nbops.DeleteSwitch(e.c, "dup")
	wantOps(t, ops, err, "delete Logical_Switch", "delete Logical_Switch")
}

func TestEnsureSwitchPort(t *testing.T) {
	e := memEnv(t)
	ops, sw, err := nbops.EnsureSwitch(e.c, desiredSwitch())
	if err != nil {
		t.Fatal(err)
	}
	want := &nbdb.LogicalSwitchPort{
		Name:         "ns_pod1",
		Addresses:    []string{"0a:58:0a:80:01:05 10.128.1.5"},
		PortSecurity: []string{"0a:58:0a:80:01:05 10.128.1.5"},
		Options:      map[string]string{"requested-chassis": "node1"},
		ExternalIDs:  own.IDs("Pod", "ns/pod1", ""),
		TagRequest:   ptr(0),
	}
	more, lspUUID, err := nbops.EnsureSwitchPort(e.c, sw, want)
	wantOps(t, more, err, "insert Logical_Switch_Port", "mutate Logical_Switch")
	if more[1].Where[0].Value != (ovsdb.UUID{GoUUID: sw}) {
		t.Fatalf("port added to %v, want the named switch %s", more[1].Where, sw)
	}
	e.apply(append(ops, more...), nil)

	ops, uuid, err := nbops.EnsureSwitchPort(e.c, e.switchNamed("node1").UUID, want)
	wantOps(t, ops, err)
	if got := e.port("ns_pod1"); got == nil || got.UUID != uuid || ovsdb.IsNamedUUID(uuid) || uuid == lspUUID {
		t.Fatalf("port %+v, uuid %s", got, uuid)
	}

	// Sets compare as sets: reordered addresses are no change.
	want.PortSecurity = []string{"0a:58:0a:80:01:05 10.128.1.5", "0a:58:0a:80:01:05 10.128.1.5"}
	want.Addresses = []string{"0a:58:0a:80:01:05 10.128.1.5"}
	ops, _, err = nbops.EnsureSwitchPort(e.c, e.switchNamed("node1").UUID, want)
	wantOps(t, ops, err)

	// Optional columns compare by value, not by pointer.
	want.TagRequest = ptr(0)
	want.Enabled = ptr(false)
	ops, _, err = nbops.EnsureSwitchPort(e.c, e.switchNamed("node1").UUID, want)
	wantOps(t, ops, err, "update Logical_Switch_Port")
	if len(ops[0].Row) != 1 || ops[0].Row["enabled"] == nil {
		t.Fatalf("update row %v, want enabled only", ops[0].Row)
	}
	e.apply(ops, nil)
	e.converged(func() ([]ovsdb.Operation, error) {
		ops, _, err := nbops.EnsureSwitchPort(e.c, e.switchNamed("node1").UUID, want)
		return ops, err
	})
}

func TestSwitchPortMovesBetweenSwitches(t *testing.T) {
	bothDBs(t, func(t *testing.T, e *env) {
		var uuids []string
		for _, name := range []string{"a", "b"} {
			ops, _, err := nbops.EnsureSwitch(e.c, &nbdb.LogicalSwitch{Name: name})
			e.apply(ops, err)
			uuids = append(uuids, e.switchNamed(name).UUID)
		}
		lsp := &nbdb.LogicalSwitchPort{Name: "p", Addresses: []string{"unknown"}}
		ops, _, err := nbops.EnsureSwitchPort(e.c, uuids[0], lsp)
		e.apply(ops, err)
		before := e.port("p").UUID

		ops, _, err = nbops.EnsureSwitchPort(e.c, uuids[1], lsp)
		wantOps(t, ops, err, "mutate Logical_Switch", "mutate Logical_Switch")
		if ops[0].Mutations[0].Mutator != ovsdb.MutateOperationDelete || ops[1].Mutations[0].Mutator != ovsdb.MutateOperationInsert {
			t.Fatalf("want delete from a then insert into b:%s", opsString(ops))
		}
		e.apply(ops, nil)
		e.converged(func() ([]ovsdb.Operation, error) { return dropUUID(nbops.EnsureSwitchPort(e.c, uuids[1], lsp)) })
		if a, b := e.switchNamed("a"), e.switchNamed("b"); len(a.Ports) != 0 || !slices.Equal(b.Ports, []string{before}) {
			t.Fatalf("after the move a has %v, b has %v (port %s)", a.Ports, b.Ports, before)
		}
	})
}

func TestEnsureSwitchPortUnknownSwitch(t *testing.T) {
	e := memEnv(t)
	_, _, err := nbops.EnsureSwitchPort(e.c, "7a9f3c6e-0000-4000-8000-000000000000", &nbdb.LogicalSwitchPort{Name: "p"})
	if !errors.Is(err, nbops.ErrNotFound) {
		t.Fatalf("port on a switch not in the cache: %v, want ErrNotFound", err)
	}
}

func TestDeleteSwitchPortAndSwitch(t *testing.T) {
	bothDBs(t, func(t *testing.T, e *env) {
		ops, sw, err := nbops.EnsureSwitch(e.c, desiredSwitch())
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"p1", "p2"} {
			more, _, err := nbops.EnsureSwitchPort(e.c, sw, &nbdb.LogicalSwitchPort{Name: p})
			if err != nil {
				t.Fatal(err)
			}
			ops = append(ops, more...)
		}
		e.apply(ops, nil)

		ops, err = nbops.DeleteSwitchPort(e.c, "p1")
		wantOps(t, ops, err, "mutate Logical_Switch", "delete Logical_Switch_Port")
		e.apply(ops, nil)
		if e.port("p1") != nil {
			t.Fatal("p1 still cached after its delete was committed")
		}
		ops, err = nbops.DeleteSwitchPort(e.c, "p1")
		wantOps(t, ops, err)

		ops, err = nbops.DeleteSwitch(e.c, "node1")
		wantOps(t, ops, err, "delete Logical_Switch")
		e.apply(ops, nil)
		// p2 goes with its switch: OVSDB garbage-collects unreferenced ports.
		e.converged(func() ([]ovsdb.Operation, error) {
			if e.port("p2") != nil {
				return []ovsdb.Operation{{}}, nil
			}
			return nbops.DeleteSwitch(e.c, "node1")
		})
	})
}
