package ovs_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/kovn-io/kovn/go-controller/pkg/node/ovs"
	"github.com/kovn-io/kovn/go-controller/pkg/testenv"
)

func TestEnsureChassis(t *testing.T) {
	db := startDB(t, true)
	c := db.connect(t)
	// Someone else's keys, which EnsureChassis must leave alone even
	// before its cache has them: it only mutates its own keys.
	db.vsctl(t, "set", "Open_vSwitch", ".", "external_ids:rundir=/run/openvswitch", "external_ids:ovn-monitor-all=true")

	cfg := ovs.ChassisConfig{
		SystemID: "node-1", Hostname: "node-1.example", OVNRemote: "tcp:172.18.0.2:6642",
		EncapIP: "172.18.0.3", BridgeMappings: "physnet:br-ex", DatapathType: "netdev",
		ExternalIDs: map[string]string{"ovn-openflow-probe-interval": "0"},
	}
	if n := txns(t, c, func() error { return c.EnsureChassis(tctx(t), cfg) }); n != 1 {
		t.Errorf("first EnsureChassis sent %d transactions, want 1", n)
	}
	want := map[string]string{
		"system-id": "node-1", "hostname": "node-1.example", "ovn-remote": "tcp:172.18.0.2:6642",
		"ovn-encap-type": "geneve", "ovn-encap-ip": "172.18.0.3", "ovn-bridge-mappings": "physnet:br-ex",
		"ovn-bridge-datapath-type": "netdev", "ovn-openflow-probe-interval": "0",
		"rundir": "/run/openvswitch", "ovn-monitor-all": "true",
	}
	checkRootIDs(t, db, want)
	if id, err := c.ChassisID(tctx(t)); err != nil || id != "node-1" {
		t.Errorf("ChassisID = %q, %v; want node-1", id, err)
	}

	if n := txns(t, c, func() error { return c.EnsureChassis(tctx(t), cfg) }); n != 0 {
		t.Errorf("EnsureChassis with nothing to change sent %d transactions", n)
	}

	// A changed value and a dropped setting: one transaction, the other
	// keys as they were.
	cfg.EncapIP, cfg.BridgeMappings = "172.18.0.33", ""
	if n := txns(t, c, func() error { return c.EnsureChassis(tctx(t), cfg) }); n != 1 {
		t.Errorf("EnsureChassis with a change sent %d transactions, want 1", n)
	}
	want["ovn-encap-ip"] = "172.18.0.33"
	delete(want, "ovn-bridge-mappings")
	checkRootIDs(t, db, want)

	for _, bad := range []ovs.ChassisConfig{
		{OVNRemote: "tcp:1.2.3.4:6642", EncapIP: "1.2.3.5"},
		{SystemID: "n", OVNRemote: "tcp:1.2.3.4:6642", EncapIP: "1.2.3.5", ExternalIDs: map[string]string{"ovn-encap-ip": "9.9.9.9"}},
		{SystemID: "n", OVNRemote: "tcp:1.2.3.4:6642", EncapIP: "1.2.3.5", ExternalIDs: map[string]string{"ovn-bridge-mappings": "x:y"}},
	} {
		if err := c.EnsureChassis(tctx(t), bad); err == nil {
			t.Errorf("EnsureChassis(%+v) succeeded", bad)
		}
	}
	t.Logf("ovs-vsctl get Open_vSwitch . external_ids:\n%s", db.vsctl(t, "get", "Open_vSwitch", ".", "external_ids"))
}

// Without `ovs-vsctl init` there is no Open_vSwitch row; the agent must
// say so rather than create one (see the package doc).
func TestEnsureChassisUninitialized(t *testing.T) {
	db := startDB(t, false)
	c := db.connect(t)
	cfg := ovs.ChassisConfig{SystemID: "n", OVNRemote: "tcp:1.2.3.4:6642", EncapIP: "1.2.3.5"}
	if err := c.EnsureChassis(tctx(t), cfg); !errors.Is(err, ovs.ErrNoRoot) {
		t.Fatalf("EnsureChassis on an empty database: %v, want ErrNoRoot", err)
	}
	if err := c.EnsureBridge(tctx(t), "br-int", "", nil); !errors.Is(err, ovs.ErrNoRoot) {
		t.Fatalf("EnsureBridge on an empty database: %v, want ErrNoRoot", err)
	}
	db.vsctl(t, "init")
	testenv.WaitFor(t, timeout, func() error { return c.EnsureChassis(tctx(t), cfg) })
	if id, err := c.ChassisID(tctx(t)); err != nil || id != "n" {
		t.Errorf("ChassisID = %q, %v; want n", id, err)
	}
}

func checkRootIDs(t *testing.T, db *testDB, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got := db.vsctl(t, "--if-exists", "get", "Open_vSwitch", ".", "external_ids:"+k); strings.Trim(got, `"`) != v {
			t.Errorf("external_ids:%s = %s, want %s", k, got, v)
		}
	}
	all := db.vsctl(t, "get", "Open_vSwitch", ".", "external_ids")
	if n := strings.Count(all, "="); n != len(want) {
		t.Errorf("external_ids has %d keys, want %d: %s", n, len(want), all)
	}
}
