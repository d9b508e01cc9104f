// Package kovntest builds, for kovnctl's tests, a small cluster the way
// kovn programs it: Kubernetes objects for a fake clientset, and the NB
// rows kovn's own controllers would write for them, computed by the
// controllers' pure Desired functions and applied with nbops, against a
// real NB/SB/northd from testenv. For tests only: like testenv, never
// import it from production code.
package kovntest

import (
	"fmt"
	"net/netip"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	podctl "github.com/kovn-io/kovn/go-controller/pkg/controller/pod"
	"github.com/kovn-io/kovn/go-controller/pkg/ipam"
	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/node/heartbeat"
)

// Node is a test node: its subnet and gateway.
type Node struct {
	Name    string
	Subnet  netip.Prefix
	Chassis string
	NodeIP  string // CIDR, on br-ex
	JoinIP  netip.Addr
}

// Pod is a test pod.
type Pod struct {
	Namespace, Name, Node string
	IP                    netip.Addr
	Labels                map[string]string
}

// Key is ns/name.
func (p Pod) Key() string { return p.Namespace + "/" + p.Name }

// The cluster: two nodes; team-a/web-1 (app=web) and team-a/client
// (app=client) and team-b/x. team-a/allow-web lets app=client pods of
// team-a reach app=web on TCP 80, so web-1 is isolated for ingress;
// Service team-a/web (10.96.0.10:80) goes to web-1:8080.
var (
	Nodes = []Node{
		{Name: "n1", Subnet: netip.MustParsePrefix("10.128.1.0/24"), Chassis: "chassis-n1", NodeIP: "172.18.0.11/24", JoinIP: netip.MustParseAddr("100.64.0.2")},
		{Name: "n2", Subnet: netip.MustParsePrefix("10.128.2.0/24"), Chassis: "chassis-n2", NodeIP: "172.18.0.12/24", JoinIP: netip.MustParseAddr("100.64.0.3")},
	}
	Pods = []Pod{
		{Namespace: "team-a", Name: "web-1", Node: "n1", IP: netip.MustParseAddr("10.128.1.5"), Labels: map[string]string{"app": "web"}},
		{Namespace: "team-a", Name: "client", Node: "n2", IP: netip.MustParseAddr("10.128.2.5"), Labels: map[string]string{"app": "client"}},
		{Namespace: "team-b", Name: "x", Node: "n2", IP: netip.MustParseAddr("10.128.2.6"), Labels: map[string]string{"app": "client"}},
	}
	Namespaces = []string{"team-a", "team-b"}
	ClusterIP  = "10.96.0.10"
)

const mtu = 1400

// NodeObject is the Node with the annotations controller and agent write.
func NodeObject(n Node) *corev1.Node {
	gw := &kube.NodeGateway{ChassisID: n.Chassis, IP: n.NodeIP, NextHop: "172.18.0.1", MAC: "02:00:00:00:00:" + n.Name[1:] + n.Name[1:]}
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name, Annotations: map[string]string{
		kube.NodeSubnetsAnnotation: kube.MarshalNodeSubnets([]netip.Prefix{n.Subnet}),
		kube.NodeGatewayAnnotation: gw.Marshal(),
	}}}
}

// Gateway is the node's parsed gateway annotation.
func (n Node) Gateway() *kube.NodeGateway {
	g, err := kube.ParseNodeGateway(NodeObject(n).Annotations[kube.NodeGatewayAnnotation])
	if err != nil {
		panic(err)
	}
	return g
}

// PodObject is the pod with its pod-network annotation.
func PodObject(p Pod) *corev1.Pod {
	var subnet netip.Prefix
	for _, n := range Nodes {
		if n.Name == p.Node {
			subnet = n.Subnet
		}
	}
	pn, err := podctl.Network(p.IP, subnet, ipam.GatewayIP(subnet), mtu).Marshal()
	if err != nil {
		panic(err)
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name, Labels: p.Labels,
			UID: types.UID("uid-" + p.Namespace + "-" + p.Name), Annotations: map[string]string{kube.PodNetworkAnnotation: pn},
			// Long settled: status gives younger pods a grace period.
			CreationTimestamp: metav1.NewTime(time.Now().Add(-time.Hour))},
		Spec:   corev1.PodSpec{NodeName: p.Node},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
}

// Policy is team-a/allow-web.
func Policy() *networkingv1.NetworkPolicy {
	tcp := corev1.ProtocolTCP
	port := intstr.FromInt32(80)
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "allow-web"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "client"}}}},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &port}},
			}},
		},
	}
}

// Service is team-a/web and its EndpointSlice.
func Service() (*corev1.Service, *discoveryv1.EndpointSlice) {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "web"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: ClusterIP, ClusterIPs: []string{ClusterIP},
			Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}
	name, proto, port, ready := "http", corev1.ProtocolTCP, int32(8080), true
	node := "n1"
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "team-a", Name: "web-abc", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{Pods[0].IP.String()}, NodeName: &node,
			Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
		Ports: []discoveryv1.EndpointPort{{Name: &name, Protocol: &proto, Port: &port}},
	}
	return svc, es
}

// Lease is the controller's leader-election Lease, held and fresh.
func Lease(holder string, renewed time.Time) *coordinationv1.Lease {
	d := int32(10)
	rt := metav1.NewMicroTime(renewed)
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kovn-system", Name: "kovn-controller"},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &d, RenewTime: &rt},
	}
}

// NodeLease is kovn-node's heartbeat Lease of node, as pkg/node/heartbeat
// writes it, last renewed at renewed.
func NodeLease(node string, renewed time.Time) *coordinationv1.Lease {
	d := int32(heartbeat.Duration / time.Second)
	rt := metav1.NewMicroTime(renewed)
	holder := node
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: heartbeat.Namespace, Name: heartbeat.LeaseName(node),
			Labels: map[string]string{heartbeat.ComponentLabel: heartbeat.Component, heartbeat.NodeLabel: node}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &d, RenewTime: &rt, AcquireTime: &rt},
	}
}

// Objects are every API object of the cluster, for a fake clientset; every
// node's kovn-node has just renewed its heartbeat.
func Objects() []runtime.Object {
	var out []runtime.Object
	for _, n := range Nodes {
		out = append(out, NodeObject(n), NodeLease(n.Name, time.Now()))
	}
	for _, ns := range append(Namespaces, "kovn-system") {
		out = append(out, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	}
	for _, p := range Pods {
		out = append(out, PodObject(p))
	}
	svc, es := Service()
	return append(out, Policy(), svc, es, Lease("controller-0", time.Now()))
}

// PodByKey finds a test pod.
func PodByKey(key string) Pod {
	for _, p := range Pods {
		if p.Key() == key {
			return p
		}
	}
	panic(fmt.Sprintf("no test pod %s", key))
}

// Name is "Kind ns/name" of a test object, to leave some out.
func Name(o runtime.Object) string {
	m, ok := o.(metav1.Object)
	if !ok {
		return ""
	}
	key := m.GetName()
	if m.GetNamespace() != "" {
		key = m.GetNamespace() + "/" + key
	}
	switch o.(type) {
	case *corev1.Node:
		return "Node " + key
	case *corev1.Namespace:
		return "Namespace " + key
	case *corev1.Pod:
		return "Pod " + key
	case *corev1.Service:
		return "Service " + key
	case *discoveryv1.EndpointSlice:
		return "EndpointSlice " + key
	case *networkingv1.NetworkPolicy:
		return "NetworkPolicy " + key
	case *coordinationv1.Lease:
		return "Lease " + key
	}
	return key
}
