package ovs

import (
	"maps"
	"slices"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
)

// Operations are built by hand and address rows by _uuid (a real one, or a
// named UUID for a row inserted earlier in the same transaction): libovsdb's
// model-based builders would write whole rows, and this package writes only
// the columns it owns.

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

func strMap(m map[string]string) ovsdb.OvsMap {
	om := ovsdb.OvsMap{GoMap: make(map[any]any, len(m))}
	for k, v := range m {
		om.GoMap[k] = v
	}
	return om
}

func mutateOp(table, uuid string, muts ...ovsdb.Mutation) ovsdb.Operation {
	return ovsdb.Operation{Op: ovsdb.OperationMutate, Table: table, Where: whereUUID(uuid), Mutations: muts}
}

func updateOp(table, uuid string, row ovsdb.Row) ovsdb.Operation {
	return ovsdb.Operation{Op: ovsdb.OperationUpdate, Table: table, Where: whereUUID(uuid), Row: row}
}

// deleteOp deletes explicitly even rows that garbage collection would
// remove anyway: awaitCache learns from delete ops which rows must leave
// the cache.
func deleteOp(table, uuid string) ovsdb.Operation {
	return ovsdb.Operation{Op: ovsdb.OperationDelete, Table: table, Where: whereUUID(uuid)}
}

func insertOp(table, namedUUID string, row ovsdb.Row) ovsdb.Operation {
	return ovsdb.Operation{Op: ovsdb.OperationInsert, Table: table, UUIDName: namedUUID, Row: row}
}

// mapMutations changes only the keys in set (to their values) and drop
// (removed), leaving the rest of a map column to its other writers. Nil
// when cur already agrees. A changed value is a delete then an insert,
// because OVSDB's map insert never overwrites an existing key; mutations
// of one op apply in order.
func mapMutations(column string, cur, set map[string]string, drop []string) []ovsdb.Mutation {
	var del []any
	ins := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(set)) {
		if v, ok := cur[k]; !ok || v != set[k] {
			if ok {
				del = append(del, k)
			}
			ins[k] = set[k]
		}
	}
	for _, k := range drop {
		if _, ok := cur[k]; ok && !slices.Contains(del, any(k)) {
			if _, kept := set[k]; !kept {
				del = append(del, k)
			}
		}
	}
	var muts []ovsdb.Mutation
	if len(del) > 0 {
		muts = append(muts, ovsdb.Mutation{Column: column, Mutator: ovsdb.MutateOperationDelete, Value: ovsdb.OvsSet{GoSet: del}})
	}
	if len(ins) > 0 {
		muts = append(muts, ovsdb.Mutation{Column: column, Mutator: ovsdb.MutateOperationInsert, Value: strMap(ins)})
	}
	return muts
}
