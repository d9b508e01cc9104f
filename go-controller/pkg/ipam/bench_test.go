package ipam

import (
	"fmt"
	"testing"
)

func owners(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("namespace-%d/pod-%d", i%17, i)
	}
	return out
}

// BenchmarkAllocate1000 fills most of a node's /22: the cost of building
// an allocator and allocating 1000 pods into it.
func BenchmarkAllocate1000(b *testing.B) {
	subnet := mp("10.128.4.0/22")
	os := owners(1000)
	for b.Loop() {
		a, err := NewIPAllocator(subnet, GatewayIP(subnet), ManagementIP(subnet))
		if err != nil {
			b.Fatal(err)
		}
		for _, o := range os {
			if _, err := a.Allocate(o); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkChurnNearlyFull measures steady-state pod churn in a /22 that
// is 98% full: every allocation has to scan past long runs of used
// addresses, the allocator's worst case in practice.
func BenchmarkChurnNearlyFull(b *testing.B) {
	subnet := mp("10.128.4.0/22")
	a, err := NewIPAllocator(subnet, GatewayIP(subnet), ManagementIP(subnet))
	if err != nil {
		b.Fatal(err)
	}
	os := owners(1000)
	for _, o := range os {
		if _, err := a.Allocate(o); err != nil {
			b.Fatal(err)
		}
	}
	i := 0
	for b.Loop() {
		o := os[i%len(os)]
		a.Release(o)
		if _, err := a.Allocate(o); err != nil {
			b.Fatal(err)
		}
		i += 7
	}
}
