package ipam

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// ipModel is an obviously-correct, brute-force IPAllocator for small
// subnets: it lists every usable address and predicts the exact result of
// each operation, including the cursor order. The property test and the
// fuzz target drive the real allocator and the model side by side.
type ipModel struct {
	a        *IPAllocator
	usable   []netip.Addr // ascending
	byOwner  map[string]netip.Addr
	byIP     map[netip.Addr]string
	cursor   netip.Addr // next candidate; zero = bottom of the pool
	lastFree netip.Addr // most recently released; zero = none
}

// usableAddrs enumerates what an allocator over subnet, pool first..last
// and exclude must hand out, by checking every address of subnet.
func usableAddrs(subnet netip.Prefix, first, last netip.Addr, exclude []Range) []netip.Addr {
	var out []netip.Addr
	bcast := lastAddr(subnet)
	for ip := subnet.Addr(); subnet.Contains(ip); ip = ip.Next() {
		ok := ip != subnet.Addr() && !(ip.Is4() && ip == bcast) && !ip.Less(first) && !last.Less(ip)
		for _, r := range exclude {
			if !ip.Less(r.First) && !r.Last.Less(ip) {
				ok = false
			}
		}
		if ok {
			out = append(out, ip)
		}
		if ip == bcast {
			break // Next would leave the subnet, or wrap to zero at the top
		}
	}
	return out
}

func newIPModel(a *IPAllocator, usable []netip.Addr) *ipModel {
	return &ipModel{a: a, usable: usable, byOwner: map[string]netip.Addr{}, byIP: map[netip.Addr]string{}}
}

func (m *ipModel) isUsable(ip netip.Addr) bool {
	_, ok := slices.BinarySearchFunc(m.usable, ip, netip.Addr.Compare)
	return ok
}

// expectNext predicts Allocate for a new owner: the first free usable
// address at or after the cursor, wrapping, skipping the most recently
// released one unless it is the only free address.
func (m *ipModel) expectNext() (netip.Addr, bool) {
	free := len(m.usable) - len(m.byIP)
	if free == 0 {
		return netip.Addr{}, false
	}
	start := 0
	if m.cursor.IsValid() {
		start, _ = slices.BinarySearchFunc(m.usable, m.cursor, netip.Addr.Compare)
	}
	for k := range m.usable {
		ip := m.usable[(start+k)%len(m.usable)]
		if _, used := m.byIP[ip]; used || (free > 1 && ip == m.lastFree) {
			continue
		}
		return ip, true
	}
	panic("model: free > 0 but nothing found")
}

func (m *ipModel) allocate(t testing.TB, owner string) {
	t.Helper()
	got, err := m.a.Allocate(owner)
	if held, ok := m.byOwner[owner]; ok {
		if err != nil || got != held {
			t.Fatalf("Allocate(%q) again = %v, %v; want %v (idempotent)", owner, got, err, held)
		}
		return
	}
	want, ok := m.expectNext()
	if !ok {
		if !errors.Is(err, ErrExhausted) {
			t.Fatalf("Allocate(%q) on a full pool = %v, %v; want ErrExhausted", owner, got, err)
		}
		return
	}
	if err != nil || got != want {
		t.Fatalf("Allocate(%q) = %v, %v; want %v", owner, got, err, want)
	}
	m.byOwner[owner], m.byIP[got] = got, owner
	m.cursor = got.Next() // may step past the pool; the search then wraps
}

func (m *ipModel) allocateStatic(t testing.TB, owner string, ip netip.Addr) {
	t.Helper()
	err := m.a.AllocateStatic(owner, ip)
	other, taken := m.byIP[ip]
	held, has := m.byOwner[owner]
	var want error
	switch {
	case !m.isUsable(ip):
		want = ErrOutOfRange
	case taken && other != owner:
		want = ErrConflict
	case taken:
		want = nil
	case has:
		want = ErrOwnerHasOther
	}
	if want == nil && err != nil || want != nil && !errors.Is(err, want) {
		t.Fatalf("AllocateStatic(%q, %v) = %v; want %v (held by %q, owner has %v)", owner, ip, err, want, other, held)
	}
	if want == ErrConflict && !strings.Contains(err.Error(), fmt.Sprintf("%q", other)) {
		t.Fatalf("conflict error %q does not name holder %q", err, other)
	}
	if want == nil && !taken {
		m.byOwner[owner], m.byIP[ip] = ip, owner
	}
}

func (m *ipModel) release(t testing.TB, owner string) {
	t.Helper()
	got, ok := m.a.Release(owner)
	want, has := m.byOwner[owner]
	if ok != has || got != want {
		t.Fatalf("Release(%q) = %v, %v; want %v, %v", owner, got, ok, want, has)
	}
	if has {
		delete(m.byOwner, owner)
		delete(m.byIP, want)
		m.lastFree = want
	}
}

func (m *ipModel) releaseIP(t testing.TB, ip netip.Addr, owner string) {
	t.Helper()
	want := m.byIP[ip] == owner && m.isUsable(ip)
	if got := m.a.ReleaseIP(ip, owner); got != want {
		t.Fatalf("ReleaseIP(%v, %q) = %v; want %v", ip, owner, got, want)
	}
	if want {
		delete(m.byOwner, owner)
		delete(m.byIP, ip)
		m.lastFree = ip
	}
}

// check verifies the invariants through the public API only: every
// address has at most one owner, Get and Owner agree, nothing unusable is
// held, and Free()+Used() is exactly the usable count.
func (m *ipModel) check(t testing.TB, owners []string) {
	t.Helper()
	if free, used := m.a.Free(), m.a.Used(); free+used != len(m.usable) || used != len(m.byIP) {
		t.Fatalf("Free()=%d Used()=%d, want %d+%d", free, used, len(m.usable)-len(m.byIP), len(m.byIP))
	}
	seen := map[netip.Addr]string{}
	for _, o := range owners {
		ip, ok := m.a.Get(o)
		if want, has := m.byOwner[o]; ok != has || ip != want {
			t.Fatalf("Get(%q) = %v, %v; want %v, %v", o, ip, ok, want, has)
		}
		if !ok {
			continue
		}
		if prev, dup := seen[ip]; dup {
			t.Fatalf("%v held by both %q and %q", ip, prev, o)
		}
		seen[ip] = o
		if got, _ := m.a.Owner(ip); got != o || !m.a.Has(ip) || !m.a.Contains(ip) {
			t.Fatalf("Owner(%v) = %q, Has=%v Contains=%v; want %q", ip, got, m.a.Has(ip), m.a.Contains(ip), o)
		}
	}
}

// checkContains compares Contains with the model for every address of the
// subnet. Contains depends only on construction, so once is enough.
func (m *ipModel) checkContains(t testing.TB) {
	t.Helper()
	subnet := m.a.Subnet()
	for ip := subnet.Addr(); ip.IsValid() && subnet.Contains(ip); ip = ip.Next() {
		if got, want := m.a.Contains(ip), m.isUsable(ip); got != want {
			t.Fatalf("Contains(%v) = %v, want %v", ip, got, want)
		}
	}
}
