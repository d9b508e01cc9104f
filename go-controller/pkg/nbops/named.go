package nbops

import (
	"context"
	"errors"
	"fmt"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
)

// rootKind describes a root table kovn finds by name although the schema
// has no unique index on it (Logical_Switch, Logical_Router): inserts are
// guarded, and a second row of the same name is an error.
type rootKind[T any] struct {
	table  string
	prefix string // of named UUIDs: "ls", "lr"
	what   string // for messages: "logical switch"
	fn     string // the public builder's name, for messages
	name   func(*T) string
	uuid   func(*T) string
	probe  func(name string) *T
	key    []fieldFunc[T]
	owned  []fieldFunc[T]
}

func (k rootKind[T]) named(c client.Client, name string) ([]*T, error) {
	return byName(c, k.table, name, k.name, k.probe(name))
}

// ensure inserts want or updates the owned columns that differ, returning
// the row's UUID or the named UUID it is inserted under.
func (k rootKind[T]) ensure(c client.Client, want *T) ([]ovsdb.Operation, string, error) {
	name := k.name(want)
	if name == "" {
		return nil, "", errors.New(k.fn + ": empty name")
	}
	found, err := k.named(c, name)
	if err != nil {
		return nil, "", err
	}
	switch len(found) {
	case 0:
		named := namedUUID(k.prefix, name)
		op, err := insertOp(c, k.table, named, want, k.key, k.owned)
		if err != nil {
			return nil, "", err
		}
		return []ovsdb.Operation{absentGuard(k.table, name), op}, named, nil
	case 1:
		cur := found[0]
		ops, err := updateOps(c, k.table, k.uuid(cur), k.owned, cur, want)
		return ops, k.uuid(cur), err
	default:
		return nil, "", fmt.Errorf("%s %q: %d rows: %w", k.what, name, len(found), ErrDuplicate)
	}
}

// delete deletes every row of that name; no ops when there is none.
func (k rootKind[T]) delete(c client.Client, fn, name string) ([]ovsdb.Operation, error) {
	if name == "" {
		return nil, errors.New(fn + ": empty name")
	}
	found, err := k.named(c, name)
	if err != nil {
		return nil, err
	}
	var ops []ovsdb.Operation
	for _, m := range found {
		ops = append(ops, deleteOp(k.table, k.uuid(m)))
	}
	return ops, nil
}

// get returns the only row of that name.
func (k rootKind[T]) get(c client.Client, name string) (*T, error) {
	found, err := k.named(c, name)
	if err != nil {
		return nil, err
	}
	return onlyOne(found, k.table, name)
}

// memberKind describes a row with a unique name index that belongs to one
// parent through the parent's "ports" column (switch and router ports).
type memberKind[T any, P any] struct {
	table       string
	parentTable string
	prefix      string // of named UUIDs: "lsp", "lrp"
	what        string // for messages: "port", "router port"
	fn          string
	name        func(*T) string
	uuid        func(*T) string
	probe       func(name string) *T
	key         []fieldFunc[T]
	owned       []fieldFunc[T]
	refs        func(*P) []string
}

// lookup reads the row by its indexed name; nil when there is none.
func (k memberKind[T, P]) lookup(c client.Client, name string) (*T, error) {
	cur := k.probe(name)
	err := c.Get(context.Background(), any(cur).(model.Model))
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up %s %q: %w", k.what, name, err)
	}
	return cur, nil
}

// ensure inserts want as a member of parentUUID (real or named), or
// updates its owned columns and moves it there from another parent.
func (k memberKind[T, P]) ensure(c client.Client, parentUUID string, want *T) ([]ovsdb.Operation, string, error) {
	name := k.name(want)
	if name == "" {
		return nil, "", errors.New(k.fn + ": empty name")
	}
	cur, err := k.lookup(c, name)
	if err != nil {
		return nil, "", err
	}
	if cur == nil {
		named := namedUUID(k.prefix, name)
		op, err := insertOp(c, k.table, named, want, k.key, k.owned)
		if err != nil {
			return nil, "", err
		}
		member, err := memberOps(c, k.parentTable, "ports", parentUUID, named, true, k.refs)
		if err != nil {
			return nil, "", fmt.Errorf("%s %q: %w", k.what, name, err)
		}
		return append([]ovsdb.Operation{op}, member...), named, nil
	}
	ops, err := updateOps(c, k.table, k.uuid(cur), k.owned, cur, want)
	if err != nil {
		return nil, "", err
	}
	member, err := memberOps(c, k.parentTable, "ports", parentUUID, k.uuid(cur), false, k.refs)
	if err != nil {
		return nil, "", fmt.Errorf("%s %q: %w", k.what, name, err)
	}
	return append(ops, member...), k.uuid(cur), nil
}

// delete unlinks the row from whichever parent holds it and deletes it;
// no ops when it does not exist.
func (k memberKind[T, P]) delete(c client.Client, fn, name string) ([]ovsdb.Operation, error) {
	if name == "" {
		return nil, errors.New(fn + ": empty name")
	}
	cur, err := k.lookup(c, name)
	if err != nil || cur == nil {
		return nil, err
	}
	return unlinkOps(c, k.parentTable, "ports", k.table, k.uuid(cur), k.refs), nil
}

// indexedKind describes a root table whose name has a schema index
// (Address_Set, Port_Group, Load_Balancer_Group): OVSDB itself refuses a
// second row of a name, so inserts need no guard and lookups are exact.
type indexedKind[T any] struct {
	table  string
	prefix string // of named UUIDs: "as", "pg", "lbg"
	what   string // for messages: "address set"
	name   func(*T) string
	uuid   func(*T) string
	probe  func(name string) *T
	key    []fieldFunc[T]
	owned  []fieldFunc[T]
}

// get returns the cached row named name, or an error wrapping ErrNotFound.
func (k indexedKind[T]) get(c client.Client, name string) (*T, error) {
	if name == "" {
		return nil, errors.New(k.what + ": empty name")
	}
	cur := k.probe(name)
	if err := c.Get(context.Background(), any(cur).(model.Model)); err != nil {
		return nil, fmt.Errorf("%s %q: %w", k.what, name, err)
	}
	return cur, nil
}

// ensure inserts want or updates its owned columns that differ, returning
// the row's UUID or the named UUID it is inserted under.
func (k indexedKind[T]) ensure(c client.Client, want *T) ([]ovsdb.Operation, string, error) {
	cur, err := k.get(c, k.name(want))
	if errors.Is(err, ErrNotFound) {
		return k.create(c, want)
	}
	if err != nil {
		return nil, "", err
	}
	ops, err := updateOps(c, k.table, k.uuid(cur), k.owned, cur, want)
	return ops, k.uuid(cur), err
}

// create inserts want without looking at the cache, returning the named
// UUID it is inserted under. If a row of that name exists when the
// transaction commits, the schema index refuses it.
func (k indexedKind[T]) create(c client.Client, want *T) ([]ovsdb.Operation, string, error) {
	name := k.name(want)
	if name == "" {
		return nil, "", errors.New(k.what + ": empty name")
	}
	named := namedUUID(k.prefix, name)
	op, err := insertOp(c, k.table, named, want, k.key, k.owned)
	if err != nil {
		return nil, "", err
	}
	return []ovsdb.Operation{op}, named, nil
}

// delete deletes the row named name; no ops when there is none.
func (k indexedKind[T]) delete(c client.Client, name string) ([]ovsdb.Operation, error) {
	cur, err := k.get(c, name)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return []ovsdb.Operation{deleteOp(k.table, k.uuid(cur))}, nil
}
