package ipam

import (
	"fmt"
	"net/netip"
	"sync"
)

// IPAllocator hands out the addresses of one subnet to owners. It never
// hands out the network address, the IPv4 broadcast address, excluded
// addresses, or anything outside its pool. Safe for concurrent use.
//
// Addresses are given out in ascending order starting after the previous
// allocation and wrapping, so a released address is normally reused only
// once the rest of the pool has been cycled through, and the most recently
// released one is skipped while any other is free (see the package
// comment). A fresh allocator, e.g. after a controller restart, starts at
// the bottom of the pool.
type IPAllocator struct {
	// Immutable after construction.
	subnet   netip.Prefix
	first    netip.Addr // pool bounds; first is index 0
	last     netip.Addr
	base     u128
	is4      bool
	excluded []Range // as given, for error messages
	desc     string

	mu sync.Mutex
	p  *pool
}

// NewIPAllocator manages every host address of subnet except those in
// exclude; kovn passes GatewayIP and ManagementIP here.
func NewIPAllocator(subnet netip.Prefix, exclude ...netip.Addr) (*IPAllocator, error) {
	if err := checkPrefix(subnet); err != nil {
		return nil, fmt.Errorf("ipam: new IP allocator: %w", err)
	}
	ranges := make([]Range, len(exclude))
	for i, a := range exclude {
		ranges[i] = Range{a, a}
	}
	return NewIPAllocatorRange(subnet, subnet.Addr(), lastAddr(subnet), ranges...)
}

// NewIPAllocatorRange manages only first..last (inclusive) of subnet, for
// underlay networks where the rest of the physical subnet belongs to
// someone else. Network and broadcast addresses are skipped even if the
// range covers them. Every excluded range must lie inside subnet: one that
// does not is a configuration mistake, not something to ignore.
func NewIPAllocatorRange(subnet netip.Prefix, first, last netip.Addr, exclude ...Range) (*IPAllocator, error) {
	if err := checkPrefix(subnet); err != nil {
		return nil, fmt.Errorf("ipam: new IP allocator: %w", err)
	}
	fail := func(format string, args ...any) (*IPAllocator, error) {
		return nil, fmt.Errorf("ipam: new IP allocator for %v: %s", subnet, fmt.Sprintf(format, args...))
	}
	pr := Range{first.Unmap(), last.Unmap()}
	if err := pr.check(); err != nil {
		return fail("pool: %v", err)
	}
	if !subnet.Contains(pr.First) || !subnet.Contains(pr.Last) {
		return fail("pool %v is not inside the subnet", pr)
	}
	a := &IPAllocator{
		subnet: subnet,
		first:  pr.First,
		last:   pr.Last,
		base:   addrU128(pr.First),
		is4:    subnet.Addr().Is4(),
		desc:   subnet.String(),
	}
	if pr.First != subnet.Addr() || pr.Last != lastAddr(subnet) {
		a.desc = fmt.Sprintf("%v (range %v)", subnet, pr)
	}

	var holes []span
	addHole := func(r Range) {
		lo, hi := r.First, r.Last
		if lo.Less(a.first) {
			lo = a.first
		}
		if a.last.Less(hi) {
			hi = a.last
		}
		if !hi.Less(lo) {
			holes = append(holes, span{addrU128(lo).sub(a.base), addrU128(hi).sub(a.base)})
		}
	}
	// IPv6 has no broadcast, but the all-zeros host is the subnet-router
	// anycast address, so it is skipped in both families.
	addHole(Range{subnet.Addr(), subnet.Addr()})
	if a.is4 {
		addHole(Range{lastAddr(subnet), lastAddr(subnet)})
	}
	for _, r := range exclude {
		r = Range{r.First.Unmap(), r.Last.Unmap()}
		if err := r.check(); err != nil {
			return fail("exclude: %v", err)
		}
		if !subnet.Contains(r.First) || !subnet.Contains(r.Last) {
			return fail("excluded %v is not inside the subnet", r)
		}
		a.excluded = append(a.excluded, r)
		addHole(r)
	}
	a.p = newPool(addrU128(a.last).sub(a.base), holes)
	if a.p.usable.isZero() {
		return fail("no usable addresses in %v", a.desc)
	}
	return a, nil
}

// Subnet returns the subnet the allocator was built for.
func (a *IPAllocator) Subnet() netip.Prefix { return a.subnet }

// Allocate returns owner's address, allocating the next free one if owner
// has none, so retries are harmless.
func (a *IPAllocator) Allocate(owner string) (netip.Addr, error) {
	if owner == "" {
		return netip.Addr{}, fmt.Errorf("ipam: allocate in %s: empty owner", a.desc)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if i, ok := a.p.get(owner); ok {
		return a.addr(i), nil
	}
	i, ok := a.p.allocate(owner)
	if !ok {
		return netip.Addr{}, fmt.Errorf("ipam: allocate for %q in %s: all %d usable addresses in use: %w",
			owner, a.desc, a.p.used(), ErrExhausted)
	}
	return a.addr(i), nil
}

// AllocateStatic gives ip to owner: for pods that request an address and
// for replaying existing allocations on restart. It succeeds again if
// owner already holds ip, and fails with ErrOutOfRange, ErrConflict or
// ErrOwnerHasOther otherwise, checked in that order.
func (a *IPAllocator) AllocateStatic(owner string, ip netip.Addr) error {
	if owner == "" {
		return fmt.Errorf("ipam: allocate %v in %s: empty owner", ip, a.desc)
	}
	ip = ip.Unmap()
	a.mu.Lock()
	defer a.mu.Unlock()
	i, ok := a.index(ip)
	if !ok {
		return fmt.Errorf("ipam: allocate %v for %q: %s: %w", ip, owner, a.whyNot(ip), ErrOutOfRange)
	}
	if other, held := a.p.owner(i); held {
		if other == owner {
			return nil
		}
		return fmt.Errorf("ipam: allocate %v for %q in %s: already allocated to %q: %w",
			ip, owner, a.desc, other, ErrConflict)
	}
	if j, has := a.p.get(owner); has {
		return fmt.Errorf("ipam: allocate %v for %q in %s: owner already holds %v, release it first: %w",
			ip, owner, a.desc, a.addr(j), ErrOwnerHasOther)
	}
	a.p.take(owner, i)
	return nil
}

// Release frees owner's address and returns it; false if owner held none.
func (a *IPAllocator) Release(owner string) (netip.Addr, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	i, ok := a.p.release(owner)
	if !ok {
		return netip.Addr{}, false
	}
	return a.addr(i), true
}

// ReleaseIP frees ip only if owner holds it, so a late delete event for
// an old pod cannot free the address its replacement already got.
func (a *IPAllocator) ReleaseIP(ip netip.Addr, owner string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	i, ok := a.index(ip.Unmap())
	if !ok {
		return false
	}
	if o, held := a.p.owner(i); !held || o != owner {
		return false
	}
	a.p.release(owner)
	return true
}

// Owner returns who holds ip.
func (a *IPAllocator) Owner(ip netip.Addr) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	i, ok := a.index(ip.Unmap())
	if !ok {
		return "", false
	}
	return a.p.owner(i)
}

// Get returns owner's address.
func (a *IPAllocator) Get(owner string) (netip.Addr, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	i, ok := a.p.get(owner)
	if !ok {
		return netip.Addr{}, false
	}
	return a.addr(i), true
}

// Has reports whether ip is currently allocated.
func (a *IPAllocator) Has(ip netip.Addr) bool {
	_, ok := a.Owner(ip)
	return ok
}

// Contains reports whether ip is one this allocator can hand out (whether
// or not it is in use): in the pool, not excluded, not network/broadcast.
// The controller uses it to pick the allocator for a requested address.
func (a *IPAllocator) Contains(ip netip.Addr) bool {
	_, ok := a.index(ip.Unmap()) // reads only immutable state
	return ok
}

// Free returns the number of unallocated usable addresses, saturating at
// math.MaxInt for large IPv6 subnets.
func (a *IPAllocator) Free() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.p.free().toInt()
}

// Used returns the number of allocated addresses.
func (a *IPAllocator) Used() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.p.used()
}

// index maps a usable address to its pool index.
func (a *IPAllocator) index(ip netip.Addr) (u128, bool) {
	if !ip.IsValid() || ip.Zone() != "" || ip.Is4() != a.is4 || ip.Less(a.first) || a.last.Less(ip) {
		return u128{}, false
	}
	i := addrU128(ip).sub(a.base)
	return i, a.p.valid(i)
}

func (a *IPAllocator) addr(i u128) netip.Addr { return u128Addr(a.base.add(i), a.is4) }

// whyNot explains why index rejected ip, for error messages.
func (a *IPAllocator) whyNot(ip netip.Addr) string {
	switch {
	case !ip.IsValid():
		return "not a valid address"
	case !a.subnet.Contains(ip):
		return fmt.Sprintf("not in subnet %v", a.subnet)
	case ip == a.subnet.Addr():
		return fmt.Sprintf("network address of %v", a.subnet)
	case a.is4 && ip == lastAddr(a.subnet):
		return fmt.Sprintf("broadcast address of %v", a.subnet)
	case ip.Less(a.first) || a.last.Less(ip):
		return fmt.Sprintf("outside the allocatable range of %s", a.desc)
	}
	for _, r := range a.excluded {
		if !ip.Less(r.First) && !r.Last.Less(ip) {
			return fmt.Sprintf("excluded (%v) in %s", r, a.desc)
		}
	}
	return "not usable in " + a.desc
}

// Move hands from's address to to, which must hold none, with no moment
// in which the address is free: an external port that changes address
// holds the new one under a temporary owner until its old one is gone.
func (a *IPAllocator) Move(from, to string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if j, has := a.p.get(to); has {
		return fmt.Errorf("ipam: move to %q in %s: it already holds %v: %w", to, a.desc, a.addr(j), ErrOwnerHasOther)
	}
	i, ok := a.p.release(from)
	if !ok {
		return fmt.Errorf("ipam: move from %q in %s: it holds no address", from, a.desc)
	}
	a.p.take(to, i)
	return nil
}
