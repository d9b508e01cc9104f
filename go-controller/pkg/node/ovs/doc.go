// Package ovs is kovn-node's one way to configure the host's Open vSwitch:
// the chassis settings ovn-controller reads from the Open_vSwitch row, the
// bridges, and the ports that plug pods and the management port into
// br-int. Everything goes through one libovsdb client (Connect), never
// through ovs-vsctl.
//
// Every write is computed from the client's cache and sent as one
// transaction, or none at all when the database already matches, so a
// restarted agent that finds its ports in place sends nothing (Stats counts
// what was sent). Writes of one Client are serialized: each reads the cache
// its predecessor's transaction has already updated, and concurrent callers
// cannot both decide to insert the same row.
//
// Columns the package owns, and how:
//
//	Open_vSwitch  external_ids keys of ChassisConfig (set or removed per key;
//	              other keys untouched)
//	Bridge        existence, membership in Open_vSwitch.bridges,
//	              datapath_type when asked, other_config keys given (per key)
//	Port          existence, name, interfaces, membership in one bridge
//	Interface     type, mac (internal ports), external_ids as a whole map for
//	              pod and management ports (ovn-controller's own keys
//	              ovn-installed and ovn-installed-ts do not count as a
//	              difference, but are dropped when the ids change, so a stale
//	              ovn-installed=true cannot answer for a new binding)
//
// The Open_vSwitch row itself is never created here: `ovs-vsctl --no-wait
// init` (run by every OVS start script) does that, and OVSDB offers no way
// to make "insert the only root row" atomic against a concurrent init.
//
// The monitored columns are limited to what the agent reads (monitor.go),
// so ovs-vswitchd's periodic statistics updates do not reach the agent.
package ovs
