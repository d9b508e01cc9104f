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

func (e *env) addresses(name string) []string {
	e.t.Helper()
	as := &nbdb.AddressSet{Name: name}
	if err := e.c.Get(context.Background(), as); err != nil {
		e.t.Fatal(err)
	}
	slices.Sort(as.Addresses)
	return as.Addresses
}

func TestEnsureAddressSet(t *testing.T) {
	e := memEnv(t)
	want := &nbdb.AddressSet{
		Name:        "a1234",
		Addresses:   []string{"10.128.1.5", "10.128.2.7"},
		ExternalIDs: own.IDs("Namespace", "default", "v4"),
	}
	ops, uuid, err := nbops.EnsureAddressSet(e.c, want)
	wantOps(t, ops, err, "insert Address_Set")
	if !ovsdb.IsNamedUUID(uuid) {
		t.Fatalf("uuid %q", uuid)
	}
	e.apply(ops, nil)
	ops, _, err = nbops.EnsureAddressSet(e.c, want)
	wantOps(t, ops, err)

	// Order-insensitive.
	want.Addresses = []string{"10.128.2.7", "10.128.1.5"}
	ops, _, err = nbops.EnsureAddressSet(e.c, want)
	wantOps(t, ops, err)

	want.Addresses = []string{"10.128.2.7"}
	ops, _, err = nbops.EnsureAddressSet(e.c, want)
	wantOps(t, ops, err, "update Address_Set")
	if len(ops[0].Row) != 1 {
		t.Fatalf("update row %v, want addresses only", ops[0].Row)
	}
	e.apply(ops, nil)
	e.converged(func() ([]ovsdb.Operation, error) { return dropUUID(nbops.EnsureAddressSet(e.c, want)) })

	ops, err = nbops.DeleteAddressSet(e.c, want.Name)
	wantOps(t, ops, err, "delete Address_Set")
	e.apply(ops, nil)
	ops, err = nbops.DeleteAddressSet(e.c, want.Name)
	wantOps(t, ops, err)
}

func TestAddressSetAddRemove(t *testing.T) {
	e := memEnv(t)
	if _, err := nbops.AddressSetAdd(e.c, "missing", "10.0.0.1"); !errors.Is(err, nbops.ErrNotFound) {
		t.Fatalf("add to a missing set: %v, want ErrNotFound", err)
	}
	if _, err := nbops.AddressSetRemove(e.c, "missing", "10.0.0.1"); !errors.Is(err, nbops.ErrNotFound) {
		t.Fatalf("remove from a missing set: %v, want ErrNotFound", err)
	}
	ops, _, err := nbops.EnsureAddressSet(e.c, &nbdb.AddressSet{Name: "s", Addresses: []string{"10.0.0.1"}})
	e.apply(ops, err)

	// Only what is missing is added, once, however often it is asked for.
	ops, err = nbops.AddressSetAdd(e.c, "s", "10.0.0.1", "10.0.0.3", "10.0.0.2", "10.0.0.3")
	wantOps(t, ops, err, "mutate Address_Set")
	if got := ops[0].Mutations[0].Value.(ovsdb.OvsSet).GoSet; len(got) != 2 || got[0] != "10.0.0.2" || got[1] != "10.0.0.3" {
		t.Fatalf("mutation adds %v, want the two missing addresses", got)
	}
	e.apply(ops, nil)
	e.converged(func() ([]ovsdb.Operation, error) { return nbops.AddressSetAdd(e.c, "s", "10.0.0.3", "10.0.0.2") })
	ops, err = nbops.AddressSetAdd(e.c, "s")
	wantOps(t, ops, err)

	ops, err = nbops.AddressSetRemove(e.c, "s", "10.0.0.1", "10.0.0.9")
	wantOps(t, ops, err, "mutate Address_Set")
	if got := ops[0].Mutations[0].Value.(ovsdb.OvsSet).GoSet; len(got) != 1 || got[0] != "10.0.0.1" {
		t.Fatalf("mutation removes %v, want only the present address", got)
	}
	e.apply(ops, nil)
	e.converged(func() ([]ovsdb.Operation, error) { return nbops.AddressSetRemove(e.c, "s", "10.0.0.1", "10.0.0.9") })
	if got := e.addresses("s"); !slices.Equal(got, []string{"10.0.0.2", "10.0.0.3"}) {
		t.Fatalf("addresses %v", got)
	}
}

// A set several writers add members to is created with CreateAddressSet:
// a second creator whose lookup missed the first gets its insert refused,
// where EnsureAddressSet would have replaced the members.
func TestCreateAddressSetNeverReplacesMembers(t *testing.T) {
	bothDBs(t, func(t *testing.T, e *env) {
		ops, uuid, err := nbops.CreateAddressSet(e.c, &nbdb.AddressSet{Name: "s", Addresses: []string{"10.0.0.1"}})
		wantOps(t, ops, err, "insert Address_Set")
		if !ovsdb.IsNamedUUID(uuid) {
			t.Fatalf("uuid %q", uuid)
		}
		e.apply(ops, nil)

		ops, _, err = nbops.CreateAddressSet(e.c, &nbdb.AddressSet{Name: "s", Addresses: []string{"10.0.0.2"}})
		wantOps(t, ops, err, "insert Address_Set")
		err = e.tx.Transact(context.Background(), "second create", ops)
		var cv *ovsdb.ConstraintViolation
		if !errors.As(err, &cv) {
			t.Fatalf("second create: %v, want a constraint violation", err)
		}
		if got := e.addresses("s"); !slices.Equal(got, []string{"10.0.0.1"}) {
			t.Fatalf("addresses %v, want the first creator's", got)
		}
		if _, _, err := nbops.CreateAddressSet(e.c, &nbdb.AddressSet{}); err == nil {
			t.Fatal("empty name accepted")
		}
	})
}
