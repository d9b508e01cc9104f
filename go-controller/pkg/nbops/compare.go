package nbops

import (
	"fmt"
	"hash/fnv"
	"reflect"
	"strings"
)

// valuesEqual compares two column values the way OVSDB sees them, not the
// way Go does: every slice in a model is an OVSDB set (so order and
// duplicates do not matter), a nil map or slice is the same empty column as
// an empty one, and an optional column (a pointer) is equal when both are
// absent or both hold equal values.
func valuesEqual(a, b reflect.Value) bool {
	switch a.Kind() {
	case reflect.Map:
		if a.Len() != b.Len() {
			return false
		}
		it := a.MapRange()
		for it.Next() {
			bv := b.MapIndex(it.Key())
			if !bv.IsValid() || !valuesEqual(it.Value(), bv) {
				return false
			}
		}
		return true
	case reflect.Slice:
		return setOf(a).equal(setOf(b))
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return valuesEqual(a.Elem(), b.Elem())
	default:
		return a.Interface() == b.Interface()
	}
}

type set map[any]struct{}

func setOf(v reflect.Value) set {
	s := make(set, v.Len())
	for i := 0; i < v.Len(); i++ {
		s[v.Index(i).Interface()] = struct{}{}
	}
	return s
}

func (s set) equal(o set) bool {
	if len(s) != len(o) {
		return false
	}
	for k := range s {
		if _, ok := o[k]; !ok {
			return false
		}
	}
	return true
}

// fieldFunc returns a pointer to one column's field of a model. Builders
// describe the columns they own as a list of these, so comparing,
// projecting and naming columns for libovsdb's mapper all share one list.
type fieldFunc[T any] func(*T) any

// changedFields returns pointers into want for every column in cols whose
// value differs from cur; libovsdb's mapper turns them into an update row
// holding exactly those columns.
func changedFields[T any](cols []fieldFunc[T], cur, want *T) []any {
	var changed []any
	for _, f := range cols {
		if !valuesEqual(reflect.ValueOf(f(cur)).Elem(), reflect.ValueOf(f(want)).Elem()) {
			changed = append(changed, f(want))
		}
	}
	return changed
}

// project copies only the listed columns of src into a new model, so an
// insert never writes a column the builder does not own (for example the
// ports of a switch, which EnsureSwitchPort manages).
func project[T any](src *T, cols ...[]fieldFunc[T]) *T {
	dst := new(T)
	for _, list := range cols {
		for _, f := range list {
			reflect.ValueOf(f(dst)).Elem().Set(reflect.ValueOf(f(src)).Elem())
		}
	}
	return dst
}

// namedUUID returns the named UUID a builder uses for a row it inserts. It
// is deterministic (the same desired state always yields the same ops) and
// unique per kind and name within one transaction: the hash keeps names
// that sanitize alike ("a-b", "a.b") apart. OVSDB only accepts
// [A-Za-z_][A-Za-z0-9_]* here, and the "u_" prefix keeps it from ever
// looking like a real UUID.
func namedUUID(kind, name string) string {
	var b strings.Builder
	b.WriteString("u_")
	b.WriteString(kind)
	b.WriteByte('_')
	for i, r := range name {
		if i >= 40 {
			break
		}
		if r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	fmt.Fprintf(&b, "_%016x", h.Sum64())
	return b.String()
}

// containsAll reports whether m holds every key/value of sub.
func containsAll(m, sub map[string]string) bool {
	for k, v := range sub {
		if mv, ok := m[k]; !ok || mv != v {
			return false
		}
	}
	return true
}
