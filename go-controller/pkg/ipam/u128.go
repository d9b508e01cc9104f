package ipam

import (
	"encoding/binary"
	"math"
	"math/bits"
	"net/netip"
)

// u128 is an unsigned 128-bit integer, enough to index any IPv6 prefix.
// math/big would work but allocates on every step of the scan loop.
type u128 struct{ hi, lo uint64 }

var one = u128{lo: 1}

func u64(v uint64) u128 { return u128{lo: v} }

// add and sub wrap modulo 2^128; callers rely on that only where noted.
func (a u128) add(b u128) u128 {
	lo, c := bits.Add64(a.lo, b.lo, 0)
	hi, _ := bits.Add64(a.hi, b.hi, c)
	return u128{hi, lo}
}

func (a u128) sub(b u128) u128 {
	lo, c := bits.Sub64(a.lo, b.lo, 0)
	hi, _ := bits.Sub64(a.hi, b.hi, c)
	return u128{hi, lo}
}

func (a u128) cmp(b u128) int {
	switch {
	case a.hi < b.hi:
		return -1
	case a.hi > b.hi:
		return 1
	case a.lo < b.lo:
		return -1
	case a.lo > b.lo:
		return 1
	}
	return 0
}

func (a u128) isZero() bool { return a.hi == 0 && a.lo == 0 }

func (a u128) isMax() bool { return a.hi == math.MaxUint64 && a.lo == math.MaxUint64 }

func (a u128) lsh(n uint) u128 {
	switch {
	case n == 0:
		return a
	case n >= 128:
		return u128{}
	case n >= 64:
		return u128{hi: a.lo << (n - 64)}
	}
	return u128{hi: a.hi<<n | a.lo>>(64-n), lo: a.lo << n}
}

func (a u128) rsh(n uint) u128 {
	switch {
	case n == 0:
		return a
	case n >= 128:
		return u128{}
	case n >= 64:
		return u128{lo: a.hi >> (n - 64)}
	}
	return u128{hi: a.hi >> n, lo: a.lo>>n | a.hi<<(64-n)}
}

// toInt saturates at math.MaxInt: IPv6 counts dwarf int and callers only
// need to know "plenty".
func (a u128) toInt() int {
	if a.hi != 0 || a.lo > math.MaxInt {
		return math.MaxInt
	}
	return int(a.lo)
}

// addrU128 works on the 16-byte form so IPv4 and IPv6 share arithmetic;
// an IPv4 prefix never leaves the ::ffff:0:0/96 block, so offsets within
// it are the same as on the 4-byte form.
func addrU128(a netip.Addr) u128 {
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

func u128Addr(v u128, is4 bool) netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], v.hi)
	binary.BigEndian.PutUint64(b[8:], v.lo)
	a := netip.AddrFrom16(b)
	if is4 {
		return a.Unmap()
	}
	return a
}
