package ipam

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"testing"
)

func prefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, mp(s))
	}
	return out
}

func TestNewSubnetAllocator(t *testing.T) {
	for _, tc := range []struct {
		cidrs     []netip.Prefix
		hostLen   int
		wantTotal int
		wantErr   string
	}{
		{prefixes("10.128.0.0/14"), 24, 1024, ""},
		{prefixes("10.128.0.0/14"), 14, 1, ""},
		{prefixes("10.128.0.0/14"), 30, 1 << 16, ""},
		{prefixes("10.128.0.0/14", "10.200.0.0/16"), 24, 1024 + 256, ""},
		{prefixes("fd00:10:244::/48"), 64, 1 << 16, ""},
		{prefixes("fd00::/8"), 64, 1 << 56, ""},
		{prefixes("::/0"), 126, math.MaxInt, ""},
		{nil, 24, 0, "no cluster CIDRs"},
		{prefixes("10.128.0.0/14"), 13, 0, "smaller than one /13"},
		{prefixes("10.128.0.0/14"), 31, 0, "at least 4 addresses"},
		{prefixes("10.128.0.0/14"), 32, 0, "at least 4 addresses"},
		{prefixes("10.128.0.0/14"), -1, 0, "at least 4 addresses"},
		{prefixes("fd00::/48"), 127, 0, "at least 4 addresses"},
		{prefixes("10.128.1.0/14"), 24, 0, "host bits set"},
		{prefixes("10.128.0.0/14", "fd00::/48"), 24, 0, "different address families"},
		{prefixes("10.128.0.0/14", "10.129.0.0/16"), 24, 0, "overlaps"},
		{[]netip.Prefix{{}}, 24, 0, "invalid prefix"},
	} {
		s, err := NewSubnetAllocator(tc.cidrs, tc.hostLen)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%v /%d: err = %v, want %q", tc.cidrs, tc.hostLen, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v /%d: %v", tc.cidrs, tc.hostLen, err)
			continue
		}
		if used, total := s.Stats(); used != 0 || total != tc.wantTotal {
			t.Errorf("%v /%d: Stats() = %d, %d; want 0, %d", tc.cidrs, tc.hostLen, used, total, tc.wantTotal)
		}
	}
}

func TestSubnetAllocateTwoCIDRs(t *testing.T) {
	s, err := NewSubnetAllocator(prefixes("10.128.0.0/23", "10.200.0.0/24"), 25)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.128.0.0/25", "10.128.0.128/25", "10.128.1.0/25", "10.128.1.128/25", "10.200.0.0/25", "10.200.0.128/25"}
	for i, w := range want {
		owner := fmt.Sprintf("node-%d", i)
		p, err := s.Allocate(owner)
		if err != nil || p.String() != w {
			t.Fatalf("Allocate(%s) = %v, %v; want %s", owner, p, err, w)
		}
		if again, _ := s.Allocate(owner); again != p {
			t.Fatalf("Allocate(%s) not idempotent: %v then %v", owner, p, again)
		}
		if o, ok := s.Owner(p); !ok || o != owner {
			t.Fatalf("Owner(%v) = %q, %v", p, o, ok)
		}
	}
	_, err = s.Allocate("node-x")
	if !errors.Is(err, ErrExhausted) || !strings.Contains(err.Error(), "10.200.0.0/24") {
		t.Fatalf("want ErrExhausted naming the CIDRs, got %v", err)
	}
	if used, total := s.Stats(); used != 6 || total != 6 {
		t.Errorf("Stats() = %d, %d", used, total)
	}
	// The cursor skips the just-released subnet while another is free.
	s.Release("node-1")
	s.Release("node-4")
	if p, _ := s.Allocate("node-y"); p.String() != "10.128.0.128/25" {
		t.Errorf("after releasing node-1 then node-4, got %v", p)
	}
	if p, _ := s.Allocate("node-z"); p.String() != "10.200.0.0/25" {
		t.Errorf("last free subnet: got %v", p)
	}
}

func TestSubnetReserve(t *testing.T) {
	s, err := NewSubnetAllocator(prefixes("10.128.0.0/14", "10.200.0.0/16"), 24)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Reserve("node-a", mp("10.129.5.0/24")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		owner, p string
		want     error
		msg      string
	}{
		{"node-a", "10.129.5.0/24", nil, ""},
		{"node-b", "10.129.5.0/24", ErrConflict, `already allocated to "node-a"`},
		{"node-a", "10.129.6.0/24", ErrOwnerHasOther, "holds 10.129.5.0/24"},
		{"node-b", "10.129.5.128/24", ErrOutOfRange, "not aligned"},
		{"node-b", "10.129.5.0/25", ErrOutOfRange, "host prefix length /24"},
		{"node-b", "10.129.4.0/23", ErrOutOfRange, "host prefix length /24"},
		{"node-b", "10.132.0.0/24", ErrOutOfRange, "not inside cluster CIDRs"},
		{"node-b", "fd00::/24", ErrOutOfRange, "address family"},
		{"node-b", "", ErrOutOfRange, "invalid prefix"},
		{"node-b", "10.200.255.0/24", nil, ""},
	} {
		var p netip.Prefix
		if tc.p != "" {
			p = netip.PrefixFrom(ma(strings.Split(tc.p, "/")[0]), mp(tc.p).Bits())
		}
		err := s.Reserve(tc.owner, p)
		if tc.want == nil && err != nil || tc.want != nil && (!errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg)) {
			t.Errorf("Reserve(%s, %s) = %v; want %v containing %q", tc.owner, tc.p, err, tc.want, tc.msg)
		}
	}
	if s.HostPrefixLen() != 24 {
		t.Errorf("HostPrefixLen() = %d", s.HostPrefixLen())
	}
	if _, ok := s.Owner(mp("10.129.5.0/25")); ok {
		t.Error("Owner of a non-host subnet")
	}
	if _, ok := s.Get("nobody"); ok {
		t.Error("Get of an unknown owner")
	}
	if err := s.Reserve("", mp("10.129.7.0/24")); err == nil {
		t.Error("Reserve with empty owner must fail")
	}
	if got, ok := s.Get("node-b"); !ok || got != mp("10.200.255.0/24") {
		t.Errorf("Get(node-b) = %v, %v", got, ok)
	}
	if p, ok := s.Release("node-b"); !ok || p != mp("10.200.255.0/24") {
		t.Errorf("Release(node-b) = %v, %v", p, ok)
	}
	if _, ok := s.Release("node-b"); ok {
		t.Error("double Release found something")
	}
	if _, ok := s.Owner(mp("10.200.255.0/24")); ok {
		t.Error("released subnet still owned")
	}
}

// TestSubnetRestartReplay: reserve every recorded node subnet, then new
// nodes only get free ones, until exactly the total is used.
func TestSubnetRestartReplay(t *testing.T) {
	cidrs := prefixes("10.128.0.0/20", "10.200.0.0/22")
	rng := rand.New(rand.NewPCG(7, 7))
	for round := range 30 {
		before, _ := NewSubnetAllocator(cidrs, 24)
		recorded := map[string]netip.Prefix{}
		for i := range rng.IntN(21) {
			p, err := before.Allocate(fmt.Sprint("node-", i))
			if err != nil {
				t.Fatal(err)
			}
			recorded[fmt.Sprint("node-", i)] = p
		}
		after, _ := NewSubnetAllocator(cidrs, 24)
		seen := map[netip.Prefix]bool{}
		for o, p := range recorded {
			if err := after.Reserve(o, p); err != nil {
				t.Fatalf("round %d: Reserve(%s, %v): %v", round, o, p, err)
			}
			seen[p] = true
		}
		for i := 0; ; i++ {
			p, err := after.Allocate(fmt.Sprint("new-", i))
			if errors.Is(err, ErrExhausted) {
				break
			}
			if err != nil || seen[p] {
				t.Fatalf("round %d: Allocate = %v, %v (duplicate=%v)", round, p, err, seen[p])
			}
			seen[p] = true
		}
		if used, total := after.Stats(); len(seen) != 20 || used != 20 || total != 20 {
			t.Fatalf("round %d: %d unique, Stats() = %d, %d; want 20", round, len(seen), used, total)
		}
	}
}

func TestSubnetIPv6(t *testing.T) {
	s, err := NewSubnetAllocator(prefixes("fd00:10:244::/48", "fd00:20::/62"), 64)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Reserve("last", mp("fd00:10:244:ffff::/64")); err != nil {
		t.Fatal(err)
	}
	if p, _ := s.Allocate("n1"); p != mp("fd00:10:244::/64") {
		t.Errorf("first /64 = %v", p)
	}
	if err := s.Reserve("second", mp("fd00:20::3/64").Masked()); err != nil {
		t.Fatal(err)
	}
	if o, ok := s.Owner(mp("fd00:20::/64")); !ok || o != "second" {
		t.Errorf("Owner = %q, %v", o, ok)
	}
	if used, total := s.Stats(); used != 3 || total != 1<<16+4 {
		t.Errorf("Stats() = %d, %d", used, total)
	}
	// A huge space stays sparse: allocating from an IPv6 /8 is cheap.
	big, err := NewSubnetAllocator(prefixes("fd00::/8"), 64)
	if err != nil {
		t.Fatal(err)
	}
	if err := big.Reserve("far", mp("fdff:ffff:ffff:ffff::/64")); err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		if _, err := big.Allocate(fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	if p, _ := big.Get("999"); p != mp("fd00:0:0:3e7::/64") {
		t.Errorf("1000th /64 = %v", p)
	}
}

func TestSubnetConcurrent(t *testing.T) {
	s, err := NewSubnetAllocator(prefixes("10.128.0.0/14"), 24)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[netip.Prefix]string{}
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Go(func() {
			for i := range 32 {
				owner := fmt.Sprintf("node-%d-%d", w, i)
				p, err := s.Allocate(owner)
				if err != nil {
					t.Error(err)
					return
				}
				s.Stats()
				mu.Lock()
				if prev, dup := seen[p]; dup {
					t.Errorf("%v given to %s and %s", p, prev, owner)
				}
				seen[p] = owner
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if _, err := s.Allocate("one-too-many"); !errors.Is(err, ErrExhausted) {
		t.Errorf("1025th node: %v, want ErrExhausted", err)
	}
}
