package kube

// Fuzz targets for the annotations kovn parses from Nodes and Pods:
// kovn.io/pod-network, kovn.io/node-subnets and kovn.io/node-gateway.
// Anyone allowed to patch a Node or Pod can write them, so every parser
// must fail cleanly on anything, and what it accepts must satisfy what its
// consumers rely on (they call netip.MustParsePrefix on accepted values).
// Where a formatter exists, parse(format(x)) == x. See docs/fuzzing.md.

import (
	"encoding/json"
	"net"
	"net/netip"
	"reflect"
	"testing"

	"github.com/kovn-io/kovn/go-controller/pkg/ipam"
)

// normPodNetwork makes empty and nil lists equal (JSON omits an empty
// routes list, so it comes back nil).
func normPodNetwork(p *PodNetwork) PodNetwork {
	c := *p
	if len(c.Gateway) == 0 {
		c.Gateway = nil
	}
	if len(c.Routes) == 0 {
		c.Routes = nil
	}
	return c
}

// checkPodNetwork asserts what ParsePodNetwork promises of a value it
// accepted.
func checkPodNetwork(t *testing.T, p *PodNetwork) {
	t.Helper()
	if len(p.IPs) == 0 {
		t.Fatal("accepted without ips")
	}
	for _, s := range p.IPs {
		if pfx, err := netip.ParsePrefix(s); err != nil || pfx.Addr().Is4In6() {
			t.Fatalf("accepted ip %q: %v", s, err)
		}
	}
	if len(p.Addrs()) != len(p.IPs) {
		t.Fatalf("Addrs() %v for ips %v", p.Addrs(), p.IPs)
	}
	if _, err := net.ParseMAC(p.MAC); err != nil {
		t.Fatalf("accepted mac %q: %v", p.MAC, err)
	}
	for _, g := range p.Gateway {
		if a, err := netip.ParseAddr(g); err != nil || a.Is4In6() {
			t.Fatalf("accepted gateway %q: %v", g, err)
		}
	}
	if p.MTU < 576 || p.MTU > 65535 {
		t.Fatalf("accepted mtu %d", p.MTU)
	}
}

// roundTripPodNetwork: format, parse again, compare.
func roundTripPodNetwork(t *testing.T, p *PodNetwork) {
	t.Helper()
	s, err := p.Marshal()
	if err != nil {
		t.Fatalf("Marshal(%+v): %v", p, err)
	}
	q, err := ParsePodNetwork(s)
	if err != nil {
		t.Fatalf("ParsePodNetwork(Marshal(%+v)) = %v", p, err)
	}
	if !reflect.DeepEqual(normPodNetwork(p), normPodNetwork(q)) {
		t.Fatalf("round trip changed the value:\n%+v\n%+v", p, q)
	}
	if s2, _ := q.Marshal(); s2 != s {
		t.Fatalf("Marshal not stable:\n%s\n%s", s, s2)
	}
}

// FuzzParsePodNetwork: any kovn.io/pod-network value. An error, or a
// value whose ips, mac, gateways and mtu are valid (no IPv4-mapped IPv6
// address, which is neither family), and that round-trips.
func FuzzParsePodNetwork(f *testing.F) {
	f.Add(`{"ips":["10.128.1.5/24"],"mac":"0a:58:0a:80:01:05","gateway":["10.128.1.1"],"mtu":1400}`)
	f.Add(`{"ips":["10.128.1.5/24","fd00::5/64"],"mac":"0a:58:0a:80:01:05","gateway":["10.128.1.1","fd00::1"],"routes":[{"dest":"10.96.0.0/16","nextHop":"10.128.1.1"}],"mtu":9000}`)
	f.Add(`{"ips":[],"mac":"","mtu":0}`)
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePodNetwork(s)
		if err != nil {
			if p != nil {
				t.Fatalf("error %v with a value", err)
			}
			return
		}
		if !json.Valid([]byte(s)) {
			t.Fatalf("accepted invalid JSON %q", s)
		}
		checkPodNetwork(t, p)
		roundTripPodNetwork(t, p)
	})
}

// addrFrom makes an address from up to 16 bytes: 4 give IPv4, anything
// else IPv6 (padded).
func addrFrom(b []byte) netip.Addr {
	if len(b) == 4 {
		return netip.AddrFrom4([4]byte(b))
	}
	var a [16]byte
	copy(a[:], b)
	return netip.AddrFrom16(a)
}

// FuzzPodNetworkRoundTrip builds a valid PodNetwork, as the pod controller
// writes it, from fuzz values: ParsePodNetwork(Marshal(x)) == x. (An
// IPv4-mapped IPv6 address or gateway is not valid: it must be rejected.)
func FuzzPodNetworkRoundTrip(f *testing.F) {
	f.Add([]byte{10, 128, 1, 5}, uint8(24), []byte{0x0a, 0x58, 10, 128, 1, 5}, []byte{10, 128, 1, 1}, uint16(1400), []byte{10, 96, 0, 0}, uint8(16))
	f.Add([]byte{0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5}, uint8(64), []byte{2, 0, 0, 0, 0, 1}, []byte{}, uint16(0), []byte{}, uint8(0))
	f.Fuzz(func(t *testing.T, ip []byte, bits uint8, mac []byte, gw []byte, mtu uint16, route []byte, routeBits uint8) {
		if len(ip) > 16 || len(gw) > 16 || len(route) > 16 {
			return
		}
		a := addrFrom(ip)
		hw := make(net.HardwareAddr, 6)
		copy(hw, mac)
		x := &PodNetwork{
			IPs: []string{netip.PrefixFrom(a, int(bits)%(a.BitLen()+1)).String()},
			MAC: hw.String(),
			MTU: 576 + int(mtu)%(65535-576+1),
		}
		if len(gw) > 0 {
			x.Gateway = []string{addrFrom(gw).String()}
		}
		if len(route) > 0 {
			r := addrFrom(route)
			x.Routes = []Route{{Dest: netip.PrefixFrom(r, int(routeBits)%(r.BitLen()+1)).Masked().String(), NextHop: a.String()}}
		}
		if a.Is4In6() || (len(gw) > 0 && addrFrom(gw).Is4In6()) {
			// Neither family: rejected (kovn-node would plumb it as IPv6).
			if _, err := ParsePodNetwork(mustMarshal(t, x)); err == nil {
				t.Fatalf("IPv4-mapped address accepted: %+v", x)
			}
			return
		}
		checkPodNetwork(t, x)
		roundTripPodNetwork(t, x)
	})
}

func mustMarshal(t *testing.T, p *PodNetwork) string {
	t.Helper()
	s, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// checkSubnets asserts what consumers of kovn.io/node-subnets rely on:
// valid, masked prefixes; the gateway and management addresses ipam
// derives are inside the subnet or the zero Addr (a /31 or /32 has none);
// and the pod controller's allocator construction does not panic.
func checkSubnets(t *testing.T, subnets []netip.Prefix) {
	t.Helper()
	for _, p := range subnets {
		if !p.IsValid() || p.Masked() != p {
			t.Fatalf("accepted prefix %v (masked %v)", p, p.Masked())
		}
		gw, mgmt := ipam.GatewayIP(p), ipam.ManagementIP(p)
		for _, a := range []netip.Addr{gw, mgmt} {
			if a.IsValid() && !p.Contains(a) {
				t.Fatalf("derived address %v outside %v", a, p)
			}
		}
		if _, err := ipam.NewIPAllocator(p, gw, mgmt); err == nil && (!gw.IsValid() || !mgmt.IsValid()) {
			t.Fatalf("allocator for %v built without gateway/management addresses", p)
		}
	}
}

// FuzzParseNodeSubnets: any kovn.io/node-subnets value. An error, or valid
// masked prefixes that MarshalNodeSubnets turns back into the same list.
func FuzzParseNodeSubnets(f *testing.F) {
	f.Add(`["10.128.1.0/24"]`)
	f.Add(`["10.128.1.0/24","fd00:10:128:1::/64"]`)
	f.Add(`["10.128.1.1/24"]`)
	f.Add(`[]`)
	f.Add(`null`)
	f.Fuzz(func(t *testing.T, s string) {
		subnets, err := ParseNodeSubnets(s)
		if err != nil {
			if subnets != nil {
				t.Fatalf("error %v with a value", err)
			}
			return
		}
		checkSubnets(t, subnets)
		again, err := ParseNodeSubnets(MarshalNodeSubnets(subnets))
		if err != nil || !slicesEqualPrefix(again, subnets) {
			t.Fatalf("round trip of %v: %v, %v", subnets, again, err)
		}
	})
}

func slicesEqualPrefix(a, b []netip.Prefix) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// FuzzNodeSubnetsRoundTrip: any list of masked prefixes survives
// MarshalNodeSubnets and ParseNodeSubnets. Bytes: per prefix, a length
// byte (bit 7: IPv6, the rest the prefix length) then 4 or 16 address
// bytes.
func FuzzNodeSubnetsRoundTrip(f *testing.F) {
	f.Add([]byte{24, 10, 128, 1, 0})
	f.Add([]byte{24, 10, 128, 1, 0, 0x80 | 64, 0xfd, 0, 0, 0x10, 0, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{32, 10, 0, 0, 1, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var want []netip.Prefix
		for len(b) > 0 {
			n := 4
			if b[0]&0x80 != 0 {
				n = 16
			}
			if len(b) < 1+n {
				break
			}
			a := addrFrom(b[1 : 1+n])
			want = append(want, netip.PrefixFrom(a, int(b[0]&0x7f)%(a.BitLen()+1)).Masked())
			b = b[1+n:]
		}
		got, err := ParseNodeSubnets(MarshalNodeSubnets(want))
		if err != nil || len(got) != len(want) || !slicesEqualPrefix(got, want) {
			t.Fatalf("ParseNodeSubnets(MarshalNodeSubnets(%v)) = %v, %v", want, got, err)
		}
		checkSubnets(t, got)
	})
}

// FuzzParseNodeGateway: any kovn.io/node-gateway value. An error, or a
// value with a chassis, an IP the controllers' MustParsePrefix accepts, a
// next hop and a MAC, which round-trips through Marshal.
func FuzzParseNodeGateway(f *testing.F) {
	f.Add(`{"chassisID":"6a8e1f0c-2b1d-4c57-9f0e-6d2c5b3a1e77","ip":"172.18.0.2/16","nextHop":"172.18.0.1","mac":"02:42:ac:12:00:02","interface":"eth0"}`)
	f.Add(`{"chassisID":"c","ip":"fd00::2/64","nextHop":"fd00::1","mac":"02:42:ac:12:00:02"}`)
	f.Add(`{"chassisID":"","ip":"172.18.0.2","nextHop":"x","mac":""}`)
	f.Fuzz(func(t *testing.T, s string) {
		g, err := ParseNodeGateway(s)
		if err != nil {
			if g != nil {
				t.Fatalf("error %v with a value", err)
			}
			return
		}
		if g.ChassisID == "" {
			t.Fatal("accepted without chassisID")
		}
		_ = netip.MustParsePrefix(g.IP) // what the node and service controllers do
		if _, err := netip.ParseAddr(g.NextHop); err != nil {
			t.Fatalf("accepted nextHop %q", g.NextHop)
		}
		if _, err := net.ParseMAC(g.MAC); err != nil {
			t.Fatalf("accepted mac %q", g.MAC)
		}
		again, err := ParseNodeGateway(g.Marshal())
		if err != nil || !reflect.DeepEqual(again, g) {
			t.Fatalf("round trip of %+v: %+v, %v", g, again, err)
		}
	})
}
