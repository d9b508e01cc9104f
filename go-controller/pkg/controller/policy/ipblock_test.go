package policy

import (
	"encoding/binary"
	"fmt"
	"math/rand"
	"net/netip"
	"slices"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
)

func prefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func TestIPBlockAllowed(t *testing.T) {
	for _, tc := range []struct {
		cidr   string
		except []string
		want   []string
	}{
		{"10.0.0.0/8", nil, []string{"10.0.0.0/8"}},
		{"10.0.0.0/30", []string{"10.0.0.1/32"}, []string{"10.0.0.0/32", "10.0.0.2/31"}},
		{"10.0.0.0/8", []string{"10.0.0.0/8"}, nil},
		{"10.0.0.0/24", []string{"10.0.0.0/25", "10.0.0.128/25"}, nil},
		// Duplicates and an except inside another count once.
		{"10.0.0.0/24", []string{"10.0.0.128/26", "10.0.0.128/25", "10.0.0.130/32", "10.0.0.128/25"}, []string{"10.0.0.0/25"}},
		{"0.0.0.0/0", []string{"10.0.0.0/8"}, []string{"0.0.0.0/5", "8.0.0.0/7", "11.0.0.0/8", "12.0.0.0/6", "16.0.0.0/4",
			"32.0.0.0/3", "64.0.0.0/2", "128.0.0.0/1"}},
		{"255.255.255.252/30", []string{"255.255.255.255/32"}, []string{"255.255.255.252/31", "255.255.255.254/32"}},
	} {
		b := IPBlock{CIDR: netip.MustParsePrefix(tc.cidr), Except: prefixes(tc.except...)}
		if got := prefixStrings(b.Allowed()); !slices.Equal(got, tc.want) {
			t.Errorf("%s except %v: got %v, want %v", tc.cidr, tc.except, got, tc.want)
		}
	}
}

// TestIPBlockAllowedProperties checks random blocks address by address:
// the prefixes hold exactly the CIDR's addresses outside every except,
// are disjoint, in order and fewest (no two could merge into one).
func TestIPBlockAllowedProperties(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	u32 := func(a netip.Addr) uint32 { b := a.As4(); return binary.BigEndian.Uint32(b[:]) }
	addr := func(v uint32) netip.Addr {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], v)
		return netip.AddrFrom4(b)
	}
	for i := 0; i < 300; i++ {
		bits := 20 + r.Intn(13) // small enough to check every address
		cidr := netip.PrefixFrom(addr(r.Uint32()), bits).Masked()
		var ex []netip.Prefix
		for j := r.Intn(12); j > 0; j-- {
			eb := bits + r.Intn(33-bits)
			ex = append(ex, netip.PrefixFrom(addr(u32(cidr.Addr())+uint32(r.Int63n(1<<(32-bits)))), eb).Masked())
		}
		b := IPBlock{CIDR: cidr, Except: ex}
		got := b.Allowed()
		if len(got) > max(1, len(ex)*(32-bits)) {
			t.Fatalf("%v except %v: %d prefixes, more than the bound", cidr, ex, len(got))
		}
		for k := 1; k < len(got); k++ {
			prev, cur := got[k-1], got[k]
			if u32(prev.Addr())+uint32(1<<(32-prev.Bits())-1) >= u32(cur.Addr()) {
				t.Fatalf("%v except %v: %v and %v overlap or are out of order", cidr, ex, prev, cur)
			}
			if prev.Bits() == cur.Bits() && netip.PrefixFrom(prev.Addr(), prev.Bits()-1).Masked() == netip.PrefixFrom(cur.Addr(), cur.Bits()-1).Masked() {
				t.Fatalf("%v except %v: siblings %v and %v should be one prefix", cidr, ex, prev, cur)
			}
		}
		first := u32(cidr.Addr())
		for v := first; v-first < 1<<(32-bits); v++ {
			a := addr(v)
			want := !slices.ContainsFunc(ex, func(e netip.Prefix) bool { return e.Contains(a) })
			has := slices.ContainsFunc(got, func(p netip.Prefix) bool { return p.Contains(a) })
			if has != want {
				t.Fatalf("%v except %v: %v allowed %v, want %v (got %v)", cidr, ex, a, has, want, got)
			}
			if v == ^uint32(0) {
				break
			}
		}
	}
}

// TestIPBlockManyExcepts: a hostile policy with 10,000 excepts gets one
// ACL per ipBlock whose match grows linearly, with no "!=" in it.
func TestIPBlockManyExcepts(t *testing.T) {
	var ex []string
	for i := 0; i < 10000; i++ { // every other address: nothing merges
		ex = append(ex, fmt.Sprintf("10.200.%d.%d/32", (2*i)/256, (2*i)%256))
	}
	p := np("team-a", "web", networkingv1.NetworkPolicySpec{PodSelector: *sel("app", "web"),
		Ingress: []networkingv1.NetworkPolicyIngressRule{ingress(nil, blockPeer("10.0.0.0/8", ex...))}})
	acls, problems := Desired(p, Inputs{AddressSets: allSets(p)})
	if len(acls) != 1 || len(problems) != 0 {
		t.Fatalf("%d ACLs, problems %v; want 1 ACL", len(acls), problems)
	}
	m := acls[0].Match
	if strings.Contains(m, "!=") {
		t.Errorf("match negates: %.200s…", m)
	}
	// The 10,000 odd addresses, and the rest of 10.0.0.0/8 in at most
	// 24 prefixes per except.
	if n := strings.Count(m, "/"); n < 10000 || n > 10000+24 {
		t.Errorf("match has %d prefixes, want 10,000 and a few more", n)
	}
	for _, want := range []string{"10.200.0.1/32", "10.200.78.31/32", "10.128.0.0/10", "10.0.0.0/9"} {
		if !strings.Contains(m, want+",") && !strings.Contains(m, want+"}") {
			t.Errorf("match lacks %s", want)
		}
	}
	if strings.Contains(m, "10.200.0.0/32") || strings.Contains(m, "10.200.78.30/32") {
		t.Errorf("match allows an except")
	}
}
