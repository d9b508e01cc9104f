package nbops

import (
	"context"
	"errors"
	"fmt"
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

func addrSetKey() []fieldFunc[nbdb.AddressSet] {
	return []fieldFunc[nbdb.AddressSet]{func(m *nbdb.AddressSet) any { return &m.Name }}
}

// GetAddressSet returns the cached address set named name, or an error
// wrapping ErrNotFound.
func GetAddressSet(c client.Client, name string) (*nbdb.AddressSet, error) {
	if name == "" {
		return nil, errors.New("address set: empty name")
	}
	as := &nbdb.AddressSet{Name: name}
	if err := c.Get(context.Background(), as); err != nil {
		return nil, fmt.Errorf("address set %q: %w", name, err)
	}
	return as, nil
}

// EnsureAddressSet makes the address set named as.Name exist with exactly
// as's addresses (compared as a set: order and duplicates do not matter)
// and external_ids. Returns its UUID or named UUID.
func EnsureAddressSet(c client.Client, as *nbdb.AddressSet) ([]ovsdb.Operation, string, error) {
	cur, err := GetAddressSet(c, as.Name)
	if errors.Is(err, ErrNotFound) {
		named := namedUUID("as", as.Name)
		op, err := insertOp(c, nbdb.AddressSetTable, named, as, addrSetKey(), addrSetOwned())
		if err != nil {
			return nil, "", err
		}
		return []ovsdb.Operation{op}, named, nil
	}
	if err != nil {
		return nil, "", err
	}
	ops, err := updateOps(c, nbdb.AddressSetTable, cur.UUID, addrSetOwned(), cur, as)
	return ops, cur.UUID, err
}

// AddressSetAdd adds those of addrs the cache says the set lacks, with one
// mutate so concurrent adds of other addresses are not overwritten. No ops
// when all are present; an error wrapping ErrNotFound when the set is
// missing (EnsureAddressSet creates it).
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
	cur, err := GetAddressSet(c, name)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return []ovsdb.Operation{deleteOp(nbdb.AddressSetTable, cur.UUID)}, nil
}
