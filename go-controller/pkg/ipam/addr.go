package ipam

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// GatewayIP returns the first host address of subnet (.1 in IPv4), which
// kovn assigns to the logical router port. It returns the zero Addr if
// subnet is invalid or too small.
func GatewayIP(subnet netip.Prefix) netip.Addr { return NthAddr(subnet, 1) }

// ManagementIP returns the second host address of subnet (.2 in IPv4),
// which kovn assigns to the node's management port.
func ManagementIP(subnet netip.Prefix) netip.Addr { return NthAddr(subnet, 2) }

// NthAddr returns the address n places after the network address of p
// (host bits of p are ignored), or the zero Addr if p is invalid or has
// fewer than n+1 addresses.
func NthAddr(p netip.Prefix, n uint64) netip.Addr {
	if !p.IsValid() {
		return netip.Addr{}
	}
	p = p.Masked()
	hostBits := uint(p.Addr().BitLen() - p.Bits())
	if hostBits < 64 && n>>hostBits != 0 {
		return netip.Addr{}
	}
	return u128Addr(addrU128(p.Addr()).add(u64(n)), p.Addr().Is4())
}

// lastAddr is the highest address of p (the IPv4 broadcast address).
func lastAddr(p netip.Prefix) netip.Addr {
	hostBits := uint(p.Addr().BitLen() - p.Bits())
	hostMask := one.lsh(hostBits).sub(one) // 1<<128 is 0, so ::/0 wraps to all-ones
	return u128Addr(addrU128(p.Addr()).add(hostMask), p.Addr().Is4())
}

// MACFromIP derives the MAC of a logical port from its address, the
// ovn-kubernetes convention (0a:58 + the IPv4 address, or the last four
// bytes of an IPv6 one): deterministic MACs mean a re-created port keeps
// its MAC and neighbours' caches stay right. Returns nil for the zero Addr.
func MACFromIP(ip netip.Addr) net.HardwareAddr {
	if !ip.IsValid() {
		return nil
	}
	b := ip.As16() // for IPv4 the last four bytes are the address
	return net.HardwareAddr{0x0a, 0x58, b[12], b[13], b[14], b[15]}
}

// Range is an inclusive span of addresses, e.g. the slice of a physical
// subnet that an underlay network may hand out, or a block to exclude.
type Range struct{ First, Last netip.Addr }

// ParseRange parses "10.0.0.10..10.0.0.20" or a single address.
func ParseRange(s string) (Range, error) {
	lo, hi, isRange := strings.Cut(strings.TrimSpace(s), "..")
	first, err := netip.ParseAddr(strings.TrimSpace(lo))
	if err != nil {
		return Range{}, fmt.Errorf("ipam: parse range %q: %w", s, err)
	}
	last := first
	if isRange {
		if last, err = netip.ParseAddr(strings.TrimSpace(hi)); err != nil {
			return Range{}, fmt.Errorf("ipam: parse range %q: %w", s, err)
		}
	}
	r := Range{first.Unmap(), last.Unmap()}
	if err := r.check(); err != nil {
		return Range{}, fmt.Errorf("ipam: parse range %q: %w", s, err)
	}
	return r, nil
}

func (r Range) String() string {
	if r.First == r.Last {
		return r.First.String()
	}
	return r.First.String() + ".." + r.Last.String()
}

func (r Range) check() error {
	switch {
	case !r.First.IsValid() || !r.Last.IsValid():
		return fmt.Errorf("range %v has an invalid end", r)
	case r.First.Is4() != r.Last.Is4():
		return fmt.Errorf("range %v mixes IPv4 and IPv6", r)
	case r.Last.Less(r.First):
		return fmt.Errorf("range %v ends before it starts", r)
	}
	return nil
}

// checkPrefix insists on canonical prefixes: a CIDR with host bits set is
// almost always a typo (10.128.1.0/14 meant as 10.128.0.0/14 or /24), and
// guessing which would hide it.
func checkPrefix(p netip.Prefix) error {
	switch {
	case !p.IsValid():
		return fmt.Errorf("invalid prefix %v", p)
	case p.Addr().Is4In6():
		return fmt.Errorf("prefix %v is IPv4-mapped IPv6; use the IPv4 form", p)
	case p != p.Masked():
		return fmt.Errorf("prefix %v has host bits set (did you mean %v?)", p, p.Masked())
	}
	return nil
}
