// Package ownership says who owns a northbound row and how rows are named.
//
// Every row kovn writes carries external_ids naming its owner, so that an
// operator can ask `ovn-nbctl find … external_ids:kovn.io/owner=ns/name`,
// and so that start-up can delete rows whose owner is gone. Names are
// readable where OVN allows it; where OVN restricts the characters (address
// sets, port groups) the name is derived and the readable owner stays in
// external_ids.
package ownership

import "strings"

// external_ids keys.
const (
	KindKey  = "kovn.io/owner-kind"
	OwnerKey = "kovn.io/owner"
	IDKey    = "kovn.io/id"
	// PodUIDKey records which incarnation of a pod a port belongs to.
	PodUIDKey = "kovn.io/pod-uid"
)

// Owner kinds.
const (
	KindCluster   = "Cluster"
	KindNode      = "Node"
	KindPod       = "Pod"
	KindNamespace = "Namespace"
)

// IDs builds the external_ids of a row. id may be empty when the owner has
// a single row of that table.
func IDs(kind, owner, id string) map[string]string {
	m := map[string]string{KindKey: kind, OwnerKey: owner}
	if id != "" {
		m[IDKey] = id
	}
	return m
}

// OwnerOf reads kind and owner back.
func OwnerOf(externalIDs map[string]string) (kind, owner string) {
	return externalIDs[KindKey], externalIDs[OwnerKey]
}

// Cluster-wide names.
const (
	ClusterRouter = "kovn_cluster_router"
	JoinSwitch    = "kovn_join"
	// PhysicalNetwork is the localnet network name; nodes map it to br-ex.
	PhysicalNetwork = "physnet"
)

// Gateway routers SNAT pods leaving the cluster to the node IP, which the
// host also uses. They take source ports from 61440-65535 only, above
// Linux's ephemeral range (32768-60999), so br-ex can hand each reply to
// the side that opened the connection by its destination port alone.
const (
	GatewaySNATPortRange = "61440-65535"
	GatewaySNATPortMin   = 0xf000 // with the mask, the range above
	GatewaySNATPortMask  = 0xf000
)

// Per-node names.
func NodeSwitch(node string) string         { return node }
func RouterToSwitchPort(node string) string { return "rtos-" + node }
func SwitchToRouterPort(node string) string { return "stos-" + node }
func ManagementPort(node string) string     { return "kovn-mp-" + node }
func GatewayRouter(node string) string      { return "GR_" + node }
func ExternalSwitch(node string) string     { return "ext_" + node }
func GatewayToJoinPort(node string) string  { return "rtoj-" + GatewayRouter(node) }
func JoinToGatewayPort(node string) string  { return "jtor-" + GatewayRouter(node) }
func GatewayToExtPort(node string) string   { return "rtoe-" + GatewayRouter(node) }
func ExtToGatewayPort(node string) string   { return "etor-" + GatewayRouter(node) }
func LocalnetPort(node string) string       { return "lnet-" + node }
func ClusterRouterToJoinPort() string       { return "rtoj-" + ClusterRouter }
func JoinToClusterRouterPort() string       { return "jtor-" + ClusterRouter }

// PodPort is the logical switch port of a pod, also its OVS iface-id.
func PodPort(namespace, name string) string { return namespace + "_" + name }

// NamespaceAddressSet is the address set holding a namespace's pod IPs of
// one family ("v4" or "v6"). Namespace names are DNS labels ([a-z0-9-]),
// so mapping '-' to '_' keeps the name unique and readable.
func NamespaceAddressSet(namespace, family string) string {
	return "kovn_ns_" + strings.ReplaceAll(namespace, "-", "_") + "_" + family
}

// KindExternalPort owns the logical switch port of an ExternalPort.
const KindExternalPort = "ExternalPort"

// ExternalPortSwitch (overlay mode) holds every ExternalPort, whichever
// chassis it binds on, so a VM that moves keeps its address and MAC. Its
// subnet is carved from the cluster CIDR like a node's, so everything
// that routes pod traffic (the cluster router, the gateway routers, the
// hosts' management ports) routes it too.
const ExternalPortSwitch = "kovn_external"

// UnderlaySwitch (underlay mode) is the one flat switch of pods and
// external ports, bridged to the physical network by UnderlayLocalnetPort.
const (
	UnderlaySwitch       = "kovn_underlay"
	UnderlayLocalnetPort = "lnet-kovn_underlay"
)

// ExternalPortPort is the logical switch port of an ExternalPort, also the
// OVS iface-id to plug it with. Neither namespace nor pod names hold '_',
// so the "ep_" prefix cannot meet a pod's "<namespace>_<pod>".
func ExternalPortPort(namespace, name string) string { return "ep_" + namespace + "_" + name }

// StatefulACLID is the kovn.io/id of the priority-0 allow-related ACL every
// node switch holds (owner kind Node) to keep conntrack on from the start.
const StatefulACLID = "stateful"
