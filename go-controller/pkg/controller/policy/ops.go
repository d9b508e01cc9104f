package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// errPending: a shared row this sync needs is being inserted or deleted by
// another sync's transaction; building on the cache now would insert it a
// second time or change a row about to go. A policy sync waits for that
// transaction (index.settled) and builds again.
var errPending = errors.New("a shared row is being created or deleted by another sync")

// build collects one sync's ops; its methods run with the index locked.
type build struct {
	x  *index
	nb client.Client
	// ops go out in one transaction.
	ops []ovsdb.Operation
	// marks are the shared rows ops insert or delete (in x.pending until
	// the transaction ends); orphans the orphan address sets it deletes.
	marks, orphans []string
	// resync: policies to sync (fully) next; onFailure: policies to sync
	// if the transaction fails, since a failed incremental change is
	// not retried as such.
	resync, onFailure map[string]bool
}

func (x *index) newBuild(nb client.Client) *build {
	return &build{x: x, nb: nb, resync: map[string]bool{}, onFailure: map[string]bool{}}
}

func (b *build) add(ops []ovsdb.Operation, err error) error {
	b.ops = append(b.ops, ops...)
	return err
}

func (b *build) mark(name string) {
	b.marks = append(b.marks, name)
	b.x.pending[name]++
}

// finish ends a build once its transaction (if any) is over; with the
// index locked.
func (x *index) finish(b *build, committed bool) {
	freed := false
	for _, m := range b.marks {
		if x.pending[m]--; x.pending[m] <= 0 {
			delete(x.pending, m)
			freed = true
		}
	}
	if freed {
		close(x.settled)
		x.settled = make(chan struct{})
	}
	b.marks = nil
	if committed {
		for _, o := range b.orphans {
			delete(x.orphans, o)
		}
	}
}

// policy builds everything one policy owns or shares, level-triggered
// from the index: its port group, members and ACLs, its selectors'
// address sets, its namespace's isolation groups, and pending deletes of
// orphan address sets. A policy that is gone loses its port group (and
// with it its ACLs).
func (b *build) policy(key, ns, name string) error {
	if err := b.orphanDeletes(); err != nil {
		return err
	}
	pe := b.x.policies[key]
	pgName := own.PolicyPortGroup(ns, name)
	if pe == nil {
		if err := b.add(nbops.DeletePortGroup(b.nb, pgName)); err != nil {
			return err
		}
		return b.isolation(ns)
	}
	addrSets := map[string]string{}
	for _, s := range pe.c.Selectors() {
		se := b.x.selectors[s.Key]
		if err := b.selectorSet(se); err != nil {
			return err
		}
		addrSets[s.Key] = se.asName
	}
	acls := PolicyACLs(pe.c, Inputs{AddressSets: addrSets, NamedPorts: b.x.namedPorts(pe), Logging: b.x.logging(ns)})
	ops, uuid, err := nbops.EnsurePortGroup(b.nb, &nbdb.PortGroup{Name: pgName, ExternalIDs: own.IDs(own.KindNetworkPolicy, key, "")})
	if err := b.add(ops, err); err != nil {
		return err
	}
	var ports []string
	for pk := range pe.members {
		if p := b.x.pods[pk]; p != nil && p.lsp != "" {
			ports = append(ports, p.lsp)
		}
	}
	if err := b.add(nbops.PortGroupSetPorts(b.nb, uuid, ports)); err != nil {
		return err
	}
	if err := b.add(nbops.EnsurePortGroupACLs(b.nb, uuid, acls)); err != nil {
		return err
	}
	return b.isolation(ns)
}

// orphanDeletes deletes the address sets no selector uses any more,
// unless another sync is already on them.
func (b *build) orphanDeletes() error {
	for _, name := range sortedKeys(b.x.orphans) {
		if b.x.pending[name] > 0 {
			continue
		}
		ops, err := nbops.DeleteAddressSet(b.nb, name)
		if err != nil {
			return err
		}
		if len(ops) == 0 {
			delete(b.x.orphans, name)
			continue
		}
		b.ops = append(b.ops, ops...)
		b.mark(name)
		b.orphans = append(b.orphans, name)
	}
	return nil
}

// selectorSet makes a selector's address set hold exactly its members.
func (b *build) selectorSet(se *selEntry) error {
	if b.x.pending[se.asName] > 0 {
		return fmt.Errorf("address set %s: %w", se.asName, errPending)
	}
	ids := own.IDs(own.KindPolicySelector, own.SelectorHash(se.Key), se.Key)
	ops, inserted, err := addressSetExactly(b.nb, se.asName, se.addresses(), ids)
	if inserted {
		b.mark(se.asName)
	}
	return b.add(ops, err)
}

// addressSetExactly inserts the set with want, or mutates the existing
// one: adding what it lacks, removing what it has beyond want.
func addressSetExactly(nb client.Client, name string, want []string, ids map[string]string) ([]ovsdb.Operation, bool, error) {
	cur, err := nbops.GetAddressSet(nb, name)
	if errors.Is(err, nbops.ErrNotFound) {
		ops, _, err := nbops.EnsureAddressSet(nb, &nbdb.AddressSet{Name: name, Addresses: want, ExternalIDs: ids})
		return ops, true, err
	}
	if err != nil {
		return nil, false, err
	}
	keep := make(map[string]bool, len(want))
	for _, a := range want {
		keep[a] = true
	}
	var extra []string
	for _, a := range cur.Addresses {
		if !keep[a] {
			extra = append(extra, a)
		}
	}
	ops, err := nbops.AddressSetAdd(nb, name, want...)
	if err != nil {
		return nil, false, err
	}
	rm, err := nbops.AddressSetRemove(nb, name, extra...)
	return append(ops, rm...), false, err
}

// isolation makes ns's isolation groups exist exactly while a policy of
// ns isolates in their direction, with the isolated pods and the
// default-deny ACLs.
func (b *build) isolation(ns string) error {
	for _, dir := range []Direction{Ingress, Egress} {
		name := own.IsolationPortGroup(ns, string(dir))
		if b.x.pending[name] > 0 {
			return fmt.Errorf("port group %s: %w", name, errPending)
		}
		if !b.x.hasDirection(ns, dir) {
			ops, err := nbops.DeletePortGroup(b.nb, name)
			if len(ops) > 0 {
				b.mark(name)
			}
			if err := b.add(ops, err); err != nil {
				return err
			}
			continue
		}
		ops, uuid, err := nbops.EnsurePortGroup(b.nb, &nbdb.PortGroup{Name: name, ExternalIDs: own.IDs(own.KindPolicyIsolation, ns, string(dir))})
		if err := b.add(ops, err); err != nil {
			return err
		}
		if ovsdb.IsNamedUUID(uuid) {
			b.mark(name)
		}
		if err := b.add(nbops.PortGroupSetPorts(b.nb, uuid, b.x.isolatedPorts(ns, dir))); err != nil {
			return err
		}
		if err := b.add(nbops.EnsurePortGroupACLs(b.nb, uuid, IsolationACLs(ns, dir, b.x.logging(ns)))); err != nil {
			return err
		}
	}
	return nil
}

// change builds the element-wise mutations for what one pod or namespace
// update touched. A row not in NB yet (or in flight) is left to a full
// sync of a policy using it, which the index already includes the change in.
func (b *build) change(ch *change, podKey string) error {
	for _, sk := range sortedKeys(ch.sels) {
		if err := b.selectorChange(b.x.selectors[sk], ch.sels[sk]); err != nil {
			return err
		}
	}
	p := b.x.pods[podKey]
	for _, pk := range sortedKeys(ch.pgs) {
		pe := b.x.policies[pk]
		b.onFailure[pk] = true
		want := func(lsp string) bool { return p != nil && p.lsp == lsp && pe.members[podKey] }
		if err := b.portChange(own.PolicyPortGroup(pe.c.Namespace, pe.c.Name), ch.pgs[pk], want, pk); err != nil {
			return err
		}
	}
	for _, dir := range []Direction{Ingress, Egress} {
		ports, ok := ch.iso[dir]
		owner := b.x.anyPolicy(ch.ns, dir)
		if !ok || owner == "" {
			continue
		}
		b.onFailure[owner] = true
		want := func(lsp string) bool { return p != nil && p.lsp == lsp && p.isolated(dir) }
		if err := b.portChange(own.IsolationPortGroup(ch.ns, string(dir)), ports, want, owner); err != nil {
			return err
		}
	}
	for pk := range ch.resync {
		b.resync[pk] = true
	}
	return nil
}

func (b *build) selectorChange(se *selEntry, ips []netip.Addr) error {
	for u := range se.users {
		b.onFailure[u] = true
	}
	if b.x.pending[se.asName] > 0 {
		b.resyncAll(se.users)
		return nil
	}
	var add, rm []string
	for _, ip := range ips {
		if se.has(ip) {
			add = append(add, ip.String())
		} else {
			rm = append(rm, ip.String())
		}
	}
	ops, err := nbops.AddressSetAdd(b.nb, se.asName, add...)
	if errors.Is(err, nbops.ErrNotFound) {
		b.resyncAll(se.users)
		return nil
	}
	if err := b.add(ops, err); err != nil {
		return err
	}
	return b.add(nbops.AddressSetRemove(b.nb, se.asName, rm...))
}

// portChange adds or removes the given ports of group name as want says;
// a missing or in-flight group is left to owner's full sync.
func (b *build) portChange(name string, ports []string, want func(string) bool, owner string) error {
	pg, err := nbops.GetPortGroup(b.nb, name)
	if errors.Is(err, nbops.ErrNotFound) || b.x.pending[name] > 0 {
		b.resync[owner] = true
		return nil
	}
	if err != nil {
		return err
	}
	var add, rm []string
	for _, lsp := range ports {
		if want(lsp) {
			add = append(add, lsp)
		} else {
			rm = append(rm, lsp)
		}
	}
	if err := b.add(nbops.PortGroupAddPorts(b.nb, pg.UUID, add...)); err != nil {
		return err
	}
	return b.add(nbops.PortGroupRemovePorts(b.nb, pg.UUID, rm...))
}

func (b *build) resyncAll(keys map[string]bool) {
	for k := range keys {
		b.resync[k] = true
	}
}

// anyPolicy names one policy of ns isolating in dir; a full sync of any
// of them programs ns's isolation group.
func (x *index) anyPolicy(ns string, dir Direction) string {
	var keys []string
	for k, pe := range x.policiesByNS[ns] {
		if (dir == Ingress && pe.c.Ingress) || (dir == Egress && pe.c.Egress) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return ""
	}
	return slices.Min(keys)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
