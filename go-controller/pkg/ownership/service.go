package ownership

import (
	"strconv"
	"strings"
)

// KindService owns the load balancers of a Service (owner "ns/name").
const KindService = "Service"

// ClusterLBGroup is the Load_Balancer_Group every node switch and gateway
// router holds; a load balancer in it applies everywhere with one
// reference, so rows grow with services, not with services × nodes.
const ClusterLBGroup = "kovn_cluster_lbg"

// NodeIPTemplateVar is the Chassis_Template_Var variable holding each
// chassis' node IP. NodePort template load balancers use it as their VIP,
// "^KOVN_NODEIP:<nodePort>", which every chassis expands to its own IP.
const NodeIPTemplateVar = "KOVN_NODEIP"

// NodeIPTemplateVIP is the template VIP of a NodePort.
func NodeIPTemplateVIP(nodePort int32) string {
	return "^" + NodeIPTemplateVar + ":" + strconv.Itoa(int(nodePort))
}

// Load balancer names. Namespaces and service names are DNS labels, so
// "ns/name" cannot contain "_" and the names below cannot collide. proto
// is a Kubernetes protocol (TCP, UDP, SCTP), upper-cased in names and
// lower-cased in ids.

// ServiceLB is the cluster-wide load balancer of one protocol:
// ClusterIPs, external IPs and load-balancer ingress IPs.
func ServiceLB(ns, name, proto string) string {
	return "Service_" + ns + "/" + name + "_" + strings.ToUpper(proto)
}

// ServiceNodePortLB is the NodePort template load balancer
// (externalTrafficPolicy Cluster).
func ServiceNodePortLB(ns, name, proto string) string {
	return ServiceLB(ns, name, proto) + "_nodeport"
}

// ServiceLocalLB is a node's load balancer for externalTrafficPolicy
// Local: its NodePorts on the node IP, to that node's endpoints only.
func ServiceLocalLB(ns, name, proto, node string) string {
	return ServiceLB(ns, name, proto) + "_local_" + node
}

// ServiceNodePortNodeLB is a node's NodePort load balancer, written in
// place of the template for services with ClientIP session affinity.
func ServiceNodePortNodeLB(ns, name, proto, node string) string {
	return ServiceNodePortLB(ns, name, proto) + "_" + node
}

// ServiceITPLocalLB is a node's load balancer for internalTrafficPolicy
// Local: the ClusterIPs, to that node's endpoints only.
func ServiceITPLocalLB(ns, name, proto, node string) string {
	return ServiceLB(ns, name, proto) + "_itp-local_" + node
}

// Ids (kovn.io/id) of the same load balancers, one per row of a service.
func ServiceLBID(proto string) string         { return strings.ToLower(proto) }
func ServiceNodePortLBID(proto string) string { return ServiceLBID(proto) + "/nodeport" }
func ServiceLocalLBID(proto, node string) string {
	return ServiceLBID(proto) + "/local/" + node
}
func ServiceNodePortNodeLBID(proto, node string) string {
	return ServiceNodePortLBID(proto) + "/" + node
}
func ServiceITPLocalLBID(proto, node string) string {
	return ServiceLBID(proto) + "/itp-local/" + node
}
