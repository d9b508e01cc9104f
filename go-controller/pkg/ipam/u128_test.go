package ipam

import (
	"math"
	"net/netip"
	"testing"
)

func TestU128(t *testing.T) {
	max := u128{math.MaxUint64, math.MaxUint64}
	if got := (u128{0, math.MaxUint64}).add(one); got != (u128{1, 0}) {
		t.Errorf("carry: got %v", got)
	}
	if got := (u128{1, 0}).sub(one); got != (u128{0, math.MaxUint64}) {
		t.Errorf("borrow: got %v", got)
	}
	if got := max.add(one); !got.isZero() {
		t.Errorf("max+1 = %v, want wrap to 0", got)
	}
	for _, n := range []uint{0, 1, 63, 64, 65, 127} {
		v := one.lsh(n)
		if back := v.rsh(n); back != one {
			t.Errorf("1<<%d>>%d = %v", n, n, back)
		}
	}
	if !one.lsh(128).isZero() || !max.rsh(128).isZero() {
		t.Error("shift by 128 must give 0")
	}
	if got := (u128{1, 0}).toInt(); got != math.MaxInt {
		t.Errorf("toInt saturation: got %d", got)
	}
	if got := u64(42).toInt(); got != 42 {
		t.Errorf("toInt(42) = %d", got)
	}
	if u64(1).cmp(u64(2)) != -1 || (u128{1, 0}).cmp(u64(math.MaxUint64)) != 1 || one.cmp(one) != 0 {
		t.Error("cmp")
	}
}

func TestAddrU128RoundTrip(t *testing.T) {
	for _, s := range []string{"0.0.0.0", "10.128.1.5", "255.255.255.255", "::", "fd00::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"} {
		a := netip.MustParseAddr(s)
		if got := u128Addr(addrU128(a), a.Is4()); got != a {
			t.Errorf("%s round-tripped to %s", a, got)
		}
	}
	// IPv4 arithmetic in the 16-byte form must carry like the 4-byte form.
	v := addrU128(netip.MustParseAddr("10.0.0.255")).add(one)
	if got := u128Addr(v, true); got != netip.MustParseAddr("10.0.1.0") {
		t.Errorf("10.0.0.255+1 = %s", got)
	}
}
