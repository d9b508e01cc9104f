package ipam

import (
	"errors"
	"math"
	"net/netip"
	"strings"
	"testing"
)

func TestNewIPAllocator(t *testing.T) {
	r := func(s string) Range {
		rg, err := ParseRange(s)
		if err != nil {
			t.Fatal(err)
		}
		return rg
	}
	for _, tc := range []struct {
		name        string
		subnet      string
		first, last string // empty: whole subnet via NewIPAllocator
		addrs       []string
		ranges      []Range
		wantFree    int    // when no error
		wantErr     string // substring
	}{
		{name: "v4 /29", subnet: "10.0.0.0/29", wantFree: 6},
		{name: "v4 /29 gw+mgmt", subnet: "10.0.0.0/29", addrs: []string{"10.0.0.1", "10.0.0.2"}, wantFree: 4},
		{name: "v4 /24 gw+mgmt", subnet: "10.128.1.0/24", addrs: []string{"10.128.1.1", "10.128.1.2"}, wantFree: 252},
		{name: "duplicate and redundant excludes", subnet: "10.0.0.0/29", addrs: []string{"10.0.0.1", "10.0.0.1", "10.0.0.0", "10.0.0.7"}, wantFree: 5},
		{name: "4in6 exclude", subnet: "10.0.0.0/29", addrs: []string{"::ffff:10.0.0.1"}, wantFree: 5},
		{name: "v4 /30", subnet: "10.0.0.0/30", wantFree: 2},
		{name: "v6 /126 has no broadcast", subnet: "fd00::/126", wantFree: 3},
		{name: "v6 /64 saturates", subnet: "fd00::/64", wantFree: math.MaxInt},
		{name: "v6 /0", subnet: "::/0", wantFree: math.MaxInt},
		{name: "range", subnet: "10.0.0.0/24", first: "10.0.0.10", last: "10.0.0.20", wantFree: 11},
		{name: "range covering network", subnet: "10.0.0.0/24", first: "10.0.0.0", last: "10.0.0.3", wantFree: 3},
		{name: "range with excludes across its edges", subnet: "10.0.0.0/24", first: "10.0.0.10", last: "10.0.0.20",
			ranges: []Range{r("10.0.0.5..10.0.0.11"), r("10.0.0.15..10.0.0.16"), r("10.0.0.16..10.0.0.30"), r("10.0.0.100")}, wantFree: 3},
		{name: "single-address range", subnet: "10.0.0.0/24", first: "10.0.0.9", last: "10.0.0.9", wantFree: 1},

		{name: "invalid subnet", subnet: "", wantErr: "invalid prefix"},
		{name: "host bits set", subnet: "10.0.0.1/24", wantErr: "host bits set"},
		{name: "v4 /31", subnet: "10.0.0.0/31", wantErr: "no usable addresses"},
		{name: "v4 /32", subnet: "10.0.0.0/32", wantErr: "no usable addresses"},
		{name: "all excluded", subnet: "10.0.0.0/30", addrs: []string{"10.0.0.1", "10.0.0.2"}, wantErr: "no usable addresses"},
		{name: "exclude outside subnet", subnet: "10.0.0.0/29", addrs: []string{"10.0.1.1"}, wantErr: "not inside the subnet"},
		{name: "exclude of other family", subnet: "10.0.0.0/29", addrs: []string{"fd00::1"}, wantErr: "not inside the subnet"},
		{name: "exclude zero addr", subnet: "10.0.0.0/29", addrs: []string{""}, wantErr: "invalid"},
		{name: "exclude reversed", subnet: "10.0.0.0/24", first: "10.0.0.1", last: "10.0.0.9",
			ranges: []Range{{ma("10.0.0.5"), ma("10.0.0.3")}}, wantErr: "ends before"},
		{name: "range outside subnet", subnet: "10.0.0.0/24", first: "10.0.0.10", last: "10.0.1.20", wantErr: "not inside the subnet"},
		{name: "range reversed", subnet: "10.0.0.0/24", first: "10.0.0.20", last: "10.0.0.10", wantErr: "ends before"},
		{name: "range mixed family", subnet: "10.0.0.0/24", first: "10.0.0.20", last: "fd00::1", wantErr: "mixes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var subnet netip.Prefix
			if tc.subnet != "" {
				subnet = mp(tc.subnet)
			}
			var a *IPAllocator
			var err error
			if tc.first == "" {
				var ex []netip.Addr
				for _, s := range tc.addrs {
					var ip netip.Addr
					if s != "" {
						ip = ma(s)
					}
					ex = append(ex, ip)
				}
				a, err = NewIPAllocator(subnet, ex...)
			} else {
				a, err = NewIPAllocatorRange(subnet, ma(tc.first), ma(tc.last), tc.ranges...)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := a.Free(); got != tc.wantFree {
				t.Errorf("Free() = %d, want %d", got, tc.wantFree)
			}
		})
	}
}

func TestExhaustSlash29(t *testing.T) {
	subnet := mp("10.0.0.0/29")
	a, err := NewIPAllocator(subnet, GatewayIP(subnet), ManagementIP(subnet))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range []string{"a", "b", "c", "d"} {
		ip, err := a.Allocate(o)
		if err != nil {
			t.Fatalf("Allocate(%s): %v", o, err)
		}
		got = append(got, ip.String())
	}
	if want := "10.0.0.3 10.0.0.4 10.0.0.5 10.0.0.6"; strings.Join(got, " ") != want {
		t.Errorf("allocated %v, want %s", got, want)
	}
	_, err = a.Allocate("e")
	if !errors.Is(err, ErrExhausted) {
		t.Fatalf("5th Allocate: %v, want ErrExhausted", err)
	}
	for _, s := range []string{"10.0.0.0/29", `"e"`, "4 usable"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %s", err, s)
		}
	}
	if a.Free() != 0 || a.Used() != 4 {
		t.Errorf("Free()=%d Used()=%d", a.Free(), a.Used())
	}
	// Holders still get their address back when the pool is full.
	if ip, err := a.Allocate("b"); err != nil || ip != ma("10.0.0.4") {
		t.Errorf("Allocate(b) on full pool = %v, %v", ip, err)
	}
}

func TestAllocateStaticErrors(t *testing.T) {
	subnet := mp("10.0.0.0/24")
	a, err := NewIPAllocatorRange(subnet, ma("10.0.0.0"), ma("10.0.0.200"),
		Range{GatewayIP(subnet), ManagementIP(subnet)}, Range{ma("10.0.0.50"), ma("10.0.0.59")})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.AllocateStatic("pod-a", ma("10.0.0.10")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		owner, ip string
		want      error
		msg       string
	}{
		{"pod-a", "10.0.0.10", nil, ""},
		{"pod-a", "::ffff:10.0.0.10", nil, ""},
		{"pod-b", "10.0.0.10", ErrConflict, `already allocated to "pod-a"`},
		{"pod-a", "10.0.0.11", ErrOwnerHasOther, "holds 10.0.0.10"},
		{"pod-b", "10.0.0.0", ErrOutOfRange, "network address"},
		{"pod-b", "10.0.0.255", ErrOutOfRange, "broadcast address"},
		{"pod-b", "10.0.0.1", ErrOutOfRange, "excluded (10.0.0.1..10.0.0.2)"},
		{"pod-b", "10.0.0.55", ErrOutOfRange, "excluded (10.0.0.50..10.0.0.59)"},
		{"pod-b", "10.0.0.201", ErrOutOfRange, "outside the allocatable range"},
		{"pod-b", "10.0.1.5", ErrOutOfRange, "not in subnet 10.0.0.0/24"},
		{"pod-b", "fd00::5", ErrOutOfRange, "not in subnet"},
		{"pod-b", "", ErrOutOfRange, "not a valid address"},
		{"pod-a", "10.0.0.0", ErrOutOfRange, "network"}, // range is checked first
	} {
		var ip netip.Addr
		if tc.ip != "" {
			ip = ma(tc.ip)
		}
		err := a.AllocateStatic(tc.owner, ip)
		if tc.want == nil {
			if err != nil {
				t.Errorf("AllocateStatic(%s, %s): %v", tc.owner, tc.ip, err)
			}
			continue
		}
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("AllocateStatic(%s, %s) = %v; want %v containing %q", tc.owner, tc.ip, err, tc.want, tc.msg)
		}
	}
	if _, err := a.Allocate(""); err == nil {
		t.Error("Allocate with empty owner must fail")
	}
	if err := a.AllocateStatic("", ma("10.0.0.20")); err == nil {
		t.Error("AllocateStatic with empty owner must fail")
	}
	if a.Used() != 1 {
		t.Errorf("failed calls changed state: Used() = %d", a.Used())
	}
}

func TestReleaseAndLookups(t *testing.T) {
	a, err := NewIPAllocator(mp("10.0.0.0/29"))
	if err != nil {
		t.Fatal(err)
	}
	ip, _ := a.Allocate("a")
	if o, ok := a.Owner(ip); !ok || o != "a" || !a.Has(ip) {
		t.Errorf("Owner(%v) = %q, %v", ip, o, ok)
	}
	if got, ok := a.Get("a"); !ok || got != ip {
		t.Errorf("Get(a) = %v, %v", got, ok)
	}
	if a.ReleaseIP(ip, "b") {
		t.Error("ReleaseIP by a non-holder succeeded")
	}
	if a.ReleaseIP(ma("10.0.0.0"), "a") || a.ReleaseIP(netip.Addr{}, "a") {
		t.Error("ReleaseIP of an unusable address succeeded")
	}
	if !a.ReleaseIP(ip, "a") || a.Has(ip) {
		t.Error("ReleaseIP by the holder failed")
	}
	if _, ok := a.Release("a"); ok {
		t.Error("Release after ReleaseIP found something")
	}
	ip2, _ := a.Allocate("b")
	if got, ok := a.Release("b"); !ok || got != ip2 {
		t.Errorf("Release(b) = %v, %v; want %v", got, ok, ip2)
	}
	if _, ok := a.Owner(ma("10.1.0.1")); ok {
		t.Error("Owner of a foreign address")
	}
	if a.Contains(ma("10.0.0.7")) || !a.Contains(ma("10.0.0.6")) || a.Contains(ma("::ffff:10.0.0.0")) {
		t.Error("Contains")
	}
}

func TestMove(t *testing.T) {
	a, err := NewIPAllocator(netip.MustParsePrefix("10.0.0.0/29"))
	if err != nil {
		t.Fatal(err)
	}
	ip, _ := a.Allocate("tmp")
	if _, err := a.Allocate("other"); err != nil {
		t.Fatal(err)
	}
	if err := a.Move("tmp", "other"); !errors.Is(err, ErrOwnerHasOther) {
		t.Fatalf("move onto an owner that holds one: %v", err)
	}
	if err := a.Move("tmp", "final"); err != nil {
		t.Fatal(err)
	}
	if o, _ := a.Owner(ip); o != "final" {
		t.Errorf("owner of %v = %q, want final", ip, o)
	}
	if _, held := a.Get("tmp"); held {
		t.Error("tmp still holds an address")
	}
	if err := a.Move("tmp", "x"); err == nil {
		t.Error("moving from an owner with no address succeeded")
	}
}
