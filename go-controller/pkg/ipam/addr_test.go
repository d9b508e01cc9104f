package ipam

import (
	"net/netip"
	"testing"
)

var (
	mp = netip.MustParsePrefix
	ma = netip.MustParseAddr
)

func TestMACFromIP(t *testing.T) {
	for _, tc := range []struct{ ip, want string }{
		{"10.128.1.5", "0a:58:0a:80:01:05"},
		{"192.168.255.1", "0a:58:c0:a8:ff:01"},
		{"::ffff:10.128.1.5", "0a:58:0a:80:01:05"},
		{"fd00::a80:105", "0a:58:0a:80:01:05"},
		{"fd00:1:2:3:4:5:6:7", "0a:58:00:06:00:07"},
	} {
		if got := MACFromIP(ma(tc.ip)).String(); got != tc.want {
			t.Errorf("MACFromIP(%s) = %s, want %s", tc.ip, got, tc.want)
		}
	}
	if MACFromIP(netip.Addr{}) != nil {
		t.Error("MACFromIP(zero) must be nil")
	}
}

func TestNthAddrGatewayManagement(t *testing.T) {
	for _, tc := range []struct {
		prefix string
		n      uint64
		want   string // "" = zero Addr
	}{
		{"10.128.1.0/24", 0, "10.128.1.0"},
		{"10.128.1.0/24", 1, "10.128.1.1"},
		{"10.128.1.0/24", 255, "10.128.1.255"},
		{"10.128.1.0/24", 256, ""},
		{"10.128.1.7/24", 2, "10.128.1.2"}, // host bits ignored
		{"10.0.0.0/8", 65536 + 3, "10.1.0.3"},
		{"10.0.0.4/32", 0, "10.0.0.4"},
		{"10.0.0.4/32", 1, ""},
		{"0.0.0.0/0", 1<<32 - 1, "255.255.255.255"},
		{"0.0.0.0/0", 1 << 32, ""},
		{"fd00::/64", 1, "fd00::1"},
		{"fd00::/64", 1<<64 - 1, "fd00::ffff:ffff:ffff:ffff"},
		{"fd00::/120", 256, ""},
		{"::/0", 1<<64 - 1, "::ffff:ffff:ffff:ffff"},
	} {
		got := NthAddr(mp(tc.prefix), tc.n)
		want := netip.Addr{}
		if tc.want != "" {
			want = ma(tc.want)
		}
		if got != want {
			t.Errorf("NthAddr(%s, %d) = %v, want %v", tc.prefix, tc.n, got, want)
		}
	}
	if NthAddr(netip.Prefix{}, 0).IsValid() {
		t.Error("NthAddr(invalid prefix) must be the zero Addr")
	}
	p := mp("10.128.3.0/24")
	if GatewayIP(p) != ma("10.128.3.1") || ManagementIP(p) != ma("10.128.3.2") {
		t.Errorf("gateway/management of %v: %v %v", p, GatewayIP(p), ManagementIP(p))
	}
	p6 := mp("fd00:10:244:1::/64")
	if GatewayIP(p6) != ma("fd00:10:244:1::1") || ManagementIP(p6) != ma("fd00:10:244:1::2") {
		t.Errorf("gateway/management of %v: %v %v", p6, GatewayIP(p6), ManagementIP(p6))
	}
}

func TestLastAddr(t *testing.T) {
	for p, want := range map[string]string{
		"10.0.0.0/29":   "10.0.0.7",
		"10.0.0.4/32":   "10.0.0.4",
		"0.0.0.0/0":     "255.255.255.255",
		"fd00::/64":     "fd00::ffff:ffff:ffff:ffff",
		"::/0":          "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
		"fd00::100/128": "fd00::100",
	} {
		if got := lastAddr(mp(p)); got != ma(want) {
			t.Errorf("lastAddr(%s) = %s, want %s", p, got, want)
		}
	}
}

func TestParseRange(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want "" = error
	}{
		{"10.0.0.10..10.0.0.20", "10.0.0.10..10.0.0.20"},
		{" 10.0.0.10 .. 10.0.0.20 ", "10.0.0.10..10.0.0.20"},
		{"10.0.0.10", "10.0.0.10"},
		{"10.0.0.10..10.0.0.10", "10.0.0.10"},
		{"::ffff:10.0.0.1..10.0.0.2", "10.0.0.1..10.0.0.2"},
		{"fd00::10..fd00::20", "fd00::10..fd00::20"},
		{"10.0.0.20..10.0.0.10", ""},
		{"10.0.0.1..fd00::1", ""},
		{"10.0.0.1..", ""},
		{"10.0.0.1-10.0.0.2", ""},
		{"", ""},
	} {
		r, err := ParseRange(tc.in)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("ParseRange(%q) = %v, want error", tc.in, r)
		case tc.want != "" && err != nil:
			t.Errorf("ParseRange(%q): %v", tc.in, err)
		case tc.want != "" && r.String() != tc.want:
			t.Errorf("ParseRange(%q) = %v, want %s", tc.in, r, tc.want)
		}
	}
}

func TestCheckPrefix(t *testing.T) {
	for _, tc := range []struct {
		p  netip.Prefix
		ok bool
	}{
		{mp("10.128.0.0/14"), true},
		{mp("fd00::/48"), true},
		{mp("10.128.1.0/14"), false},
		{mp("::ffff:10.0.0.0/120"), false},
		{netip.Prefix{}, false},
	} {
		if err := checkPrefix(tc.p); (err == nil) != tc.ok {
			t.Errorf("checkPrefix(%v) = %v, want ok=%v", tc.p, err, tc.ok)
		}
	}
}
