package nbops

import (
	"errors"
	"fmt"
	"slices"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// EnsurePortGroup owns a port group's external_ids only: its ports change
// with every pod and are mutated element by element (PortGroupAddPorts,
// PortGroupRemovePorts, PortGroupSetPorts), and its acls belong to
// EnsurePortGroupACLs, so that neither is rewritten as a whole.
func portGroupOwned() []fieldFunc[nbdb.PortGroup] {
	return []fieldFunc[nbdb.PortGroup]{func(m *nbdb.PortGroup) any { return &m.ExternalIDs }}
}

func portGroupKind() indexedKind[nbdb.PortGroup] {
	return indexedKind[nbdb.PortGroup]{
		table: nbdb.PortGroupTable, prefix: "pg", what: "port group",
		name:  func(m *nbdb.PortGroup) string { return m.Name },
		uuid:  func(m *nbdb.PortGroup) string { return m.UUID },
		probe: func(name string) *nbdb.PortGroup { return &nbdb.PortGroup{Name: name} },
		key:   portGroupKey(), owned: portGroupOwned(),
	}
}

func portGroupKey() []fieldFunc[nbdb.PortGroup] {
	return []fieldFunc[nbdb.PortGroup]{func(m *nbdb.PortGroup) any { return &m.Name }}
}

// Every ACL column is owned; identity is external_ids kovn.io/id.
func aclOwned() []fieldFunc[nbdb.ACL] {
	return []fieldFunc[nbdb.ACL]{
		func(m *nbdb.ACL) any { return &m.Action },
		func(m *nbdb.ACL) any { return &m.Direction },
		func(m *nbdb.ACL) any { return &m.ExternalIDs },
		func(m *nbdb.ACL) any { return &m.Label },
		func(m *nbdb.ACL) any { return &m.Log },
		func(m *nbdb.ACL) any { return &m.Match },
		func(m *nbdb.ACL) any { return &m.Meter },
		func(m *nbdb.ACL) any { return &m.Name },
		func(m *nbdb.ACL) any { return &m.Options },
		func(m *nbdb.ACL) any { return &m.Priority },
		func(m *nbdb.ACL) any { return &m.Severity },
	}
}

// GetPortGroup returns the cached port group named name, or an error
// wrapping ErrNotFound.
func GetPortGroup(c client.Client, name string) (*nbdb.PortGroup, error) {
	return portGroupKind().get(c, name)
}

// EnsurePortGroup makes the port group named pg.Name exist with pg's
// external_ids, and returns its UUID or the named UUID it is inserted
// under. It never writes ports or acls: pass the UUID to PortGroupSetPorts
// and EnsurePortGroupACLs, in the same op list for a new group.
func EnsurePortGroup(c client.Client, pg *nbdb.PortGroup) ([]ovsdb.Operation, string, error) {
	return portGroupKind().ensure(c, pg)
}

// DeletePortGroup deletes the port group named name; no ops when absent.
// Its ACLs go with it: ACL is not a root table and the group held the only
// (strong) reference, so OVSDB garbage-collects them in the same commit.
func DeletePortGroup(c client.Client, name string) ([]ovsdb.Operation, error) {
	return portGroupKind().delete(c, name)
}

// portGroupRow returns the cached group pgUUID, or an empty one for a
// named UUID (a group inserted by the same op list, so it has no members
// or ACLs yet).
func portGroupRow(c client.Client, pgUUID string) (*nbdb.PortGroup, error) {
	if pgUUID == "" {
		return nil, errors.New("port group: empty UUID")
	}
	if ovsdb.IsNamedUUID(pgUUID) {
		return &nbdb.PortGroup{UUID: pgUUID}, nil
	}
	pg := cached[nbdb.PortGroup](c, nbdb.PortGroupTable, pgUUID)
	if pg == nil {
		return nil, fmt.Errorf("port group %s: %w", pgUUID, ErrNotFound)
	}
	return pg, nil
}

// PortGroupAddPorts adds those of ports (logical switch port UUIDs) the
// cache says the group pgUUID lacks, with one mutate, so concurrent
// changes of other members are never overwritten. No ops when all are
// members.
func PortGroupAddPorts(c client.Client, pgUUID string, ports ...string) ([]ovsdb.Operation, error) {
	pg, err := portGroupRow(c, pgUUID)
	if err != nil {
		return nil, err
	}
	return portsMutate(pgUUID, missing(ports, pg.Ports), ovsdb.MutateOperationInsert), nil
}

// PortGroupRemovePorts removes those of ports the group holds.
func PortGroupRemovePorts(c client.Client, pgUUID string, ports ...string) ([]ovsdb.Operation, error) {
	pg, err := portGroupRow(c, pgUUID)
	if err != nil {
		return nil, err
	}
	return portsMutate(pgUUID, present(ports, pg.Ports), ovsdb.MutateOperationDelete), nil
}

// PortGroupSetPorts makes the group's ports exactly ports: one mutate
// adding the missing and one removing the extra, none when equal.
func PortGroupSetPorts(c client.Client, pgUUID string, ports []string) ([]ovsdb.Operation, error) {
	pg, err := portGroupRow(c, pgUUID)
	if err != nil {
		return nil, err
	}
	ops := portsMutate(pgUUID, missing(ports, pg.Ports), ovsdb.MutateOperationInsert)
	return append(ops, portsMutate(pgUUID, missing(pg.Ports, ports), ovsdb.MutateOperationDelete)...), nil
}

func portsMutate(pgUUID string, ports []string, mutator ovsdb.Mutator) []ovsdb.Operation {
	if len(ports) == 0 {
		return nil
	}
	return []ovsdb.Operation{mutateOp(nbdb.PortGroupTable, pgUUID, "ports", mutator, uuidSet(ports...))}
}

// missing returns the sorted, distinct elements of want not in have.
func missing(want, have []string) []string {
	in := make(map[string]bool, len(have))
	for _, h := range have {
		in[h] = true
	}
	var out []string
	for _, w := range want {
		if w != "" && !in[w] {
			out = append(out, w)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// present returns the sorted, distinct elements of want also in have.
func present(want, have []string) []string {
	in := make(map[string]bool, len(have))
	for _, h := range have {
		in[h] = true
	}
	var out []string
	for _, w := range want {
		if in[w] {
			out = append(out, w)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// EnsurePortGroupACLs makes the acls of the group pgUUID (real, or named
// by EnsurePortGroup in the same op list) exactly desired, matched by
// external_ids kovn.io/id: missing ACLs are inserted, changed ones updated
// in place (every column is owned), and the rest — other ids, no id, or a
// second ACL with one id — removed from the group and deleted. The group's
// ACLs belong to one caller. No ops when the cache already matches.
func EnsurePortGroupACLs(c client.Client, pgUUID string, desired []*nbdb.ACL) ([]ovsdb.Operation, error) {
	pg, err := portGroupRow(c, pgUUID)
	if err != nil {
		return nil, err
	}
	return ensureACLs(c, nbdb.PortGroupTable, pgUUID, pg.ACLs, desired)
}

// EnsureSwitchACLs is EnsurePortGroupACLs for the acls column of the
// logical switch lsUUID (real, or named by EnsureSwitch in the same op
// list).
func EnsureSwitchACLs(c client.Client, lsUUID string, desired []*nbdb.ACL) ([]ovsdb.Operation, error) {
	var refs []string
	if !ovsdb.IsNamedUUID(lsUUID) {
		ls := cached[nbdb.LogicalSwitch](c, nbdb.LogicalSwitchTable, lsUUID)
		if ls == nil {
			return nil, fmt.Errorf("logical switch %s: %w", lsUUID, ErrNotFound)
		}
		refs = ls.ACLs
	}
	return ensureACLs(c, nbdb.LogicalSwitchTable, lsUUID, refs, desired)
}

// ensureACLs makes the ACLs that the acls column of row parent (refs)
// holds exactly desired.
func ensureACLs(c client.Client, table, parent string, refs []string, desired []*nbdb.ACL) ([]ovsdb.Operation, error) {
	want := make(map[string]*nbdb.ACL, len(desired))
	for _, d := range desired {
		id := d.ExternalIDs[own.IDKey]
		if id == "" {
			return nil, fmt.Errorf("ACL %q: no %s in external_ids", d.Match, own.IDKey)
		}
		if _, dup := want[id]; dup {
			return nil, fmt.Errorf("ACL %s desired twice", id)
		}
		want[id] = d
	}
	current, extra := currentACLs(c, refs, want)
	var ops, updates []ovsdb.Operation
	var added []string
	for _, d := range desired {
		id := d.ExternalIDs[own.IDKey]
		cur := current[id]
		if cur == nil {
			named := namedUUID("acl", parent+"|"+id)
			op, err := insertOp(c, nbdb.ACLTable, named, d, aclOwned())
			if err != nil {
				return nil, err
			}
			ops = append(ops, op)
			added = append(added, named)
			continue
		}
		up, err := updateOps(c, nbdb.ACLTable, cur.UUID, aclOwned(), cur, d)
		if err != nil {
			return nil, err
		}
		updates = append(updates, up...)
	}
	if len(added) > 0 {
		ops = append(ops, mutateOp(table, parent, "acls", ovsdb.MutateOperationInsert, uuidSet(added...)))
	}
	ops = append(ops, updates...)
	if len(extra) > 0 {
		ops = append(ops, mutateOp(table, parent, "acls", ovsdb.MutateOperationDelete, uuidSet(extra...)))
		for _, u := range extra {
			ops = append(ops, deleteOp(nbdb.ACLTable, u))
		}
	}
	return ops, nil
}

// currentACLs picks, for each desired id, the group's ACL that is to stay:
// one already equal to the desired ACL if there is one (so a duplicate
// costs a delete, not also an update), else the first by UUID. The rest
// are extra.
func currentACLs(c client.Client, refs []string, want map[string]*nbdb.ACL) (map[string]*nbdb.ACL, []string) {
	refs = slices.Clone(refs)
	slices.Sort(refs)
	current := map[string]*nbdb.ACL{}
	var extra []string
	for _, u := range refs {
		acl := cached[nbdb.ACL](c, nbdb.ACLTable, u)
		if acl == nil || want[acl.ExternalIDs[own.IDKey]] == nil {
			extra = append(extra, u)
			continue
		}
		id := acl.ExternalIDs[own.IDKey]
		cur := current[id]
		switch {
		case cur == nil:
			current[id] = acl
		case len(changedFields(aclOwned(), cur, want[id])) > 0 && len(changedFields(aclOwned(), acl, want[id])) == 0:
			extra = append(extra, cur.UUID)
			current[id] = acl
		default:
			extra = append(extra, u)
		}
	}
	slices.Sort(extra)
	return current, extra
}
