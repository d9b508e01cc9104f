// Package testenv starts OVSDB and OVN for tests; it is for tests only and
// must never be imported by production code.
//
// StartOVN runs a real OVN central (NB and SB ovsdb-server plus ovn-northd)
// from the installed Debian packages, private to one test; StartInMemoryNB
// serves the NB schema from libovsdb's in-memory server, which is much
// faster but has no northd behind it. Both hand out libovsdb clients built
// on the generated models in pkg/ovsdb with the whole database monitored.
// StartNBCluster runs a clustered (RAFT) NB database of several
// ovsdb-servers, without northd, whose members a test can kill and
// restart to exercise leader failover.
//
// A test that needs the OVN binaries is skipped when they are missing,
// unless KOVN_REQUIRE_OVN=1 (set by CI), in which case it fails: a missing
// package must never turn the integration tests silently green.
package testenv
