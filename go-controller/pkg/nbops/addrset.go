package nbops

import (
	"slices"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
)

// Address_Set columns owned by EnsureAddressSet: all of them but the name.
func addrSetOwned() []fieldFunc[nbdb.AddressSet] {
	return []fieldFunc[nbdb.AddressSet]{
		func(m *nbdb.AddressSet) any { return &m.Addresses },
		func(m *nbdb.AddressSet) any { return &m.ExternalIDs },
	}
}

func addrSetKind() indexedKind[nbdb.AddressSet] {
	return indexedKind[nbdb.AddressSet]{
		table: nbdb.AddressSetTable, prefix: "as", what: "address set",
		name:  func(m *nbdb.AddressSet) string { return m.Name },
		uuid:  func(m *nbdb.AddressSet) string { return m.UUID },
		probe: func(name string) *nbdb.AddressSet { return &nbdb.AddressSet{Name: name} },
		key:   addrSetKey(), owned: addrSetOwned(),
	}
}

func addrSetKey() []fieldFunc[nbdb.AddressSet] {
	return []fieldFunc[nbdb.AddressSet]{func(m *nbdb.AddressSet) any { return &m.Name }}
}

// GetAddressSet returns the cached address set named name, or an error
// wrapping ErrNotFound.
func GetAddressSet(c client.Client, name string) (*nbdb.AddressSet, error) {
	return addrSetKind().get(c, name)
}

// EnsureAddressSet makes the address set named as.Name exist with exactly
// as's addresses (compared as a set: order and duplicates do not matter)
// and external_ids. Returns its UUID or named UUID.
func EnsureAddressSet(c client.Client, as *nbdb.AddressSet) ([]ovsdb.Operation, string, error) {
	return addrSetKind().ensure(c, as)
}

// CreateAddressSet inserts as, for a set whose members several writers add
// with AddressSetAdd: the caller found it missing. Unlike EnsureAddressSet
// it never updates an existing set, which would replace the members
// others added meanwhile with as's; a set of that name that exists by the
// time the transaction commits makes OVSDB refuse it (name is indexed),
// and the caller's retry finds the set and adds to it. Returns the named
// UUID.
func CreateAddressSet(c client.Client, as *nbdb.AddressSet) ([]ovsdb.Operation, string, error) {
	return addrSetKind().create(c, as)
}

// AddressSetAdd adds those of addrs the cache says the set lacks, with one
// mutate so concurrent adds of other addresses are not overwritten. No ops
// when all are present; an error wrapping ErrNotFound when the set is
// missing (CreateAddressSet creates it).
func AddressSetAdd(c client.Client, name string, addrs ...string) ([]ovsdb.Operation, error) {
	return addrSetMutate(c, name, addrs, true)
}

// AddressSetRemove removes those of addrs the cache says the set holds.
func AddressSetRemove(c client.Client, name string, addrs ...string) ([]ovsdb.Operation, error) {
	return addrSetMutate(c, name, addrs, false)
}

func addrSetMutate(c client.Client, name string, addrs []string, add bool) ([]ovsdb.Operation, error) {
	cur, err := GetAddressSet(c, name)
	if err != nil {
		return nil, err
	}
	have := make(map[string]bool, len(cur.Addresses))
	for _, a := range cur.Addresses {
		have[a] = true
	}
	var change []string
	for _, a := range addrs {
		if have[a] != add {
			change = append(change, a)
		}
	}
	slices.Sort(change)
	change = slices.Compact(change)
	if len(change) == 0 {
		return nil, nil
	}
	mutator := ovsdb.MutateOperationInsert
	if !add {
		mutator = ovsdb.MutateOperationDelete
	}
	return []ovsdb.Operation{mutateOp(nbdb.AddressSetTable, cur.UUID, "addresses", mutator, stringSet(change))}, nil
}

// DeleteAddressSet deletes the address set named name; no ops when absent.
func DeleteAddressSet(c client.Client, name string) ([]ovsdb.Operation, error) {
	return addrSetKind().delete(c, name)
}
