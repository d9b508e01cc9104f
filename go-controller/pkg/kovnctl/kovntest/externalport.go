package kovntest

import (
	"net/netip"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	epctl "github.com/kovn-io/kovn/go-controller/pkg/controller/externalport"
	nodectl "github.com/kovn-io/kovn/go-controller/pkg/controller/node"
	policyctl "github.com/kovn-io/kovn/go-controller/pkg/controller/policy"
	"github.com/kovn-io/kovn/go-controller/pkg/ipam"
	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// ExternalPortSubnet is kovn_external's subnet (overlay mode), as the node
// controller would carve it from the cluster CIDR.
var ExternalPortSubnet = netip.MustParsePrefix("10.128.250.0/24")

// ExternalPortObject is an ExternalPort of namespace ns bound on chassis,
// as created by its owner: no status yet.
func ExternalPortObject(ns, name, chassis string, labels map[string]string) *kube.ExternalPort {
	return &kube.ExternalPort{
		TypeMeta:   metav1.TypeMeta{APIVersion: kube.ExternalPortAPIVersion, Kind: kube.ExternalPortKind},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels, Generation: 1},
		Spec:       kube.ExternalPortSpec{Chassis: chassis},
	}
}

// AddExternalPort programs ep at ip as kovn-controller does in overlay
// mode — kovn_external on the cluster router (node controller), the port
// and its namespace address set membership (external port controller),
// the port in the groups of the policies selecting its labels (policy
// controller) — and returns ep with the status the controller writes.
func (c *Cluster) AddExternalPort(t *testing.T, ep *kube.ExternalPort, ip netip.Addr) *kube.ExternalPort {
	t.Helper()
	mac, err := epctl.MAC(ep, ip)
	if err != nil {
		t.Fatal(err)
	}
	c.apply(t, "external port "+ep.Name, func() ([]ovsdb.Operation, error) {
		var o ops
		lsUUID := ""
		if ls, err := nbops.GetSwitch(c.NB, own.ExternalPortSwitch); err == nil {
			lsUUID = ls.UUID
		} else {
			lsUUID = c.externalSwitchOps(&o)
		}
		o.uuid(nbops.EnsureSwitchPort(c.NB, lsUUID, epctl.Port(ep, ip, mac)))
		o.add(nbops.AddressSetAdd(c.NB, own.NamespaceAddressSet(ep.Namespace, "v4"), ip.String()))
		return o.all, o.err
	})
	c.apply(t, "policy members "+ep.Name, func() ([]ovsdb.Operation, error) {
		lsp, err := nbops.GetSwitchPort(c.NB, own.ExternalPortPort(ep.Namespace, ep.Name))
		if err != nil {
			return nil, err
		}
		np := Policy()
		if np.Namespace != ep.Namespace || !policyctl.Compile(np).PodSelector.Matches(labels.Set(ep.Labels)) {
			return nil, nil
		}
		var o ops
		for _, name := range []string{own.PolicyPortGroup(np.Namespace, np.Name), own.IsolationPortGroup(np.Namespace, "ingress")} {
			pg, err := nbops.GetPortGroup(c.NB, name)
			if err != nil {
				return nil, err
			}
			o.add(nbops.PortGroupAddPorts(c.NB, pg.UUID, lsp.UUID))
		}
		return o.all, o.err
	})
	net := epctl.Network{Switch: own.ExternalPortSwitch, Subnet: ExternalPortSubnet, Gateway: ipam.GatewayIP(ExternalPortSubnet), MTU: mtu}
	out := *ep
	out.Status = epctl.Status(ep, net, ip, mac)
	meta.SetStatusCondition(&out.Status.Conditions, metav1.Condition{Type: kube.ExternalPortReady, Status: metav1.ConditionTrue,
		Reason: "Programmed", Message: "address assigned, port in OVN", ObservedGeneration: ep.Generation})
	return &out
}

// externalSwitchOps adds kovn_external on the cluster router to o and
// returns the switch's (named) UUID.
func (c *Cluster) externalSwitchOps(o *ops) string {
	lbg, err := nbops.GetLoadBalancerGroup(c.NB, own.ClusterLBGroup)
	if err != nil {
		o.add(nil, err)
		return ""
	}
	cr, err := nbops.GetRouter(c.NB, own.ClusterRouter)
	if err != nil {
		o.add(nil, err)
		return ""
	}
	r := nodectl.ExternalSwitchRows(ExternalPortSubnet, lbg.UUID)
	ls := o.uuid(nbops.EnsureSwitch(c.NB, r.Switch))
	o.uuid(nbops.EnsureSwitchPort(c.NB, ls, r.SwitchToRtr))
	o.uuid(nbops.EnsureRouterPort(c.NB, cr.UUID, r.RouterPort))
	return ls
}
