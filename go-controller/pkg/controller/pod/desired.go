// Package pod gives scheduled pods their addresses and logical switch
// ports: an IP from the node's subnet (or a validated static one), the
// kovn.io/pod-network annotation written before the port exists, then the
// port and the namespace address set changed in one NB transaction.
package pod

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"

	"github.com/kovn-io/kovn/go-controller/pkg/ipam"
	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// Network is the pod-network annotation for an address in subnet: a node
// subnet (the gateway its first address) or the underlay's physical subnet
// (the gateway its physical router).
func Network(ip netip.Addr, subnet netip.Prefix, gateway netip.Addr, mtu int) *kube.PodNetwork {
	return &kube.PodNetwork{
		IPs:     []string{netip.PrefixFrom(ip, subnet.Bits()).String()},
		MAC:     ipam.MACFromIP(ip).String(),
		Gateway: []string{gateway.String()},
		MTU:     mtu,
	}
}

// Port is the logical switch port of a pod with the given network.
func Port(pod *corev1.Pod, pn *kube.PodNetwork) *nbdb.LogicalSwitchPort {
	addr := pn.MAC
	for _, ip := range pn.Addrs() {
		addr += " " + ip.String()
	}
	ids := own.IDs(own.KindPod, pod.Namespace+"/"+pod.Name, "")
	ids[own.PodUIDKey] = string(pod.UID)
	return &nbdb.LogicalSwitchPort{
		Name:         own.PodPort(pod.Namespace, pod.Name),
		Addresses:    []string{addr},
		PortSecurity: []string{addr},
		Options: map[string]string{
			// Bind only on the pod's node, and only the interface of this
			// incarnation of the pod: a pod recreated under the same name
			// must not be reached through its predecessor's leftover port.
			"requested-chassis": pod.Spec.NodeName,
			"iface-id-ver":      string(pod.UID),
		},
		ExternalIDs: ids,
	}
}

// wantsPort tells whether kovn gives the pod a port at all.
func wantsPort(pod *corev1.Pod) bool {
	return pod.Spec.NodeName != "" && !pod.Spec.HostNetwork && !terminal(pod)
}

// terminal pods keep their object but no longer use their address.
func terminal(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

// family names the address set family of an address.
func family(ip netip.Addr) string {
	if ip.Is4() {
		return "v4"
	}
	return "v6"
}
