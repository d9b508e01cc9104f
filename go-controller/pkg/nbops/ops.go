package nbops

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
)

var (
	// ErrNotFound is libovsdb's own, so errors.Is matches both ours and
	// those libovsdb returns from Get.
	ErrNotFound = client.ErrNotFound
	// ErrDuplicate means several rows share a name that kovn treats as
	// unique but the schema does not index (Logical_Switch,
	// Logical_Router); a builder cannot know which one is meant.
	ErrDuplicate = errors.New("several rows with the same name")
)

// Every hand-built operation addresses rows by _uuid. A named UUID works
// there too (OVSDB resolves it within the transaction), which is how
// EnsureSwitchPort adds a port to a switch EnsureSwitch inserts in the same
// transaction. Hand-building also avoids libovsdb's Where(model), which on
// a cache miss falls through to client indexes and may match other rows.
func whereUUID(uuid string) []ovsdb.Condition {
	return []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionEqual, Value: ovsdb.UUID{GoUUID: uuid}}}
}

func uuidSet(uuids ...string) ovsdb.OvsSet {
	s := ovsdb.OvsSet{GoSet: make([]any, len(uuids))}
	for i, u := range uuids {
		s.GoSet[i] = ovsdb.UUID{GoUUID: u}
	}
	return s
}

func stringSet(vals []string) ovsdb.OvsSet {
	s := ovsdb.OvsSet{GoSet: make([]any, len(vals))}
	for i, v := range vals {
		s.GoSet[i] = v
	}
	return s
}

func mutateOp(table, uuid, column string, mutator ovsdb.Mutator, value ovsdb.OvsSet) ovsdb.Operation {
	return ovsdb.Operation{
		Op:        ovsdb.OperationMutate,
		Table:     table,
		Where:     whereUUID(uuid),
		Mutations: []ovsdb.Mutation{{Column: column, Mutator: mutator, Value: value}},
	}
}

// deleteOp deletes a row explicitly even where removing its last reference
// would garbage-collect it: the Transactor learns from delete ops which
// rows must leave its cache before it reports success.
func deleteOp(table, uuid string) ovsdb.Operation {
	return ovsdb.Operation{Op: ovsdb.OperationDelete, Table: table, Where: whereUUID(uuid)}
}

// absentGuard makes the transaction fail unless, at this point of it, no
// row of table is named name; put before an insert, the two are atomic. Logical_Switch and Logical_Router have no schema
// index on name, so without it a stale cache or a concurrent writer would
// silently create a second row with the same name.
func absentGuard(table, name string) ovsdb.Operation {
	timeout := 0
	return ovsdb.Operation{
		Op:      ovsdb.OperationWait,
		Table:   table,
		Timeout: &timeout,
		Where:   []ovsdb.Condition{{Column: "name", Function: ovsdb.ConditionEqual, Value: name}},
		Columns: []string{"name"},
		Until:   string(ovsdb.WaitConditionNotEqual),
		Rows:    []ovsdb.Row{{"name": name}},
	}
}

// insertOp inserts only the given columns of m, under a named UUID.
func insertOp[T any](c client.Client, table, named string, m *T, cols ...[]fieldFunc[T]) (ovsdb.Operation, error) {
	row, err := newRow(c, project(m, cols...))
	if err != nil {
		return ovsdb.Operation{}, fmt.Errorf("insert %s: %w", table, err)
	}
	return ovsdb.Operation{Op: ovsdb.OperationInsert, Table: table, Row: row, UUIDName: named}, nil
}

// updateOps returns one update of the owned columns that differ, or none.
func updateOps[T any](c client.Client, table, uuid string, owned []fieldFunc[T], cur, want *T) ([]ovsdb.Operation, error) {
	changed := changedFields(owned, cur, want)
	if len(changed) == 0 {
		return nil, nil
	}
	row, err := newRow(c, want, changed...)
	if err != nil {
		return nil, fmt.Errorf("update %s %s: %w", table, uuid, err)
	}
	return []ovsdb.Operation{{Op: ovsdb.OperationUpdate, Table: table, Row: row, Where: whereUUID(uuid)}}, nil
}

// newRow maps a model to an OVSDB row: with fields, exactly those columns
// (even if empty, which is how a column is cleared); without, every
// non-default column.
func newRow(c client.Client, m model.Model, fields ...any) (ovsdb.Row, error) {
	info, err := c.Cache().DatabaseModel().NewModelInfo(m)
	if err != nil {
		return nil, err
	}
	row, err := c.Cache().Mapper().NewRow(info, fields...)
	if err != nil {
		return nil, err
	}
	delete(row, "_uuid")
	return row, nil
}

// cached returns the cached row of table with this UUID, or nil.
func cached[T any](c client.Client, table, uuid string) *T {
	rc := c.Cache().Table(table)
	if rc == nil {
		return nil
	}
	m, _ := rc.Row(uuid).(*T)
	return m
}

// byName finds the rows of a table without a schema index on name. With
// the client index from ClientDBModel this is a map lookup; a client built
// without it still gets a correct (linear) answer. Results are re-checked
// because libovsdb may answer from another index on a miss.
func byName[T any](c client.Client, table, name string, nameOf func(*T) string, probe *T) ([]*T, error) {
	if name == "" {
		return nil, fmt.Errorf("look up %s: empty name", table)
	}
	var found []*T
	var err error
	if hasNameIndex(c, table) {
		err = c.Where(probe).List(context.Background(), &found)
	} else {
		err = c.WhereCache(func(m *T) bool { return nameOf(m) == name }).List(context.Background(), &found)
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("look up %s %q: %w", table, name, err)
	}
	found = slices.DeleteFunc(found, func(m *T) bool { return nameOf(m) != name })
	return found, nil
}

func onlyOne[T any](found []*T, table, name string) (*T, error) {
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("%s %q: %w", table, name, ErrNotFound)
	case 1:
		return found[0], nil
	}
	return nil, fmt.Errorf("%s %q: %d rows: %w", table, name, len(found), ErrDuplicate)
}

func hasNameIndex(c client.Client, table string) bool {
	for _, idx := range c.Cache().DatabaseModel().Client().Indexes(table) {
		if len(idx.Columns) == 1 && idx.Columns[0].Column == "name" && idx.Columns[0].Key == nil {
			return true
		}
	}
	return false
}

// holders returns the UUIDs of the rows of parentTable whose reference set
// (refs) contains uuid, skipping except. It scans the table: OVSDB has no
// reverse references, and it only runs when a row must be moved or
// deleted, never on the converged path.
func holders[P any](c client.Client, parentTable, uuid, except string, refs func(*P) []string) []string {
	rc := c.Cache().Table(parentTable)
	if rc == nil {
		return nil
	}
	var out []string
	for pu, m := range rc.RowsShallow() {
		if p, ok := m.(*P); ok && pu != except && slices.Contains(refs(p), uuid) {
			out = append(out, pu)
		}
	}
	slices.Sort(out)
	return out
}

// memberOps makes the row uuid a member of parent's refs column: nothing
// when the cache shows it is one, otherwise a mutate-insert there and a
// mutate-delete from every other parent holding it (a move). A named
// parentUUID is a row inserted earlier in the same transaction.
func memberOps[P any](c client.Client, parentTable, column, parentUUID, uuid string, isNew bool, refs func(*P) []string) ([]ovsdb.Operation, error) {
	if parentUUID == "" {
		return nil, fmt.Errorf("%s: empty parent UUID", parentTable)
	}
	member := false
	if !ovsdb.IsNamedUUID(parentUUID) {
		p := cached[P](c, parentTable, parentUUID)
		if p == nil {
			return nil, fmt.Errorf("%s %s: %w", parentTable, parentUUID, ErrNotFound)
		}
		member = slices.Contains(refs(p), uuid)
	}
	if member {
		return nil, nil
	}
	var ops []ovsdb.Operation
	if !isNew {
		// Only scanned when the row is not where it belongs, so the
		// converged path stays a map lookup.
		for _, old := range holders(c, parentTable, uuid, parentUUID, refs) {
			ops = append(ops, mutateOp(parentTable, old, column, ovsdb.MutateOperationDelete, uuidSet(uuid)))
		}
	}
	return append(ops, mutateOp(parentTable, parentUUID, column, ovsdb.MutateOperationInsert, uuidSet(uuid))), nil
}

// unlinkOps removes the row uuid from every parent holding it and deletes
// it; the explicit delete is redundant for OVSDB's garbage collection but
// tells the Transactor what to wait for.
func unlinkOps[P any](c client.Client, parentTable, column, table, uuid string, refs func(*P) []string) []ovsdb.Operation {
	var ops []ovsdb.Operation
	for _, p := range holders(c, parentTable, uuid, "", refs) {
		ops = append(ops, mutateOp(parentTable, p, column, ovsdb.MutateOperationDelete, uuidSet(uuid)))
	}
	return append(ops, deleteOp(table, uuid))
}
