package nbops

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
)

// Columns of Load_Balancer owned by EnsureLoadBalancer. health_check and
// ip_port_mappings belong to nobody yet.
func lbOwned() []fieldFunc[nbdb.LoadBalancer] {
	return []fieldFunc[nbdb.LoadBalancer]{
		func(m *nbdb.LoadBalancer) any { return &m.Vips },
		func(m *nbdb.LoadBalancer) any { return &m.Protocol },
		func(m *nbdb.LoadBalancer) any { return &m.Options },
		func(m *nbdb.LoadBalancer) any { return &m.ExternalIDs },
		func(m *nbdb.LoadBalancer) any { return &m.SelectionFields },
	}
}

func lbKind() rootKind[nbdb.LoadBalancer] {
	return rootKind[nbdb.LoadBalancer]{
		table: nbdb.LoadBalancerTable, prefix: "lb", what: "load balancer", fn: "EnsureLoadBalancer",
		name:  func(m *nbdb.LoadBalancer) string { return m.Name },
		uuid:  func(m *nbdb.LoadBalancer) string { return m.UUID },
		probe: func(name string) *nbdb.LoadBalancer { return &nbdb.LoadBalancer{Name: name} },
		key:   []fieldFunc[nbdb.LoadBalancer]{func(m *nbdb.LoadBalancer) any { return &m.Name }},
		owned: lbOwned(),
	}
}

// GetLoadBalancer returns the cached load balancer named name, or an error
// wrapping ErrNotFound or ErrDuplicate.
func GetLoadBalancer(c client.Client, name string) (*nbdb.LoadBalancer, error) {
	return lbKind().get(c, name)
}

// EnsureLoadBalancer makes the load balancer named lb.Name exist with lb's
// vips, protocol, options, external_ids and selection_fields (maps and sets
// compared as wholes). Load_Balancer has no schema index on name, so the
// insert is guarded like a switch's. Returns the row's UUID or the named
// UUID it is inserted under, for the membership builders below.
func EnsureLoadBalancer(c client.Client, lb *nbdb.LoadBalancer) ([]ovsdb.Operation, string, error) {
	return lbKind().ensure(c, lb)
}

// DeleteLoadBalancer removes every load balancer named name from the
// groups, switches and routers holding it and deletes it. No ops when
// there is none.
func DeleteLoadBalancer(c client.Client, name string) ([]ovsdb.Operation, error) {
	return DeleteLoadBalancers(c, name)
}

// DeleteLoadBalancers is DeleteLoadBalancer for several names, scanning
// each referring table once rather than once per load balancer.
//
// Load_Balancer is a root table and every reference to it is weak, so
// OVSDB would neither collect an unreferenced one nor refuse deleting a
// referenced one (it drops the references). The references are still
// removed explicitly: the ops then say what happens, and libovsdb's
// in-memory server, used in tests, sees the same transaction as
// ovsdb-server.
func DeleteLoadBalancers(c client.Client, names ...string) ([]ovsdb.Operation, error) {
	var uuids []string
	for _, name := range names {
		if name == "" {
			return nil, errors.New("DeleteLoadBalancer: empty name")
		}
		found, err := lbKind().named(c, name)
		if err != nil {
			return nil, err
		}
		for _, lb := range found {
			uuids = append(uuids, lb.UUID)
		}
	}
	if len(uuids) == 0 {
		return nil, nil
	}
	slices.Sort(uuids)
	uuids = slices.Compact(uuids)
	var ops []ovsdb.Operation
	ops = append(ops, unrefOps(c, nbdb.LoadBalancerGroupTable, "load_balancer", uuids,
		func(g *nbdb.LoadBalancerGroup) []string { return g.LoadBalancer })...)
	ops = append(ops, unrefOps(c, nbdb.LogicalSwitchTable, "load_balancer", uuids,
		func(ls *nbdb.LogicalSwitch) []string { return ls.LoadBalancer })...)
	ops = append(ops, unrefOps(c, nbdb.LogicalRouterTable, "load_balancer", uuids,
		func(lr *nbdb.LogicalRouter) []string { return lr.LoadBalancer })...)
	for _, u := range uuids {
		ops = append(ops, deleteOp(nbdb.LoadBalancerTable, u))
	}
	return ops, nil
}

// unrefOps removes uuids from column of every row of table holding any of
// them: one mutate per holding row. It scans the table; only deletes run it.
func unrefOps[P any](c client.Client, table, column string, uuids []string, refs func(*P) []string) []ovsdb.Operation {
	rc := c.Cache().Table(table)
	if rc == nil {
		return nil
	}
	var ops []ovsdb.Operation
	rows := rc.RowsShallow()
	for _, pu := range slices.Sorted(maps.Keys(rows)) {
		p, ok := rows[pu].(*P)
		if !ok {
			continue
		}
		if held := refChanges(refs(p), uuids, false); len(held) > 0 {
			ops = append(ops, mutateOp(table, pu, column, ovsdb.MutateOperationDelete, uuidSet(held...)))
		}
	}
	return ops
}

// refChanges returns, sorted and without duplicates, those of uuids that a
// reference set have lacks (add) or holds (remove). A named UUID is never
// held: it names a row inserted in the same transaction.
func refChanges(have, uuids []string, add bool) []string {
	held := make(map[string]bool, len(have))
	for _, u := range have {
		held[u] = true
	}
	var change []string
	for _, u := range uuids {
		if u != "" && held[u] != add {
			change = append(change, u)
		}
	}
	slices.Sort(change)
	return slices.Compact(change)
}

// refMutate is one mutate of a row's reference column, or none when the
// cache shows every change made already. Mutating rather than updating
// leaves references other writers add at the same time in place.
func refMutate(table, uuid, column string, have, uuids []string, add bool) []ovsdb.Operation {
	change := refChanges(have, uuids, add)
	if len(change) == 0 {
		return nil
	}
	mutator := ovsdb.MutateOperationInsert
	if !add {
		mutator = ovsdb.MutateOperationDelete
	}
	return []ovsdb.Operation{mutateOp(table, uuid, column, mutator, uuidSet(change...))}
}

// GetLoadBalancerGroup returns the cached group named name (a schema
// index), or an error wrapping ErrNotFound.
func GetLoadBalancerGroup(c client.Client, name string) (*nbdb.LoadBalancerGroup, error) {
	return lbGroupKind().get(c, name)
}

// Load_Balancer_Group has no external_ids in NB 7.0.0: kovn owns no column
// of it but the name, which is what marks the group as kovn's.
func lbGroupKind() indexedKind[nbdb.LoadBalancerGroup] {
	return indexedKind[nbdb.LoadBalancerGroup]{
		table: nbdb.LoadBalancerGroupTable, prefix: "lbg", what: "load balancer group",
		name:  func(m *nbdb.LoadBalancerGroup) string { return m.Name },
		uuid:  func(m *nbdb.LoadBalancerGroup) string { return m.UUID },
		probe: func(name string) *nbdb.LoadBalancerGroup { return &nbdb.LoadBalancerGroup{Name: name} },
		key:   []fieldFunc[nbdb.LoadBalancerGroup]{func(m *nbdb.LoadBalancerGroup) any { return &m.Name }},
	}
}

// EnsureLoadBalancerGroup makes the group named g.Name exist and returns
// its UUID or named UUID. In NB schema 7.0.0 the table has no external_ids
// and load_balancer belongs to LoadBalancerGroupAdd/Remove (each service
// adds its own), so an existing group needs no ops at all. The schema
// index on name makes a concurrent second insert fail rather than
// duplicate the group.
func EnsureLoadBalancerGroup(c client.Client, g *nbdb.LoadBalancerGroup) ([]ovsdb.Operation, string, error) {
	return lbGroupKind().ensure(c, g)
}

// LoadBalancerGroupAdd adds those of lbUUIDs (real, or named ones from
// EnsureLoadBalancer in the same transaction) the cache says the group
// lacks. An error wrapping ErrNotFound when the group is missing.
func LoadBalancerGroupAdd(c client.Client, groupName string, lbUUIDs ...string) ([]ovsdb.Operation, error) {
	return groupMutate(c, groupName, lbUUIDs, true)
}

// LoadBalancerGroupRemove removes those of lbUUIDs the group holds.
func LoadBalancerGroupRemove(c client.Client, groupName string, lbUUIDs ...string) ([]ovsdb.Operation, error) {
	return groupMutate(c, groupName, lbUUIDs, false)
}

func groupMutate(c client.Client, name string, uuids []string, add bool) ([]ovsdb.Operation, error) {
	g, err := GetLoadBalancerGroup(c, name)
	if err != nil {
		return nil, err
	}
	return refMutate(nbdb.LoadBalancerGroupTable, g.UUID, "load_balancer", g.LoadBalancer, uuids, add), nil
}

// SwitchLoadBalancersAdd adds load balancers to the load_balancer column
// of the switch named switchName (for rows that apply to one node only;
// cluster-wide ones go through the group). No ops when the cache shows
// them there; an error wrapping ErrNotFound when the switch is missing.
func SwitchLoadBalancersAdd(c client.Client, switchName string, lbUUIDs ...string) ([]ovsdb.Operation, error) {
	return switchLBMutate(c, switchName, lbUUIDs, true)
}

// SwitchLoadBalancersRemove removes load balancers from a switch.
func SwitchLoadBalancersRemove(c client.Client, switchName string, lbUUIDs ...string) ([]ovsdb.Operation, error) {
	return switchLBMutate(c, switchName, lbUUIDs, false)
}

func switchLBMutate(c client.Client, name string, uuids []string, add bool) ([]ovsdb.Operation, error) {
	ls, err := GetSwitch(c, name)
	if err != nil {
		return nil, err
	}
	return refMutate(nbdb.LogicalSwitchTable, ls.UUID, "load_balancer", ls.LoadBalancer, uuids, add), nil
}

// RouterLoadBalancersAdd adds load balancers to the load_balancer column
// of the router named routerName (per-node rows on a gateway router).
func RouterLoadBalancersAdd(c client.Client, routerName string, lbUUIDs ...string) ([]ovsdb.Operation, error) {
	return routerLBMutate(c, routerName, lbUUIDs, true)
}

// RouterLoadBalancersRemove removes load balancers from a router.
func RouterLoadBalancersRemove(c client.Client, routerName string, lbUUIDs ...string) ([]ovsdb.Operation, error) {
	return routerLBMutate(c, routerName, lbUUIDs, false)
}

func routerLBMutate(c client.Client, name string, uuids []string, add bool) ([]ovsdb.Operation, error) {
	lr, err := GetRouter(c, name)
	if err != nil {
		return nil, err
	}
	return refMutate(nbdb.LogicalRouterTable, lr.UUID, "load_balancer", lr.LoadBalancer, uuids, add), nil
}

// GetChassisTemplateVar returns the cached template variables of a
// chassis (a schema index), or an error wrapping ErrNotFound.
func GetChassisTemplateVar(c client.Client, chassisName string) (*nbdb.ChassisTemplateVar, error) {
	if chassisName == "" {
		return nil, errors.New("chassis template var: empty chassis")
	}
	tv := &nbdb.ChassisTemplateVar{Chassis: chassisName}
	if err := c.Get(context.Background(), tv); err != nil {
		return nil, fmt.Errorf("chassis template var %q: %w", chassisName, err)
	}
	return tv, nil
}

// EnsureChassisTemplateVar makes the chassis' row hold vars and
// externalIDs — only those keys: the row is per chassis, not per writer,
// so keys others set are left alone, and a changed value is written with
// a mutate (delete the key, insert the pair) instead of replacing the
// map. Inserts the row when the chassis has none. No ops when every key
// already has its value.
func EnsureChassisTemplateVar(c client.Client, chassisName string, vars, externalIDs map[string]string) ([]ovsdb.Operation, error) {
	cur, err := GetChassisTemplateVar(c, chassisName)
	if errors.Is(err, ErrNotFound) {
		tv := &nbdb.ChassisTemplateVar{Chassis: chassisName, Variables: vars, ExternalIDs: externalIDs}
		op, err := insertOp(c, nbdb.ChassisTemplateVarTable, namedUUID("ctv", chassisName), tv,
			[]fieldFunc[nbdb.ChassisTemplateVar]{
				func(m *nbdb.ChassisTemplateVar) any { return &m.Chassis },
				func(m *nbdb.ChassisTemplateVar) any { return &m.Variables },
				func(m *nbdb.ChassisTemplateVar) any { return &m.ExternalIDs },
			})
		if err != nil {
			return nil, err
		}
		return []ovsdb.Operation{op}, nil
	}
	if err != nil {
		return nil, err
	}
	muts := append(mapKeyMutations("variables", cur.Variables, vars), mapKeyMutations("external_ids", cur.ExternalIDs, externalIDs)...)
	if len(muts) == 0 {
		return nil, nil
	}
	return []ovsdb.Operation{{
		Op: ovsdb.OperationMutate, Table: nbdb.ChassisTemplateVarTable, Where: whereUUID(cur.UUID), Mutations: muts,
	}}, nil
}

// mapKeyMutations sets the keys of want in a map column: a delete of the
// keys whose value differs (OVSDB's insert never overwrites a key) and an
// insert of every pair that is missing or differs, applied in that order.
func mapKeyMutations(column string, have, want map[string]string) []ovsdb.Mutation {
	var stale []string
	ins := map[any]any{}
	for _, k := range slices.Sorted(maps.Keys(want)) {
		v, ok := have[k]
		if ok && v == want[k] {
			continue
		}
		if ok {
			stale = append(stale, k)
		}
		ins[k] = want[k]
	}
	var muts []ovsdb.Mutation
	if len(stale) > 0 {
		muts = append(muts, ovsdb.Mutation{Column: column, Mutator: ovsdb.MutateOperationDelete, Value: stringSet(stale)})
	}
	if len(ins) > 0 {
		muts = append(muts, ovsdb.Mutation{Column: column, Mutator: ovsdb.MutateOperationInsert, Value: ovsdb.OvsMap{GoMap: ins}})
	}
	return muts
}

// DeleteChassisTemplateVar deletes the chassis' row with all its
// variables (its owner removes it when the chassis goes); no ops when
// there is none.
func DeleteChassisTemplateVar(c client.Client, chassisName string) ([]ovsdb.Operation, error) {
	cur, err := GetChassisTemplateVar(c, chassisName)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return []ovsdb.Operation{deleteOp(nbdb.ChassisTemplateVarTable, cur.UUID)}, nil
}
