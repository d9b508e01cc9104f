package nbops

import (
	"reflect"
	"regexp"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
)

func TestValuesEqual(t *testing.T) {
	one, alsoOne, two := 1, 1, 2
	for _, c := range []struct {
		a, b any
		want bool
	}{
		{map[string]string(nil), map[string]string{}, true},
		{map[string]string{"k": "v"}, map[string]string{"k": "v"}, true},
		{map[string]string{"k": "v"}, map[string]string{"k": "w"}, false},
		{map[string]string{"k": ""}, map[string]string{}, false},
		{[]string(nil), []string{}, true},
		{[]string{"a", "b"}, []string{"b", "a"}, true},
		{[]string{"a", "a"}, []string{"a"}, true},
		{[]string{"a"}, []string{"a", "b"}, false},
		{(*int)(nil), (*int)(nil), true},
		{&one, &alsoOne, true},
		{&one, &two, false},
		{&one, (*int)(nil), false},
		{"x", "x", true},
		{nbdb.NATTypeSNAT, nbdb.NATTypeDNAT, false},
	} {
		if got := valuesEqual(reflect.ValueOf(c.a), reflect.ValueOf(c.b)); got != c.want {
			t.Errorf("valuesEqual(%#v, %#v) = %v", c.a, c.b, got)
		}
		if got := valuesEqual(reflect.ValueOf(c.b), reflect.ValueOf(c.a)); got != c.want {
			t.Errorf("valuesEqual(%#v, %#v) = %v (reversed)", c.b, c.a, got)
		}
	}
}

func TestNamedUUID(t *testing.T) {
	id := regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	seen := map[string]string{}
	for _, name := range []string{"a-b", "a.b", "a_b", "ns/pod-1", "", "äöü", "7a9f3c6e-0000-4000-8000-000000000000"} {
		u := namedUUID("lsp", name)
		if !id.MatchString(u) || !ovsdb.IsNamedUUID(u) {
			t.Errorf("namedUUID(%q) = %q: not a valid OVSDB uuid-name", name, u)
		}
		if other, dup := seen[u]; dup {
			t.Errorf("namedUUID(%q) = namedUUID(%q) = %q", name, other, u)
		}
		seen[u] = name
		if namedUUID("lsp", name) != u {
			t.Errorf("namedUUID(%q) not deterministic", name)
		}
	}
	if namedUUID("ls", "x") == namedUUID("lr", "x") {
		t.Error("a switch and a router of the same name share a named UUID")
	}
}

func TestRenameNamedUUIDs(t *testing.T) {
	const real = "7a9f3c6e-0000-4000-8000-000000000000"
	ops := []ovsdb.Operation{
		{Op: ovsdb.OperationInsert, Table: "Logical_Switch_Port", UUIDName: "p", Row: ovsdb.Row{"name": "p"}},
		{
			Op: ovsdb.OperationInsert, Table: "Logical_Switch", UUIDName: "s",
			Row: ovsdb.Row{
				"ports":        ovsdb.OvsSet{GoSet: []any{ovsdb.UUID{GoUUID: "p"}, ovsdb.UUID{GoUUID: real}}},
				"copp":         ovsdb.UUID{GoUUID: "c"},
				"external_ids": ovsdb.OvsMap{GoMap: map[any]any{"k": "p"}},
			},
		},
		{
			Op: ovsdb.OperationMutate, Table: "Logical_Switch", Where: whereUUID("s"),
			Mutations: []ovsdb.Mutation{{Column: "ports", Mutator: ovsdb.MutateOperationInsert, Value: uuidSet("p")}},
		},
		{Op: ovsdb.OperationUpdate, Table: "Logical_Switch", Where: whereUUID(real), Row: ovsdb.Row{"name": "p"}},
	}
	orig := deepCopy(t, ops)
	got := renameNamedUUIDs(ops, "b1_")
	if !reflect.DeepEqual(ops, orig) {
		t.Fatal("renameNamedUUIDs changed its input")
	}
	want := deepCopy(t, ops)
	want[0].UUIDName = "b1_p"
	want[1].UUIDName = "b1_s"
	want[1].Row["ports"] = ovsdb.OvsSet{GoSet: []any{ovsdb.UUID{GoUUID: "b1_p"}, ovsdb.UUID{GoUUID: real}}}
	want[1].Row["copp"] = ovsdb.UUID{GoUUID: "b1_c"}
	want[2].Where = whereUUID("b1_s")
	want[2].Mutations[0].Value = uuidSet("b1_p")
	// Plain strings, even equal to a named UUID, and real UUIDs stay.
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("renamed:\n%#v\nwant:\n%#v", got, want)
	}
}

func deepCopy(t *testing.T, ops []ovsdb.Operation) []ovsdb.Operation {
	t.Helper()
	// renameNamedUUIDs copies everything it may change; reuse it with an
	// empty prefix as the deep copy, checked against the input above.
	return renameNamedUUIDs(ops, "")
}

func TestCacheExpectations(t *testing.T) {
	const a, b = "7a9f3c6e-0000-4000-8000-00000000000a", "7a9f3c6e-0000-4000-8000-00000000000b"
	ops := []ovsdb.Operation{
		absentGuard("Logical_Switch", "s"),
		{Op: ovsdb.OperationInsert, Table: "Logical_Switch", UUIDName: "u_s"},
		mutateOp("Logical_Switch", "u_s", "ports", ovsdb.MutateOperationInsert, uuidSet(b)),
		deleteOp("Logical_Switch_Port", b),
		deleteOp("Logical_Switch", "u_s"), // named: nothing to wait for
	}
	res := []ovsdb.OperationResult{{}, {UUID: ovsdb.UUID{GoUUID: a}}, {Count: 1}, {Count: 1}, {Count: 1}}
	got := cacheExpectations(ops, res)
	want := []rowState{{"Logical_Switch", a, true}, {"Logical_Switch_Port", b, false}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("cacheExpectations = %+v, want %+v", got, want)
	}
}
