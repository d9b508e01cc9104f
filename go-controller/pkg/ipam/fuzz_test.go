package ipam

import "testing"

// FuzzIPAllocator decodes a pool configuration from the first 5 bytes and
// then applies 2-byte operations, checking every result against the
// brute-force model and the invariants after each step.
//
// Config: b0 bit0 IPv6, bit1 use range b1..b2, bit2 exclude b3..b3+b4%8,
// bit3 exclude gateway+management. Op: b0%4 selects Allocate,
// AllocateStatic, Release, ReleaseIP; b0>>2 the owner; b1 the address
// offset from the network address (32-35 fall outside the subnet).
func FuzzIPAllocator(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 4, 0, 8, 0, 2, 0, 0, 0})
	f.Add([]byte{1, 0, 0, 0, 0, 1, 5, 5, 5, 2, 5, 0, 0, 3, 5})
	f.Add([]byte{2 | 4 | 8, 3, 9, 5, 2, 0, 0, 4, 0, 8, 0, 12, 0, 16, 0, 20, 0, 24, 0, 2, 0, 0, 0})
	f.Add([]byte{1 | 2 | 4, 30, 1, 10, 7, 1, 31, 5, 31, 2, 0, 1, 20, 3, 20, 0, 0})
	f.Add([]byte{8, 0, 0, 0, 0, 1, 33, 1, 0, 1, 1, 1, 31, 5, 1, 3, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 5 {
			return
		}
		cfg, ops := data[:5], data[5:]
		subnet := mp("10.0.0.0/27")
		if cfg[0]&1 != 0 {
			subnet = mp("fd00::/123")
		}
		first, last := subnet.Addr(), lastAddr(subnet)
		if cfg[0]&2 != 0 {
			lo, hi := uint64(cfg[1]%32), uint64(cfg[2]%32)
			first, last = NthAddr(subnet, min(lo, hi)), NthAddr(subnet, max(lo, hi))
		}
		var exclude []Range
		if cfg[0]&4 != 0 {
			lo := uint64(cfg[3] % 32)
			exclude = append(exclude, Range{NthAddr(subnet, lo), NthAddr(subnet, min(lo+uint64(cfg[4]%8), 31))})
		}
		if cfg[0]&8 != 0 {
			exclude = append(exclude, Range{GatewayIP(subnet), ManagementIP(subnet)})
		}
		usable := usableAddrs(subnet, first, last, exclude)
		a, err := NewIPAllocatorRange(subnet, first, last, exclude...)
		if len(usable) == 0 {
			if err == nil {
				t.Fatalf("allocator over %v %v..%v excluding %v has no usable address but was created", subnet, first, last, exclude)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		m := newIPModel(a, usable)
		m.checkContains(t)
		owners := []string{"a", "b", "c", "d", "e", "f", "ns/g", "uid-h"}
		for ; len(ops) >= 2; ops = ops[2:] {
			o := owners[int(ops[0]>>2)%len(owners)]
			ip := u128Addr(addrU128(subnet.Addr()).add(u64(uint64(ops[1]%36))), subnet.Addr().Is4())
			switch ops[0] % 4 {
			case 0:
				m.allocate(t, o)
			case 1:
				m.allocateStatic(t, o, ip)
			case 2:
				m.release(t, o)
			case 3:
				m.releaseIP(t, ip, o)
			}
			m.check(t, owners)
		}
	})
}

// ensure the fuzz decoder's out-of-subnet offsets really leave the subnet.
func TestFuzzOffsetsLeaveSubnet(t *testing.T) {
	for _, s := range []string{"10.0.0.0/27", "fd00::/123"} {
		p := mp(s)
		ip := u128Addr(addrU128(p.Addr()).add(u64(35)), p.Addr().Is4())
		if p.Contains(ip) || ip.Is4() != p.Addr().Is4() {
			t.Errorf("offset 35 of %v = %v", p, ip)
		}
	}
}
