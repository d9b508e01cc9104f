package ipam_test

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/kovn-io/kovn/go-controller/pkg/ipam"
)

func Example() {
	nodes, _ := ipam.NewSubnetAllocator([]netip.Prefix{netip.MustParsePrefix("10.128.0.0/14")}, 24)

	// On restart, replay what the Node objects record before allocating.
	_ = nodes.Reserve("node-a", netip.MustParsePrefix("10.128.0.0/24"))
	subnet, _ := nodes.Allocate("node-b")
	used, total := nodes.Stats()
	fmt.Println("node-b:", subnet, used, "of", total)

	pods, _ := ipam.NewIPAllocator(subnet, ipam.GatewayIP(subnet), ipam.ManagementIP(subnet))
	ip, _ := pods.Allocate("default/web-0")
	fmt.Println("default/web-0:", ip, ipam.MACFromIP(ip))

	err := pods.AllocateStatic("default/web-1", ip)
	fmt.Println(errors.Is(err, ipam.ErrConflict), err)
	// Output:
	// node-b: 10.128.1.0/24 2 of 1024
	// default/web-0: 10.128.1.3 0a:58:0a:80:01:03
	// true ipam: allocate 10.128.1.3 for "default/web-1" in 10.128.1.0/24: already allocated to "default/web-0": held by another owner
}
