package kovntest

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kovn-io/kovn/go-controller/pkg/config"
	nodectl "github.com/kovn-io/kovn/go-controller/pkg/controller/node"
	podctl "github.com/kovn-io/kovn/go-controller/pkg/controller/pod"
	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// Underlay is the physical network of StartUnderlay, the lab's
// (docs/underlay.md): pods on 172.20.0.0/24 behind 172.20.0.1, VLAN 100.
var Underlay = config.Underlay{
	Subnet:  netip.MustParsePrefix("172.20.0.0/24"),
	Gateway: netip.MustParseAddr("172.20.0.1"),
	VLAN:    100,
}

// UnderlayPodObject is p as kovn-controller annotates it in underlay mode:
// an address of the physical subnet (.5 on, in the order of Pods), the
// physical router as its gateway.
func UnderlayPodObject(p Pod) *corev1.Pod {
	obj := PodObject(p)
	i := slices.IndexFunc(Pods, func(x Pod) bool { return x.Key() == p.Key() })
	ip := netip.AddrFrom4([4]byte{172, 20, 0, byte(5 + i)})
	pn, err := podctl.Network(ip, Underlay.Subnet, Underlay.Gateway, mtu).Marshal()
	if err != nil {
		panic(err)
	}
	obj.Annotations[kube.PodNetworkAnnotation] = pn
	return obj
}

// UnderlayObjects are Objects as they are in underlay mode: nodes without
// a subnet (kovn-node still publishes the gateway), pods on the physical
// subnet.
func UnderlayObjects() []runtime.Object {
	var out []runtime.Object
	for _, o := range Objects() {
		switch x := o.(type) {
		case *corev1.Node:
			delete(x.Annotations, kube.NodeSubnetsAnnotation)
		case *corev1.Pod:
			o = UnderlayPodObject(PodByKey(x.Namespace + "/" + x.Name))
		}
		out = append(out, o)
	}
	return out
}

// StartUnderlay runs OVN with the cluster programmed in underlay mode, as
// the node and pod controllers write it: the flat switch with its localnet
// port (VLAN 100) and every pod's port on it; no routers.
func StartUnderlay(t *testing.T) *Cluster {
	t.Helper()
	c := startOVN(t)
	c.apply(t, "load balancer group", func() ([]ovsdb.Operation, error) {
		ops, _, err := nbops.EnsureLoadBalancerGroup(c.NB, &nbdb.LoadBalancerGroup{Name: own.ClusterLBGroup})
		return ops, err
	})
	c.apply(t, "underlay", c.underlayOps)
	c.WaitSB(t, "Port_Binding", "logical_port", own.UnderlayLocalnetPort, "team-a_web-1", "team-a_client", "team-b_x")
	return c
}

func (c *Cluster) underlayOps() ([]ovsdb.Operation, error) {
	lbg, err := nbops.GetLoadBalancerGroup(c.NB, own.ClusterLBGroup)
	if err != nil {
		return nil, err
	}
	var o ops
	ls, ln := nodectl.UnderlayRows(Underlay, lbg.UUID)
	lsUUID := o.uuid(nbops.EnsureSwitch(c.NB, ls))
	o.uuid(nbops.EnsureSwitchPort(c.NB, lsUUID, ln))
	for _, p := range Pods {
		obj := UnderlayPodObject(p)
		pn, err := kube.ParsePodNetwork(obj.Annotations[kube.PodNetworkAnnotation])
		if err != nil {
			return nil, err
		}
		o.uuid(nbops.EnsureSwitchPort(c.NB, lsUUID, podctl.Port(obj, pn)))
	}
	return o.all, o.err
}
