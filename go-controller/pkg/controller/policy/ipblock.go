package policy

import (
	"encoding/binary"
	"net/netip"
	"slices"
)

// Allowed is the ipBlock's CIDR minus its excepts, as the fewest
// prefixes, in address order; empty when the excepts cover the CIDR.
//
// The ACL matches these positively. The obvious match, "ip4.src == CIDR
// && ip4.src != {excepts}", costs ovn-controller flows exponential in the
// number of excepts (a "!=" on a prefix becomes an OR over its bits, and
// the AND of those ORs is expanded): 8 excepts gave 220,000 flows on a
// node in the lab, and 10,000 would never finish. The positive set has at
// most (32 - CIDR bits) prefixes per except, and flows grow with it.
func (b IPBlock) Allowed() []netip.Prefix {
	ex := slices.Clone(b.Except)
	slices.SortFunc(ex, func(x, y netip.Prefix) int {
		if c := x.Addr().Compare(y.Addr()); c != 0 {
			return c
		}
		return x.Bits() - y.Bits()
	})
	// Drop excepts inside an earlier one: sorted so, a prefix comes before
	// every prefix it contains, and what it contains follows it directly.
	kept := ex[:0]
	for _, e := range ex {
		if len(kept) > 0 && kept[len(kept)-1].Contains(e.Addr()) {
			continue
		}
		kept = append(kept, e)
	}
	return subtract(b.CIDR, kept, nil)
}

// subtract appends p minus ex to out. ex are disjoint IPv4 prefixes
// inside p, in address order. A half of p that no except touches is
// emitted whole, so the result is the fewest prefixes.
func subtract(p netip.Prefix, ex []netip.Prefix, out []netip.Prefix) []netip.Prefix {
	switch {
	case len(ex) == 0:
		return append(out, p)
	case ex[0].Bits() == p.Bits(): // the except is p itself, and alone
		return out
	}
	lo := netip.PrefixFrom(p.Addr(), p.Bits()+1)
	a := p.Addr().As4()
	binary.BigEndian.PutUint32(a[:], binary.BigEndian.Uint32(a[:])|1<<(31-p.Bits()))
	hi := netip.PrefixFrom(netip.AddrFrom4(a), p.Bits()+1)
	// Each except is longer than p, so it lies in one half.
	i, _ := slices.BinarySearchFunc(ex, hi.Addr(), func(e netip.Prefix, t netip.Addr) int { return e.Addr().Compare(t) })
	out = subtract(lo, ex[:i], out)
	return subtract(hi, ex[i:], out)
}
