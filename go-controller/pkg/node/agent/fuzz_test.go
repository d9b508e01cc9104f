package agent

import (
	"encoding/json"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"testing"

	types100 "github.com/containernetworking/cni/pkg/types/100"

	"github.com/kovn-io/kovn/go-controller/pkg/cni"
	"github.com/kovn-io/kovn/go-controller/pkg/config"
	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/node/podif"
)

// The CNI spec's pattern for a container id.
var containerIDPattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`)

// FuzzPodNetworkInterface: the kovn.io/pod-network annotation as kovn-node
// consumes it on ADD. Whatever ParsePodNetwork accepts, interfaceConfig
// turns into the interface to make, failing only on a bad route (the one
// part the parser does not check); and the CNI result built from it is
// one the runtime can read back. Also: any container id the CNI spec
// admits gives a valid Linux name for the host end of the veth.
func FuzzPodNetworkInterface(f *testing.F) {
	f.Add(`{"ips":["10.128.1.5/24"],"mac":"0a:58:0a:80:01:05","gateway":["10.128.1.1"],"mtu":1400}`, "0123456789abcdef0123")
	f.Add(`{"ips":["10.128.1.5/24","fd00::5/64"],"mac":"0a:58:0a:80:01:05","gateway":["10.128.1.1","fd00::1"],"routes":[{"dest":"10.96.0.0/16","nextHop":"10.128.1.1"}],"mtu":9000}`, "c1")
	f.Add(`{"ips":["10.128.1.5/24"],"mac":"0a:58:0a:80:01:05","routes":[{"dest":"x","nextHop":""}],"mtu":1400}`, "")
	cfg := &config.Node{MTU: 1400, DatapathType: "system"}
	f.Fuzz(func(t *testing.T, annotation, containerID string) {
		if name := podif.HostIfName(containerID); containerIDPattern.MatchString(containerID) {
			if len(name) > 15 || strings.ContainsAny(name, "/ \t\n:") || name == "." || name == ".." {
				t.Fatalf("container id %q gives host interface name %q", containerID, name)
			}
		}
		pn, err := kube.ParsePodNetwork(annotation)
		if err != nil {
			return
		}
		req := &cni.Request{Command: cni.CommandAdd, ContainerID: containerID, Netns: "/var/run/netns/x", IfName: "eth0"}
		c, err := interfaceConfig(req, pn, cfg)
		routesOK := true
		for _, r := range pn.Routes {
			_, e1 := netip.ParsePrefix(r.Dest)
			_, e2 := netip.ParseAddr(r.NextHop)
			routesOK = routesOK && e1 == nil && e2 == nil
		}
		if err != nil {
			if routesOK {
				t.Fatalf("annotation %s accepted by ParsePodNetwork, rejected by interfaceConfig: %v", annotation, err)
			}
			return
		}
		if !routesOK {
			t.Fatalf("bad routes %+v accepted", pn.Routes)
		}
		if len(c.Addrs) != len(pn.IPs) || len(c.Gateways) != len(pn.Gateway) || len(c.Routes) != len(pn.Routes) {
			t.Fatalf("config %+v from %+v", c, pn)
		}
		if c.MTU != pn.MTU || c.MTU < 576 {
			t.Fatalf("mtu %d from annotation mtu %d", c.MTU, pn.MTU)
		}
		made := &podif.Result{HostMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, ContainerMAC: c.MAC}
		res := result(req, c, made)
		if len(res.IPs) != len(c.Addrs) {
			t.Fatalf("result IPs %v for addresses %v", res.IPs, c.Addrs)
		}
		for i, ip := range res.IPs {
			if got, err := netip.ParsePrefix(ip.Address.String()); err != nil || got != c.Addrs[i] {
				t.Fatalf("result address %v for %v", ip.Address.String(), c.Addrs[i])
			}
		}
		data, err := json.Marshal(res)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := types100.NewResult(data); err != nil {
			t.Fatalf("result the runtime cannot read: %v\n%s", err, data)
		}
	})
}
