// Package gateway programs the OpenFlow rules of the shared-gateway bridge
// (br-ex) on a node.
//
// In shared-gateway mode the node IP lives on br-ex's LOCAL port (the host's
// stack), and OVN's gateway router GR_<node> uses the very same IP and MAC on
// its external port, reached through the patch port ovn-controller creates
// for the localnet port of ext_<node>. The GR SNATs pod egress to that IP, so
// a reply arriving on the NIC for the node IP can belong to either stack and
// nothing in its headers says which. With br-ex left on NORMAL the bridge
// learns the shared MAC on whichever port spoke last and hands the reply to
// that one: the other stack's connections break (the wrong stack answers
// with a RST).
//
// The flows below tell the two apart by connection: everything leaving
// through the NIC is committed to conntrack in a zone of its own, with
// ct_mark 1 when OVN sent it and 2 when the host did, and everything arriving
// from the NIC is looked up in that zone. Established or related traffic of
// an OVN connection goes to the patch port; everything else, including every
// new incoming connection, goes to the host. That zone belongs to br-ex
// alone: OVN's own zones (allocated from 1 upward by ovn-controller) stay
// separate, so the GR's SNAT state and ours never mix.
//
// The rule set ("P" is the patch port, absent until ovn-controller creates
// it, "M" the shared MAC, "Z" the zone):
//
//	table 0
//	 110 in_port=LOCAL,dl_dst=M     output:P   host to its own GR: the shared MAC can only mean the GR
//	 110 in_port=P,dl_dst=M         LOCAL      GR to the host, same reasoning
//	 100 ip,in_port=NIC             ct(zone=Z,table=1)   replies can only be sorted by their connection
//	 100 ip,in_port=P               ct(commit,zone=Z,exec(ct_mark=1)),output:NIC   OVN's egress: remember it is OVN's
//	 100 ip,in_port=LOCAL           ct(commit,zone=Z,exec(ct_mark=2)),output:NIC   host's egress: remember it is the host's
//	 100 arp                        FLOOD      both stacks answer for the address, both must hear requests and replies
//	   1 (anything else)            NORMAL     non-IPv4 (IPv6, LLDP, ...) is not steered
//	table 1
//	 100 ip,ct_state=+est+trk,ct_mark=1   output:P   reply to a connection OVN started
//	 100 ip,ct_state=+rel+trk,ct_mark=1   output:P   ICMP errors about one (PMTU, unreachable)
//	   0 (anything else)                  LOCAL      host replies, new incoming connections, untracked
//
// ARP uses FLOOD rather than NORMAL because NORMAL would deliver a unicast
// ARP reply for the shared MAC to one stack only, the one it learned last.
// New incoming connections are not committed on the way in: the host's
// answer commits them (ct_mark 2), and until then table 1's default sends
// them to the host anyway, so no conntrack entry is spent on unanswered
// packets. Only IPv4 is steered; a node IP that is IPv6 is refused.
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
