package ipam

import (
	"fmt"
	"net/netip"
	"sync"
)

// SubnetAllocator carves fixed-size node subnets out of one or more cluster
// CIDRs of one address family (dual-stack uses one allocator per family,
// since a host prefix length means different things in each). CIDRs are
// used in the order given. Safe for concurrent use.
//
// Like IPAllocator it continues after the previous allocation, so a
// deleted node's subnet is not given to the next node while others are
// free, which leaves time for stale routes to it to be cleaned up.
type SubnetAllocator struct {
	// Immutable after construction.
	cidrs   []netip.Prefix
	hostLen int
	shift   uint   // address bits - hostLen: log2 of addresses per subnet
	offsets []u128 // index of the first subnet of cidrs[k]
	is4     bool

	mu sync.Mutex
	p  *pool
}

// NewSubnetAllocator splits clusterCIDRs into subnets of prefix length
// hostPrefixLen, e.g. 10.128.0.0/14 with 24 gives 1024 /24s. The CIDRs
// must be canonical, of one family and disjoint; hostPrefixLen must be at
// least as long as each CIDR's and leave at least 4 addresses per subnet
// (network, gateway, management port, one pod).
func NewSubnetAllocator(clusterCIDRs []netip.Prefix, hostPrefixLen int) (*SubnetAllocator, error) {
	fail := func(format string, args ...any) (*SubnetAllocator, error) {
		return nil, fmt.Errorf("ipam: new subnet allocator for %v /%d: %s",
			clusterCIDRs, hostPrefixLen, fmt.Sprintf(format, args...))
	}
	if len(clusterCIDRs) == 0 {
		return fail("no cluster CIDRs")
	}
	for _, c := range clusterCIDRs {
		if err := checkPrefix(c); err != nil {
			return fail("%v", err)
		}
		if c.Addr().Is4() != clusterCIDRs[0].Addr().Is4() {
			return fail("%v and %v are of different address families", clusterCIDRs[0], c)
		}
	}
	s := &SubnetAllocator{hostLen: hostPrefixLen, is4: clusterCIDRs[0].Addr().Is4()}
	bitLen := clusterCIDRs[0].Addr().BitLen()
	if hostPrefixLen < 0 || hostPrefixLen > bitLen-2 {
		return fail("host prefix length must be between 0 and %d to leave at least 4 addresses per subnet", bitLen-2)
	}
	s.shift = uint(bitLen - hostPrefixLen)
	total := u128{}
	for k, c := range clusterCIDRs {
		if c.Bits() > hostPrefixLen {
			return fail("%v is smaller than one /%d host subnet", c, hostPrefixLen)
		}
		for _, prev := range clusterCIDRs[:k] {
			if prev.Overlaps(c) {
				return fail("%v overlaps %v", c, prev)
			}
		}
		s.cidrs = append(s.cidrs, c)
		s.offsets = append(s.offsets, total)
		// At most 2^126 subnets in all, as subnets hold >= 4 addresses
		// and CIDRs are disjoint, so total cannot overflow.
		total = total.add(one.lsh(uint(hostPrefixLen - c.Bits())))
	}
	s.p = newPool(total.sub(one), nil)
	return s, nil
}

// HostPrefixLen returns the prefix length of the subnets handed out.
func (s *SubnetAllocator) HostPrefixLen() int { return s.hostLen }

// Allocate returns owner's subnet, allocating the next free one if owner
// has none, so retries are harmless.
func (s *SubnetAllocator) Allocate(owner string) (netip.Prefix, error) {
	if owner == "" {
		return netip.Prefix{}, fmt.Errorf("ipam: allocate subnet in %v: empty owner", s.cidrs)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if i, ok := s.p.get(owner); ok {
		return s.prefix(i), nil
	}
	i, ok := s.p.allocate(owner)
	if !ok {
		return netip.Prefix{}, fmt.Errorf("ipam: allocate subnet for %q: all %d /%d subnets of %v in use: %w",
			owner, s.p.used(), s.hostLen, s.cidrs, ErrExhausted)
	}
	return s.prefix(i), nil
}

// Reserve records that owner holds p, typically replayed from the Node
// object on restart before any Allocate. It succeeds again if owner
// already holds p; otherwise it fails with ErrOutOfRange (p is not one of
// the host subnets: outside the cluster CIDRs, wrong length or
// misaligned), ErrConflict or ErrOwnerHasOther, checked in that order.
func (s *SubnetAllocator) Reserve(owner string, p netip.Prefix) error {
	if owner == "" {
		return fmt.Errorf("ipam: reserve %v: empty owner", p)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i, err := s.index(p)
	if err != nil {
		return fmt.Errorf("ipam: reserve %v for %q: %w", p, owner, err)
	}
	if other, held := s.p.owner(i); held {
		if other == owner {
			return nil
		}
		return fmt.Errorf("ipam: reserve %v for %q: already allocated to %q: %w", p, owner, other, ErrConflict)
	}
	if j, has := s.p.get(owner); has {
		return fmt.Errorf("ipam: reserve %v for %q: owner already holds %v, release it first: %w",
			p, owner, s.prefix(j), ErrOwnerHasOther)
	}
	s.p.take(owner, i)
	return nil
}

// Release frees owner's subnet and returns it; false if owner held none.
func (s *SubnetAllocator) Release(owner string) (netip.Prefix, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.p.release(owner)
	if !ok {
		return netip.Prefix{}, false
	}
	return s.prefix(i), true
}

// Owner returns who holds p.
func (s *SubnetAllocator) Owner(p netip.Prefix) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, err := s.index(p)
	if err != nil {
		return "", false
	}
	return s.p.owner(i)
}

// Get returns owner's subnet.
func (s *SubnetAllocator) Get(owner string) (netip.Prefix, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.p.get(owner)
	if !ok {
		return netip.Prefix{}, false
	}
	return s.prefix(i), true
}

// Stats returns the number of allocated subnets and of all subnets; total
// saturates at math.MaxInt (e.g. /64s out of an IPv6 /8).
func (s *SubnetAllocator) Stats() (used, total int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.p.used(), s.p.usable.toInt()
}

// index maps a host subnet to its pool index, or explains why p is not one.
func (s *SubnetAllocator) index(p netip.Prefix) (u128, error) {
	switch {
	case !p.IsValid():
		return u128{}, fmt.Errorf("invalid prefix: %w", ErrOutOfRange)
	case p.Addr().Is4() != s.is4:
		return u128{}, fmt.Errorf("address family differs from cluster CIDRs %v: %w", s.cidrs, ErrOutOfRange)
	case p.Bits() != s.hostLen:
		return u128{}, fmt.Errorf("prefix length is not the host prefix length /%d: %w", s.hostLen, ErrOutOfRange)
	case p != p.Masked():
		return u128{}, fmt.Errorf("not aligned to /%d (has host bits set): %w", s.hostLen, ErrOutOfRange)
	}
	for k, c := range s.cidrs {
		if c.Contains(p.Addr()) {
			return s.offsets[k].add(addrU128(p.Addr()).sub(addrU128(c.Addr())).rsh(s.shift)), nil
		}
	}
	return u128{}, fmt.Errorf("not inside cluster CIDRs %v: %w", s.cidrs, ErrOutOfRange)
}

func (s *SubnetAllocator) prefix(i u128) netip.Prefix {
	k := len(s.offsets) - 1
	for k > 0 && s.offsets[k].cmp(i) > 0 {
		k--
	}
	base := addrU128(s.cidrs[k].Addr())
	a := u128Addr(base.add(i.sub(s.offsets[k]).lsh(s.shift)), s.is4)
	return netip.PrefixFrom(a, s.hostLen)
}
