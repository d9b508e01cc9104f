package ownership

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Owner kinds of the NetworkPolicy rows.
const (
	// KindNetworkPolicy owns a policy's port group and its ACLs; owner
	// "namespace/name", and each ACL's id says which rule it is.
	KindNetworkPolicy = "NetworkPolicy"
	// KindPolicySelector owns a peer address set, shared by every policy
	// with an equal selector; owner is the hash in its name and id the
	// readable selector (NB keeps no reference count: users are computed
	// from the policies).
	KindPolicySelector = "NetworkPolicySelector"
	// KindPolicyIsolation owns a namespace's isolation port groups and
	// their ACLs; owner is the namespace, id "ingress" or "egress".
	KindPolicyIsolation = "NetworkPolicyIsolation"
	// KindPolicyInfra owns the cluster-wide rows policies rely on: the
	// node management address set and the ACL logging meter.
	KindPolicyInfra = "NetworkPolicyInfra"
)

// Cluster-wide rows of network policy.
const (
	// NodeManagementAddressSet holds every node's management port IP:
	// kubelet probes and host-network clients reach pods from there, and
	// isolated pods still accept them.
	NodeManagementAddressSet = "kovn_node_mgmt_v4"
	// ACLLoggingMeter rate-limits ACL log messages.
	ACLLoggingMeter = "kovn-acl-logging"
)

// Port group and address set names must match [a-zA-Z_.][a-zA-Z_.0-9]*.
// Namespace names are DNS labels ([a-z0-9-]) and policy names DNS
// subdomains ([a-z0-9.-]): neither has '_', so mapping '-' to '_' is
// one-to-one, and since a namespace has no '.', the first '.' after the
// prefix separates namespace from policy name. Distinct policies thus
// always get distinct names.
func sanitize(s string) string { return strings.ReplaceAll(s, "-", "_") }

// PolicyPortGroup is the port group of the pods a policy selects, e.g.
// kovn_np.team_a.allow_web.v1 for team-a/allow-web.v1.
func PolicyPortGroup(namespace, name string) string {
	return "kovn_np." + sanitize(namespace) + "." + sanitize(name)
}

// IsolationPortGroup holds the pods of a namespace that some policy
// isolates in direction ("ingress" or "egress"), e.g.
// kovn_isolate_ingress.team_a.
func IsolationPortGroup(namespace, direction string) string {
	return "kovn_isolate_" + direction + "." + sanitize(namespace)
}

// SelectorHash is the short hash naming the address set of a peer
// selector; selectors are too long and too free-form to be names.
// 64 bits make a collision among a cluster's selectors negligible.
func SelectorHash(canonical string) string {
	sum := sha256.Sum256([]byte(canonical))
	return hex.EncodeToString(sum[:8])
}

// SelectorAddressSet is the address set of the pods a peer selector
// matches, of one family ("v4").
func SelectorAddressSet(canonical, family string) string {
	return "kovn_sel." + SelectorHash(canonical) + "_" + family
}
