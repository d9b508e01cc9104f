package nbops_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
	"github.com/kovn-io/kovn/go-controller/pkg/testenv"
)

// switchWithPorts makes a switch with the named ports and returns their UUIDs.
func (e *env) switchWithPorts(sw string, ports ...string) []string {
	e.t.Helper()
	ops, lsUUID, err := nbops.EnsureSwitch(e.c, &nbdb.LogicalSwitch{Name: sw})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, p := range ports {
		pops, _, err := nbops.EnsureSwitchPort(e.c, lsUUID, &nbdb.LogicalSwitchPort{Name: p})
		if err != nil {
			e.t.Fatal(err)
		}
		ops = append(ops, pops...)
	}
	e.apply(ops, nil)
	var uuids []string
	for _, p := range ports {
		testenv.WaitFor(e.t, waitTimeout, func() error {
			_, err := nbops.GetSwitchPort(e.c, p)
			return err
		})
		uuids = append(uuids, e.port(p).UUID)
	}
	return uuids
}

func (e *env) portGroup(name string) *nbdb.PortGroup {
	e.t.Helper()
	pg, err := nbops.GetPortGroup(e.c, name)
	if err != nil {
		e.t.Fatal(err)
	}
	return pg
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestEnsurePortGroup(t *testing.T) {
	bothDBs(t, func(t *testing.T, e *env) {
		lsps := e.switchWithPorts("sw", "p1", "p2", "p3")
		want := &nbdb.PortGroup{Name: "kovn_np.ns.web", ExternalIDs: own.IDs(own.KindNetworkPolicy, "ns/web", "")}
		// A new group, its members and its ACLs in one op list.
		ops, uuid, err := nbops.EnsurePortGroup(e.c, want)
		wantOps(t, ops, err, "insert Port_Group")
		if !ovsdb.IsNamedUUID(uuid) {
			t.Fatalf("uuid %q, want a named UUID", uuid)
		}
		if len(ops[0].Row) != 2 {
			t.Errorf("insert row %v, want name and external_ids only", ops[0].Row)
		}
		ports, err := nbops.PortGroupSetPorts(e.c, uuid, lsps[:2])
		wantOps(t, ports, err, "mutate Port_Group")
		acls, err := nbops.EnsurePortGroupACLs(e.c, uuid, []*nbdb.ACL{testACL("ingress/0", "outport == @kovn_np.ns.web && ip4")})
		wantOps(t, acls, err, "insert ACL", "mutate Port_Group")
		e.apply(append(append(ops, ports...), acls...), nil)

		pg := e.portGroup(want.Name)
		if !slices.Equal(sorted(pg.Ports), sorted(lsps[:2])) || len(pg.ACLs) != 1 {
			t.Fatalf("group %+v, want ports %v and one ACL", pg, lsps[:2])
		}
		e.converged(func() ([]ovsdb.Operation, error) { return dropUUID(nbops.EnsurePortGroup(e.c, want)) })

		// external_ids are owned; ports and ACLs are not touched.
		want.ExternalIDs = own.IDs(own.KindNetworkPolicy, "ns/web", "x")
		ops, _, err = nbops.EnsurePortGroup(e.c, want)
		wantOps(t, ops, err, "update Port_Group")
		if len(ops[0].Row) != 1 {
			t.Errorf("update row %v, want external_ids only", ops[0].Row)
		}
		e.apply(ops, nil)
		e.converged(func() ([]ovsdb.Operation, error) { return dropUUID(nbops.EnsurePortGroup(e.c, want)) })
		if pg := e.portGroup(want.Name); len(pg.Ports) != 2 || len(pg.ACLs) != 1 {
			t.Fatalf("EnsurePortGroup changed members or ACLs: %+v", pg)
		}

		// Deleting the group takes its ACLs with it.
		ops, err = nbops.DeletePortGroup(e.c, want.Name)
		wantOps(t, ops, err, "delete Port_Group")
		e.apply(ops, nil)
		ops, err = nbops.DeletePortGroup(e.c, want.Name)
		wantOps(t, ops, err)
		testenv.WaitFor(t, waitTimeout, func() error {
			if n := len(e.c.Cache().Table(nbdb.ACLTable).RowsShallow()); n != 0 {
				return fmt.Errorf("%d ACLs left", n)
			}
			return nil
		})
	})
}

func TestPortGroupPorts(t *testing.T) {
	e := memEnv(t)
	lsps := e.switchWithPorts("sw", "p1", "p2", "p3")
	if _, err := nbops.PortGroupAddPorts(e.c, "1b2c1d11-3e3d-4d3e-8c7a-111111111111", lsps[0]); err == nil {
		t.Fatal("adding to a missing group: no error")
	}
	ops, uuid, err := nbops.EnsurePortGroup(e.c, &nbdb.PortGroup{Name: "pg"})
	e.apply(ops, err)
	e.converged(func() ([]ovsdb.Operation, error) {
		return dropUUID(nbops.EnsurePortGroup(e.c, &nbdb.PortGroup{Name: "pg"}))
	})
	uuid = e.portGroup("pg").UUID

	ops, err = nbops.PortGroupAddPorts(e.c, uuid, lsps[0], lsps[1], lsps[0])
	wantOps(t, ops, err, "mutate Port_Group")
	if n := len(ops[0].Mutations[0].Value.(ovsdb.OvsSet).GoSet); n != 2 {
		t.Fatalf("adds %d ports, want 2", n)
	}
	e.apply(ops, nil)
	e.converged(func() ([]ovsdb.Operation, error) { return nbops.PortGroupAddPorts(e.c, uuid, lsps[0], lsps[1]) })

	// Only present ports are removed.
	ops, err = nbops.PortGroupRemovePorts(e.c, uuid, lsps[1], lsps[2])
	wantOps(t, ops, err, "mutate Port_Group")
	if got := ops[0].Mutations[0].Value.(ovsdb.OvsSet).GoSet; len(got) != 1 || got[0] != (ovsdb.UUID{GoUUID: lsps[1]}) {
		t.Fatalf("removes %v, want only %s", got, lsps[1])
	}
	e.apply(ops, nil)
	e.converged(func() ([]ovsdb.Operation, error) { return nbops.PortGroupRemovePorts(e.c, uuid, lsps[1], lsps[2]) })

	// Set: one insert of the missing, one delete of the extra.
	ops, err = nbops.PortGroupSetPorts(e.c, uuid, lsps[1:])
	wantOps(t, ops, err, "mutate Port_Group", "mutate Port_Group")
	e.apply(ops, nil)
	e.converged(func() ([]ovsdb.Operation, error) { return nbops.PortGroupSetPorts(e.c, uuid, lsps[1:]) })
	if got := e.portGroup("pg").Ports; !slices.Equal(sorted(got), sorted(lsps[1:])) {
		t.Fatalf("ports %v, want %v", got, lsps[1:])
	}
	ops, err = nbops.PortGroupSetPorts(e.c, uuid, nil)
	wantOps(t, ops, err, "mutate Port_Group")
	e.apply(ops, nil)
	e.converged(func() ([]ovsdb.Operation, error) { return nbops.PortGroupSetPorts(e.c, uuid, nil) })
}

// Ports are weak references: deleting a switch port takes it out of every
// group, without any op of ours. Only ovsdb-server implements that.
func TestPortGroupDropsDeletedPorts(t *testing.T) {
	e := newEnv(t, testenv.StartOVN(t).NBAddr)
	lsps := e.switchWithPorts("sw", "p1", "p2")
	ops, uuid, err := nbops.EnsurePortGroup(e.c, &nbdb.PortGroup{Name: "pg"})
	if err != nil {
		t.Fatal(err)
	}
	add, err := nbops.PortGroupSetPorts(e.c, uuid, lsps)
	e.apply(append(ops, add...), err)
	e.apply(nbops.DeleteSwitchPort(e.c, "p1"))
	testenv.WaitFor(t, waitTimeout, func() error {
		if got := e.portGroup("pg").Ports; !slices.Equal(got, lsps[1:]) {
			return fmt.Errorf("ports %v, want %v", got, lsps[1:])
		}
		return nil
	})
}

func testACL(id, match string) *nbdb.ACL {
	return &nbdb.ACL{
		Action: nbdb.ACLActionAllowRelated, Direction: nbdb.ACLDirectionToLport, Priority: 1001, Match: match,
		Name: ptr("ns/web"), ExternalIDs: own.IDs(own.KindNetworkPolicy, "ns/web", id),
	}
}

func (e *env) aclsOf(pg string) map[string]*nbdb.ACL {
	e.t.Helper()
	out := map[string]*nbdb.ACL{}
	for _, u := range e.portGroup(pg).ACLs {
		acl := &nbdb.ACL{UUID: u}
		if err := e.c.Get(context.Background(), acl); err != nil {
			e.t.Fatal(err)
		}
		out[acl.ExternalIDs[own.IDKey]] = acl
	}
	return out
}

func TestEnsurePortGroupACLs(t *testing.T) {
	bothDBs(t, func(t *testing.T, e *env) {
		ops, _, err := nbops.EnsurePortGroup(e.c, &nbdb.PortGroup{Name: "pg"})
		e.apply(ops, err)
		testenv.WaitFor(t, waitTimeout, func() error { _, err := nbops.GetPortGroup(e.c, "pg"); return err })
		uuid := e.portGroup("pg").UUID

		a0 := testACL("ingress/0", "outport == @pg && ip4.src == 10.0.0.0/8")
		a1 := testACL("ingress/1", "outport == @pg && tcp.dst == 80")
		ops, err = nbops.EnsurePortGroupACLs(e.c, uuid, []*nbdb.ACL{a0, a1})
		wantOps(t, ops, err, "insert ACL", "insert ACL", "mutate Port_Group")
		e.apply(ops, nil)
		e.converged(func() ([]ovsdb.Operation, error) { return nbops.EnsurePortGroupACLs(e.c, uuid, []*nbdb.ACL{a1, a0}) })
		before := e.aclsOf("pg")

		// A changed ACL is updated in place, only in the changed columns.
		a1 = testACL("ingress/1", "outport == @pg && tcp.dst == 8080")
		a1.Log, a1.Severity, a1.Meter = true, ptr(nbdb.ACLSeverityNotice), ptr("m")
		ops, err = nbops.EnsurePortGroupACLs(e.c, uuid, []*nbdb.ACL{a0, a1})
		wantOps(t, ops, err, "update ACL")
		if len(ops[0].Row) != 4 {
			t.Errorf("update row %v, want match, log, severity and meter", ops[0].Row)
		}
		e.apply(ops, nil)
		e.converged(func() ([]ovsdb.Operation, error) { return nbops.EnsurePortGroupACLs(e.c, uuid, []*nbdb.ACL{a0, a1}) })
		after := e.aclsOf("pg")
		if after["ingress/1"].UUID != before["ingress/1"].UUID || after["ingress/1"].Match != a1.Match {
			t.Errorf("ACL replaced or not updated: %+v", after["ingress/1"])
		}

		// One no longer desired is removed and deleted.
		ops, err = nbops.EnsurePortGroupACLs(e.c, uuid, []*nbdb.ACL{a1})
		wantOps(t, ops, err, "mutate Port_Group", "delete ACL")
		e.apply(ops, nil)
		e.converged(func() ([]ovsdb.Operation, error) { return nbops.EnsurePortGroupACLs(e.c, uuid, []*nbdb.ACL{a1}) })
		if got := e.aclsOf("pg"); len(got) != 1 || got["ingress/1"] == nil {
			t.Fatalf("ACLs %v, want ingress/1 only", got)
		}
		ops, err = nbops.EnsurePortGroupACLs(e.c, uuid, nil)
		wantOps(t, ops, err, "mutate Port_Group", "delete ACL")
	})
}

func TestEnsurePortGroupACLsRemovesStrangers(t *testing.T) {
	e := memEnv(t)
	ops, uuid, err := nbops.EnsurePortGroup(e.c, &nbdb.PortGroup{Name: "pg"})
	if err != nil {
		t.Fatal(err)
	}
	// Written by someone else: an ACL without an id, and two with one id.
	stranger := &nbdb.ACL{Action: "drop", Direction: "to-lport", Priority: 1, Match: "1"}
	dup := testACL("ingress/0", "outport == @pg")
	acls, err := nbops.EnsurePortGroupACLs(e.c, uuid, []*nbdb.ACL{dup})
	if err != nil {
		t.Fatal(err)
	}
	ops = append(ops, acls...)
	for i, a := range []*nbdb.ACL{stranger, dup} {
		named := "extra" + string(rune('a'+i))
		row := ovsdb.Row{"action": a.Action, "direction": a.Direction, "priority": a.Priority, "match": a.Match}
		if a.ExternalIDs != nil {
			row["external_ids"] = ovsdb.OvsMap{GoMap: map[any]any{own.IDKey: a.ExternalIDs[own.IDKey]}}
		}
		ops = append(ops,
			ovsdb.Operation{Op: ovsdb.OperationInsert, Table: nbdb.ACLTable, UUIDName: named, Row: row},
			ovsdb.Operation{Op: ovsdb.OperationMutate, Table: nbdb.PortGroupTable,
				Where:     []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionEqual, Value: ovsdb.UUID{GoUUID: uuid}}},
				Mutations: []ovsdb.Mutation{{Column: "acls", Mutator: ovsdb.MutateOperationInsert, Value: ovsdb.OvsSet{GoSet: []any{ovsdb.UUID{GoUUID: named}}}}}})
	}
	e.apply(ops, nil)
	testenv.WaitFor(t, waitTimeout, func() error {
		if n := len(e.portGroup("pg").ACLs); n != 3 {
			return fmt.Errorf("%d ACLs, want 3", n)
		}
		return nil
	})
	ops, err = nbops.EnsurePortGroupACLs(e.c, e.portGroup("pg").UUID, []*nbdb.ACL{dup})
	wantOps(t, ops, err, "mutate Port_Group", "delete ACL", "delete ACL")
	e.apply(ops, nil)
	e.converged(func() ([]ovsdb.Operation, error) {
		return nbops.EnsurePortGroupACLs(e.c, e.portGroup("pg").UUID, []*nbdb.ACL{dup})
	})
	if n := len(e.portGroup("pg").ACLs); n != 1 {
		t.Fatalf("%d ACLs left, want 1", n)
	}
}

func TestEnsurePortGroupACLsBadInput(t *testing.T) {
	e := memEnv(t)
	_, uuid, _ := nbops.EnsurePortGroup(e.c, &nbdb.PortGroup{Name: "pg"})
	if _, err := nbops.EnsurePortGroupACLs(e.c, uuid, []*nbdb.ACL{{Match: "1"}}); err == nil {
		t.Error("ACL without id: no error")
	}
	a := testACL("x", "1")
	if _, err := nbops.EnsurePortGroupACLs(e.c, uuid, []*nbdb.ACL{a, a}); err == nil {
		t.Error("id desired twice: no error")
	}
	if _, err := nbops.EnsurePortGroupACLs(e.c, "", nil); err == nil {
		t.Error("empty group UUID: no error")
	}
}
