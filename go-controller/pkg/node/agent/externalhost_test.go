package agent

import (
	"context"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	"github.com/vishvananda/netlink"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"

	"github.com/kovn-io/kovn/go-controller/pkg/config"
	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/node/extport"
	"github.com/kovn-io/kovn/go-controller/pkg/node/ovs"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/vswitchd"
	"github.com/kovn-io/kovn/go-controller/pkg/testenv"
)

// TestRunExternalHost runs the agent of a non-Kubernetes host against an
// in-memory Open_vSwitch database (the test plays ovs-vswitchd and
// ovn-controller) and a fake API, in a private network namespace where a
// veth stands for the internal port ovs-vswitchd would create.
func TestRunExternalHost(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mem := testenv.StartInMemoryOVS(t)
	ops, err := mem.Client.Create(&vswitchd.OpenvSwitch{UUID: "root"})
	if err == nil {
		_, err = mem.Client.Transact(ctx, ops...)
	}
	if err != nil {
		t.Fatal(err)
	}
	o, err := ovs.Connect(ctx, mem.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if err := o.EnsureBridge(ctx, "br-int", "", nil); err != nil { // ovn-controller's job
		t.Fatal(err)
	}
	go mem.PlayOVNController(ctx)

	ep := &kube.ExternalPort{ObjectMeta: metav1.ObjectMeta{Namespace: "infra", Name: "host-a"}, Spec: kube.ExternalPortSpec{Chassis: "host-a"},
		Status: kube.ExternalPortStatus{IPs: []string{"10.128.250.5/24"}, MAC: "0a:58:0a:80:fa:05", Gateway: "10.128.250.1",
			Routes: []string{"10.128.0.0/14", "10.96.0.0/16"}, MTU: 1400, IfaceID: "ep_infra_host-a"}}
	u, err := ep.Unstructured()
	if err != nil {
		t.Fatal(err)
	}
	dc := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{kube.ExternalPortResource(): "ExternalPortList"}, u)
	cfg := &config.Node{NodeName: "host-a", OVSDB: mem.Addr, OVNRemote: "tcp:192.0.2.1:6642", EncapIP: "192.0.2.10",
		DatapathType: "system", GatewayInterface: "eth0", InstallTimeout: 5 * time.Second, ExternalHost: true, HostPort: "infra/host-a", HostPortInterface: "kovn-host0"}
	m := NewMetrics(nil)

	netns, err := testutils.NewNS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = netns.Close(); _ = testutils.UnmountNS(netns) })
	done := make(chan error, 1)
	go func() {
		done <- netns.Do(func(ns.NetNS) error {
			if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "kovn-host0"}, PeerName: "peer0"}); err != nil {
				return err
			}
			if err := netlink.LinkSetUp(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "peer0"}}); err != nil {
				return err
			}
			if err := uplink(); err != nil {
				return fmt.Errorf("uplink: %w", err)
			}
			return RunExternalHost(ctx, cfg, dc, m)
		})
	}()
	inNS := func() error {
		return netns.Do(func(ns.NetNS) error { return hostPortRoutes("kovn-host0", 2) })
	}
	testenv.WaitFor(t, 10*time.Second, func() error {
		select {
		case err := <-done:
			t.Fatalf("RunExternalHost returned early: %v", err)
		default:
		}
		if !m.Ready() {
			return fmt.Errorf("not ready")
		}
		return inNS()
	})
	if id, err := o.ChassisID(ctx); err != nil || id != "host-a" {
		t.Errorf("chassis %q %v", id, err)
	}
	ports, _ := o.Ports(ctx, "br-int")
	var found bool
	for _, p := range ports {
		found = found || (p.Name == "kovn-host0" && p.Type == "internal" && p.ExternalIDs[extport.KeyExternalPort] == "ep_infra_host-a")
	}
	if !found {
		t.Errorf("no internal port kovn-host0 for the host port: %+v", ports)
	}

	// The userspace datapath bounces its taps, and the kernel drops the
	// routes through them: they come back.
	if err := netns.Do(func(ns.NetNS) error {
		l, err := netlink.LinkByName("kovn-host0")
		if err == nil {
			err = netlink.LinkSetDown(l)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, inNS)

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("RunExternalHost did not return after its context ended")
	}
}

// uplink makes the host's NIC eth0 (192.0.2.10/24, default route via .1)
// and, playing ovs-vswitchd, the kernel device of br-ex, into which the
// agent moves the NIC's address and route.
func uplink() error {
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "eth0p"}); err != nil {
		return err
	}
	// A veth, as this kernel may lack the dummy module.
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "br-ex"}, PeerName: "br-exp"}); err != nil {
		return err
	}
	for _, n := range []string{"eth0", "eth0p", "br-ex", "br-exp"} {
		if err := netlink.LinkSetUp(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: n}}); err != nil {
			return err
		}
	}
	eth0, err := netlink.LinkByName("eth0")
	if err != nil {
		return err
	}
	addr, _ := netlink.ParseAddr("192.0.2.10/24")
	if err := netlink.AddrAdd(eth0, addr); err != nil {
		return err
	}
	return netlink.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: net.ParseIP("192.0.2.1")})
}

// hostPortRoutes checks that link is up and has n routes through a gateway.
func hostPortRoutes(link string, n int) error {
	l, err := netlink.LinkByName(link)
	if err != nil {
		return err
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		return fmt.Errorf("%s is down", link)
	}
	routes, err := netlink.RouteList(l, netlink.FAMILY_V4)
	if err != nil {
		return err
	}
	got := 0
	for _, r := range routes {
		if r.Gw != nil {
			got++
		}
	}
	if got != n {
		return fmt.Errorf("%d routes through a gateway on %s, want %d", got, link, n)
	}
	return nil
}
