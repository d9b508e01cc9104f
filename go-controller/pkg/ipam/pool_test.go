package ipam

import (
	"math"
	"testing"
)

func TestNewPoolMergesHoles(t *testing.T) {
	p := newPool(u64(99), []span{
		{u64(50), u64(60)}, {u64(10), u64(12)}, {u64(13), u64(13)}, // adjacent
		{u64(55), u64(70)}, {u64(58), u64(59)}, // overlapping, contained
		{u64(99), u64(99)},
	})
	want := []span{{u64(10), u64(13)}, {u64(50), u64(70)}, {u64(99), u64(99)}}
	if len(p.holes) != len(want) {
		t.Fatalf("holes = %v, want %v", p.holes, want)
	}
	for i := range want {
		if p.holes[i] != want[i] {
			t.Fatalf("holes = %v, want %v", p.holes, want)
		}
	}
	if got := p.usable; got != u64(100-4-21-1) {
		t.Errorf("usable = %v", got)
	}
	for _, tc := range []struct {
		i    uint64
		want bool
	}{{0, true}, {9, true}, {10, false}, {13, false}, {14, true}, {70, false}, {71, true}, {98, true}, {99, false}, {100, false}} {
		if got := p.valid(u64(tc.i)); got != tc.want {
			t.Errorf("valid(%d) = %v", tc.i, got)
		}
	}
}

// TestPoolWrapsAtTopOfIPv6 covers the index space of ::/0, where the
// cursor and hole ends wrap modulo 2^128 instead of reaching last+1.
func TestPoolWrapsAtTopOfIPv6(t *testing.T) {
	max := u128{math.MaxUint64, math.MaxUint64}
	p := newPool(max, []span{{u128{}, u128{}}, {max.sub(u64(1)), max}})
	if p.usable != max.sub(u64(2)) {
		t.Fatalf("usable = %v", p.usable)
	}
	p.next = max.sub(u64(1)) // inside the top hole
	if i, ok := p.allocate("a"); !ok || i != one {
		t.Fatalf("allocate after the top hole = %v, %v; want 1", i, ok)
	}
	p.next = max
	p.take("b", u64(2))
	if i, ok := p.allocate("c"); !ok || i != u64(3) {
		t.Fatalf("allocate = %v, %v; want 3", i, ok)
	}
}
