package ipam

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"time"
)

func TestCursorDoesNotReuseReleased(t *testing.T) {
	subnet := mp("10.0.0.0/29") // usable .3-.6 after gateway and management
	a, err := NewIPAllocator(subnet, GatewayIP(subnet), ManagementIP(subnet))
	if err != nil {
		t.Fatal(err)
	}
	step := func(op, owner, want string) {
		t.Helper()
		switch op {
		case "alloc":
			ip, err := a.Allocate(owner)
			if err != nil || ip.String() != want {
				t.Fatalf("Allocate(%s) = %v, %v; want %s", owner, ip, err, want)
			}
		case "release":
			if ip, ok := a.Release(owner); !ok || ip.String() != want {
				t.Fatalf("Release(%s) = %v, %v; want %s", owner, ip, ok, want)
			}
		}
	}
	step("alloc", "a", "10.0.0.3")
	step("alloc", "b", "10.0.0.4")
	step("release", "a", "10.0.0.3")
	step("alloc", "c", "10.0.0.5") // not .3, although it is the lowest free
	step("alloc", "d", "10.0.0.6")
	step("alloc", "e", "10.0.0.3") // wraps
	// The cursor now points at .4, which is freed: it must be skipped in
	// favour of the older free .5 ...
	step("release", "c", "10.0.0.5")
	step("release", "b", "10.0.0.4")
	step("alloc", "f", "10.0.0.5")
	// ... but handed out when it is the only address left.
	step("alloc", "g", "10.0.0.4")
	if _, err := a.Allocate("h"); !errors.Is(err, ErrExhausted) {
		t.Fatalf("want ErrExhausted, got %v", err)
	}
}

// TestRestartReplay simulates a controller restart: the addresses recorded
// on pods are replayed into a fresh allocator before anything new is
// allocated, and new allocations must never duplicate a replayed one.
func TestRestartReplay(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 50 {
		subnet := mp("10.128.7.0/26")
		exclude := []netip.Addr{GatewayIP(subnet), ManagementIP(subnet)}
		before, err := NewIPAllocator(subnet, exclude...)
		if err != nil {
			t.Fatal(err)
		}
		recorded := map[string]netip.Addr{}
		for i := range rng.IntN(61) {
			o := fmt.Sprintf("ns/pod-%d", i)
			ip, err := before.Allocate(o)
			if err != nil {
				t.Fatal(err)
			}
			recorded[o] = ip
		}
		for o := range recorded {
			if rng.IntN(3) == 0 {
				before.Release(o)
				delete(recorded, o)
			}
		}

		after, err := NewIPAllocator(subnet, exclude...)
		if err != nil {
			t.Fatal(err)
		}
		for o, ip := range recorded {
			if err := after.AllocateStatic(o, ip); err != nil {
				t.Fatalf("round %d: replay %s=%v: %v", round, o, ip, err)
			}
		}
		for o, ip := range recorded { // replaying twice is harmless
			if err := after.AllocateStatic(o, ip); err != nil {
				t.Fatalf("round %d: second replay %s=%v: %v", round, o, ip, err)
			}
		}
		seen := map[netip.Addr]bool{}
		for _, ip := range recorded {
			seen[ip] = true
		}
		for i := 0; ; i++ {
			ip, err := after.Allocate(fmt.Sprintf("ns/new-%d", i))
			if errors.Is(err, ErrExhausted) {
				if len(seen) != 60 {
					t.Fatalf("round %d: exhausted after %d addresses, want 60", round, len(seen))
				}
				break
			}
			if err != nil || seen[ip] {
				t.Fatalf("round %d: Allocate = %v, %v (duplicate=%v)", round, ip, err, seen[ip])
			}
			seen[ip] = true
		}
	}
}

// TestIPAllocatorModel runs long random operation sequences against the
// brute-force model, which predicts every result exactly.
func TestIPAllocatorModel(t *testing.T) {
	configs := []struct {
		subnet      string
		first, last string
		exclude     []Range
	}{
		{subnet: "10.0.0.0/27", exclude: []Range{{ma("10.0.0.1"), ma("10.0.0.2")}}},
		{subnet: "10.0.0.0/24", first: "10.0.0.100", last: "10.0.0.140", exclude: []Range{{ma("10.0.0.110"), ma("10.0.0.119")}}},
		{subnet: "fd00::/123", exclude: []Range{{ma("fd00::1"), ma("fd00::2")}}},
		{subnet: "10.0.0.0/30"},
	}
	for ci, c := range configs {
		subnet := mp(c.subnet)
		first, last := subnet.Addr(), lastAddr(subnet)
		if c.first != "" {
			first, last = ma(c.first), ma(c.last)
		}
		a, err := NewIPAllocatorRange(subnet, first, last, c.exclude...)
		if err != nil {
			t.Fatal(err)
		}
		m := newIPModel(a, usableAddrs(subnet, first, last, c.exclude))
		m.checkContains(t)
		owners := make([]string, len(m.usable)+3) // more owners than addresses
		for i := range owners {
			owners[i] = fmt.Sprintf("owner-%d", i)
		}
		rng := rand.New(rand.NewPCG(uint64(ci), 99))
		randIP := func() netip.Addr { // mostly usable, sometimes not
			if rng.IntN(5) == 0 {
				return NthAddr(subnet, uint64(rng.IntN(1<<(subnet.Addr().BitLen()-subnet.Bits()))))
			}
			return m.usable[rng.IntN(len(m.usable))]
		}
		for range 5000 {
			o := owners[rng.IntN(len(owners))]
			switch rng.IntN(10) {
			case 0, 1, 2, 3:
				m.allocate(t, o)
			case 4, 5:
				m.allocateStatic(t, o, randIP())
			case 6, 7, 8:
				m.release(t, o)
			case 9:
				ip := randIP()
				if h, ok := m.byIP[ip]; ok && rng.IntN(2) == 0 {
					o = h
				}
				m.releaseIP(t, ip, o)
			}
			m.check(t, owners)
		}
	}
}

func TestIPv6Slash64Allocate10k(t *testing.T) {
	subnet := mp("fd00:10:244:1::/64")
	a, err := NewIPAllocator(subnet, GatewayIP(subnet), ManagementIP(subnet))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	seen := make(map[netip.Addr]bool, 10000)
	for i := range 10000 {
		ip, err := a.Allocate(fmt.Sprint(i))
		if err != nil {
			t.Fatal(err)
		}
		if seen[ip] || !subnet.Contains(ip) {
			t.Fatalf("bad or duplicate address %v", ip)
		}
		seen[ip] = true
	}
	if ip, _ := a.Get("9999"); ip != NthAddr(subnet, 10002) {
		t.Errorf("10000th address = %v, want %v", ip, NthAddr(subnet, 10002))
	}
	// Pin a static address far away and check the sparse scan is not
	// thrown by it.
	far := NthAddr(subnet, 1<<63)
	if err := a.AllocateStatic("far", far); err != nil {
		t.Fatal(err)
	}
	t.Logf("10k IPv6 allocations in %v; Free()=%d", time.Since(start), a.Free())
}

func TestConcurrentAllocate(t *testing.T) {
	subnet := mp("10.128.0.0/22")
	a, err := NewIPAllocator(subnet, GatewayIP(subnet), ManagementIP(subnet))
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 32, 30
	results := make([][]netip.Addr, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				owner := fmt.Sprintf("w%d-%d", w, i)
				ip, err := a.Allocate(owner)
				if err != nil {
					t.Error(err)
					return
				}
				again, _ := a.Allocate(owner) // idempotent under contention too
				if again != ip {
					t.Errorf("%s got %v then %v", owner, ip, again)
				}
				results[w] = append(results[w], ip)
				_ = a.Free()
				_, _ = a.Owner(ip)
				if i%5 == 0 { // churn: release and allocate again
					a.Release(owner)
					ip, err = a.Allocate(owner)
					if err != nil {
						t.Error(err)
						return
					}
					results[w][len(results[w])-1] = ip
				}
			}
		})
	}
	wg.Wait()
	seen := map[netip.Addr]bool{}
	for _, r := range results {
		for _, ip := range r {
			if seen[ip] {
				t.Fatalf("%v handed out twice", ip)
			}
			seen[ip] = true
		}
	}
	if len(seen) != workers*each || a.Used() != workers*each {
		t.Errorf("got %d unique, Used()=%d, want %d", len(seen), a.Used(), workers*each)
	}
}
