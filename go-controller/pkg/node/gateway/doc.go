// Package gateway programs the OpenFlow rules of the shared-gateway bridge
// (br-ex) on a node.
//
// In shared-gateway mode the node IP lives on br-ex's LOCAL port (the host's
// stack), and OVN's gateway router GR_<node> uses the very same IP and MAC on
// its external port, reached through the patch port ovn-controller creates
// for the localnet port of ext_<node>. The GR SNATs pod egress to that IP, so
// a reply arriving on the NIC for the node IP can belong to either stack. With
// br-ex left on NORMAL the bridge learns the shared MAC on whichever port
// spoke last and hands every reply to that one: the other stack's
// connections break (it answers with a RST or a port unreachable).
//
// The rules are stateless and sort replies by destination port. The GR SNATs
// to source ports 61440-65535 only (ownership.GatewaySNATPortRange), above
// Linux's ephemeral range (32768-60999): a TCP or UDP packet for the node IP
// whose destination port is in that range (0xf000/0xf000) answers a
// connection of the GR, anything else is the host's. An earlier design
// committed both stacks' egress to conntrack in a zone of br-ex's own and
// sorted replies by ct_mark; on OVS 3.1's userspace datapath the replies to
// connections the GR had SNATed were not recognised as such (the zone's
// entry ended up with the host's mark) and reached the host, which answered
// port unreachable. Without conntrack, br-ex keeps no state to lose or to
// mix with OVN's own zones.
//
// The rule set, all in table 0 ("P" is the patch port, absent until
// ovn-controller creates it, "M" the shared MAC, "N" the node IP):
//
//	110 in_port=LOCAL,dl_dst=M          output:P     host to its own GR: the shared MAC can only mean the GR
//	110 in_port=P,dl_dst=M              LOCAL        GR to the host, same reasoning
//	105 icmp,in_port=NIC,nw_dst=N,icmp_type=8   LOCAL   echo requests: the host answers ping, once
//	101 ip,in_port=NIC,nw_dst=N,ip_frag=later   LOCAL,output:P   fragments without ports: both reassemble what is theirs
//	100 tcp,in_port=NIC,nw_dst=N,tp_dst=0xf000/0xf000   output:P   replies to the GR's SNATed connections
//	100 udp,in_port=NIC,nw_dst=N,tp_dst=0xf000/0xf000   output:P   same for UDP
//	100 tcp,in_port=NIC,nw_dst=N,tp_dst=NodePorts       output:P   Services' NodePorts: the GR's load balancers answer
//	100 udp,in_port=NIC,nw_dst=N,tp_dst=NodePorts       output:P   same for UDP (the range as a few masked matches)
//	100 icmp,in_port=NIC,nw_dst=N       LOCAL,output:P   echo replies and errors may concern either stack
//	100 ip,in_port=P                    output:NIC   the GR's egress
//	100 ip,in_port=LOCAL                output:NIC   the host's egress
//	100 arp                             FLOOD        both stacks answer for the address, both must hear requests and replies
//	 90 ip,in_port=NIC                  LOCAL        everything else: host replies, new incoming connections, other protocols
//	  1 (anything else)                 NORMAL       non-IPv4 (IPv6, LLDP, ...) is not steered
//
// Without the patch port only the host's rules are installed: LOCAL to the
// NIC, the NIC to LOCAL, ARP and NORMAL.
//
// ICMP carries no port to sort by. Echo requests go to the host alone, so a
// ping to the node IP gets one answer. Everything else (echo replies,
// destination unreachable, fragmentation needed, time exceeded) goes to
// both stacks, and each drops what does not match a socket or connection of
// its own: the host's kernel ignores errors about connections it does not
// have and echo replies nobody waits for, the GR's conntrack likewise.
// Fragments after the first carry no ports either and go to both; each
// stack reassembles the datagrams whose first fragment it got and lets the
// rest expire silently (Linux sends "reassembly time exceeded" only when it
// holds the first fragment). For the first fragment to carry its ports at
// all, EnsureFlows sets the bridge's fragment handling to "nx-match" (OVS's
// default, "normal", zeroes the ports of every fragment, which would send a
// large UDP reply to a pod to the host and a large ping to both stacks).
// That setting is ovs-vswitchd's, not OVSDB's: a restart resets it, even
// when ovs-ctl restores the flows, so EnsureFlows checks it on every call,
// also when the flows are already right.
//
// ARP uses FLOOD rather than NORMAL because NORMAL would deliver a unicast
// ARP reply for the shared MAC to one stack only, the one it learned last.
// Only IPv4 is steered; a node IP that is IPv6 is refused.
//
// The price of statelessness:
//
//   - Host services listening on ports 61440-65535 of the node IP cannot be
//     reached from outside: their packets go to OVN. (From the node itself,
//     and on other addresses, they work.)
//   - Host services cannot listen on the NodePort range of the node IP
//     from outside (kube-proxy reserves that range too), and the host
//     reaching its own node IP's NodePorts stays on the host: only traffic
//     arriving on the NIC is steered. SCTP NodePorts are not steered.
//   - The GR has 4096 source ports per destination IP, port and protocol:
//     at most 4096 simultaneous connections from all of the node's pods to
//     one remote endpoint.
//   - The host's net.ipv4.ip_local_port_range must stay below 61440 (Linux's
//     default, 32768-60999, does), and no host program may bind the node IP
//     to a source port in 61440-65535 for outgoing traffic: the replies would
//     go to OVN.
//   - IP protocols other than TCP, UDP and ICMP (SCTP, GRE, ESP, ...) are
//     the host's: replies to a pod's SCTP association through the GR reach
//     the host, not the pod.
//
// All flows carry one cookie: the high 32 bits say "kovn", the low 32 bits
// are a hash of the whole rule set. EnsureFlows compares the bridge's kovn
// flows with the wanted set by that cookie and their number, and only when
// they differ replaces them, deleting the old and adding the new in one
// OpenFlow bundle, so the bridge never runs a half-written table and an
// unchanged rule set keeps its flows and counters. Flows with other cookies
// (for example OVS's default priority=0 NORMAL) are left alone.
//
// The patch port appears only after the GR and its localnet port reach the
// southbound database, so EnsureFlows works without it (host-only flows) and
// is meant to be called again once PatchPort finds it, and whenever the
// ports' OpenFlow numbers may have changed: they are part of the hash.
package gateway
