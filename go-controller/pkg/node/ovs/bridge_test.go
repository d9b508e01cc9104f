package ovs_test

import (
	"strings"
	"testing"
)

func TestBridges(t *testing.T) {
	db := startDB(t, true)
	c := db.connect(t)

	if n := txns(t, c, func() error { return c.EnsureBridge(tctx(t), "br-int", "netdev", nil) }); n != 1 {
		t.Errorf("creating br-int sent %d transactions, want 1", n)
	}
	hw := map[string]string{"hwaddr": "0a:58:ac:12:00:03"}
	if n := txns(t, c, func() error { return c.EnsureBridge(tctx(t), "br-ex", "netdev", hw) }); n != 1 {
		t.Errorf("creating br-ex sent %d transactions, want 1", n)
	}
	for _, br := range []string{"br-int", "br-ex"} {
		// What ovs-vsctl add-br makes: the bridge's local internal port.
		if got := db.vsctl(t, "list-ports", br); got != "" {
			t.Errorf("%s: list-ports (which hides the local port) = %q", br, got)
		}
		if got := db.vsctl(t, "get", "Interface", br, "type"); got != "internal" {
			t.Errorf("interface %s type %s, want internal", br, got)
		}
		if ports, port := db.vsctl(t, "get", "Bridge", br, "ports"), db.vsctl(t, "get", "Port", br, "_uuid"); ports != "["+port+"]" {
			t.Errorf("%s ports %s, want its local port %s", br, ports, port)
		}
		if got := db.vsctl(t, "get", "Bridge", br, "datapath_type"); got != "netdev" {
			t.Errorf("%s datapath_type %s", br, got)
		}
	}
	if got := db.vsctl(t, "get", "Bridge", "br-ex", "other_config:hwaddr"); got != `"0a:58:ac:12:00:03"` {
		t.Errorf("br-ex hwaddr %s", got)
	}
	if got := db.vsctl(t, "list-br"); got != "br-ex\nbr-int" {
		t.Errorf("list-br = %q", got)
	}

	for _, br := range []string{"br-int", "br-ex"} {
		cfg := map[string]string(nil)
		if br == "br-ex" {
			cfg = hw
		}
		if n := txns(t, c, func() error { return c.EnsureBridge(tctx(t), br, "netdev", cfg) }); n != 0 {
			t.Errorf("EnsureBridge %s again sent %d transactions", br, n)
		}
	}
	// "" leaves datapath_type alone.
	if n := txns(t, c, func() error { return c.EnsureBridge(tctx(t), "br-int", "", nil) }); n != 0 {
		t.Errorf("EnsureBridge br-int with no datapath type sent %d transactions", n)
	}

	// A foreign other_config key survives a hwaddr change, even one the
	// cache may not show yet: only the given keys are mutated.
	db.vsctl(t, "set", "Bridge", "br-ex", "other_config:disable-in-band=true")
	hw2 := map[string]string{"hwaddr": "0a:58:ac:12:00:04"}
	if err := c.EnsureBridge(tctx(t), "br-ex", "system", hw2); err != nil {
		t.Fatal(err)
	}
	if got := db.vsctl(t, "get", "Bridge", "br-ex", "other_config"); got != `{disable-in-band="true", hwaddr="0a:58:ac:12:00:04"}` {
		t.Errorf("br-ex other_config %s", got)
	}
	if got := db.vsctl(t, "get", "Bridge", "br-ex", "datapath_type"); got != "system" {
		t.Errorf("br-ex datapath_type %s, want system", got)
	}
}

func TestEnsureSystemPort(t *testing.T) {
	db := startDB(t, true)
	c := db.connect(t)
	for _, br := range []string{"br-int", "br-ex"} {
		if err := c.EnsureBridge(tctx(t), br, "", nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := txns(t, c, func() error { return c.EnsureSystemPort(tctx(t), "br-ex", "eth0") }); n != 1 {
		t.Errorf("adding eth0 sent %d transactions, want 1", n)
	}
	if got := db.vsctl(t, "list-ports", "br-ex"); got != "eth0" {
		t.Errorf("br-ex ports %q, want eth0", got)
	}
	if got := db.vsctl(t, "get", "Interface", "eth0", "type"); got != `""` {
		t.Errorf("eth0 type %s, want a system interface", got)
	}
	if n := txns(t, c, func() error { return c.EnsureSystemPort(tctx(t), "br-ex", "eth0") }); n != 0 {
		t.Errorf("EnsureSystemPort again sent %d transactions", n)
	}
	uuid := db.vsctl(t, "get", "Port", "eth0", "_uuid")

	// Moving keeps the Port row: one transaction, no delete and re-create.
	if n := txns(t, c, func() error { return c.EnsureSystemPort(tctx(t), "br-int", "eth0") }); n != 1 {
		t.Errorf("moving eth0 sent %d transactions, want 1", n)
	}
	if got := db.vsctl(t, "port-to-br", "eth0"); got != "br-int" {
		t.Errorf("eth0 on %s after the move, want br-int", got)
	}
	if got := db.vsctl(t, "list-ports", "br-ex"); got != "" {
		t.Errorf("br-ex still has ports %q", got)
	}
	if got := db.vsctl(t, "get", "Port", "eth0", "_uuid"); got != uuid {
		t.Errorf("eth0's Port row was replaced: %s, was %s", got, uuid)
	}
	show := db.vsctl(t, "show")
	t.Logf("ovs-vsctl show:\n%s", show)
	if got := showBridge(show, "br-int"); !strings.Contains(got, "Port eth0\n            Interface eth0\n") {
		t.Errorf("ovs-vsctl show does not have eth0 on br-int:\n%s", got)
	}
	if got := showBridge(show, "br-ex"); strings.Contains(got, "eth0") {
		t.Errorf("ovs-vsctl show still has eth0 on br-ex:\n%s", got)
	}
}

// showBridge cuts one bridge's block out of `ovs-vsctl show` (which lists
// bridges and ports in hash order).
func showBridge(show, bridge string) string {
	_, after, found := strings.Cut(show, "    Bridge "+bridge+"\n")
	if !found {
		return ""
	}
	block, _, _ := strings.Cut(after, "\n    Bridge ")
	return block + "\n"
}

func TestBridgeExternalIDs(t *testing.T) {
	db := startDB(t, true)
	c := db.connect(t)
	if err := c.SetBridgeExternalIDs(tctx(t), "br-ex", map[string]string{"k": "v"}); err == nil {
		t.Error("external_ids set on a bridge that does not exist")
	}
	if err := c.EnsureBridge(tctx(t), "br-ex", "netdev", nil); err != nil {
		t.Fatal(err)
	}
	db.vsctl(t, "br-set-external-id", "br-ex", "foreign", "kept")
	if n := txns(t, c, func() error {
		return c.SetBridgeExternalIDs(tctx(t), "br-ex", map[string]string{"kovn.io/next-hop": "172.18.0.1"})
	}); n != 1 {
		t.Errorf("setting a key sent %d transactions, want 1", n)
	}
	if n := txns(t, c, func() error {
		return c.SetBridgeExternalIDs(tctx(t), "br-ex", map[string]string{"kovn.io/next-hop": "172.18.0.1"})
	}); n != 0 {
		t.Errorf("setting it again sent %d transactions, want 0", n)
	}
	if got := db.vsctl(t, "br-get-external-id", "br-ex", "foreign"); got != "kept" {
		t.Errorf("foreign key = %q, want kept", got)
	}
	// A new client (a restarted kovn-node) reads what the last one wrote.
	c2 := db.connect(t)
	if got, err := c2.BridgeExternalID(tctx(t), "br-ex", "kovn.io/next-hop"); err != nil || got != "172.18.0.1" {
		t.Errorf("next hop read back %q %v", got, err)
	}
	if got, err := c2.BridgeExternalID(tctx(t), "br-nope", "kovn.io/next-hop"); err != nil || got != "" {
		t.Errorf("missing bridge: %q %v", got, err)
	}
}
