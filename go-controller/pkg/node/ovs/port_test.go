package ovs_test

import (
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/kovn-io/kovn/go-controller/pkg/node/ovs"
	"github.com/kovn-io/kovn/go-controller/pkg/testenv"
)

func podIDs(pod, uid string) map[string]string {
	return map[string]string{
		"iface-id": "ns_" + pod, "iface-id-ver": uid,
		"kovn.io/pod": "ns/" + pod, "kovn.io/sandbox": "sandbox-" + uid,
	}
}

func TestPodPort(t *testing.T) {
	db := startDB(t, true)
	c := db.connect(t)
	other := db.other(t)
	if err := c.EnsureBridge(tctx(t), "br-int", "", nil); err != nil {
		t.Fatal(err)
	}
	ids := podIDs("web", "uid-1")
	if n := txns(t, c, func() error { return c.AddPort(tctx(t), "br-int", "veth1", ids) }); n != 1 {
		t.Errorf("AddPort sent %d transactions, want 1", n)
	}
	if got := db.vsctl(t, "get", "Interface", "veth1", "external_ids:iface-id", "external_ids:iface-id-ver", "type"); got != "ns_web\nuid-1\n\"\"" {
		t.Errorf("veth1 iface-id, iface-id-ver, type: %q", got)
	}
	checkPorts(t, c, "br-int", []ovs.PortInfo{
		{Name: "br-int", Type: "internal"},
		{Name: "veth1", ExternalIDs: ids},
	})
	if n := txns(t, c, func() error { return c.AddPort(tctx(t), "br-int", "veth1", ids) }); n != 0 {
		t.Errorf("AddPort again sent %d transactions", n)
	}

	// ovn-controller's mark is not a difference…
	installed(t, other, "veth1")
	installedIDs := maps.Clone(ids)
	installedIDs["ovn-installed"] = "true"
	testenv.WaitFor(t, timeout, func() error {
		return portsEqual(c, "br-int", []ovs.PortInfo{{Name: "br-int", Type: "internal"}, {Name: "veth1", ExternalIDs: installedIDs, Installed: true}})
	})
	if n := txns(t, c, func() error { return c.AddPort(tctx(t), "br-int", "veth1", ids) }); n != 0 {
		t.Errorf("AddPort of an installed port sent %d transactions", n)
	}
	// …but a new binding drops it, since it answered for the old one.
	ids2 := podIDs("web", "uid-2")
	if n := txns(t, c, func() error { return c.AddPort(tctx(t), "br-int", "veth1", ids2) }); n != 1 {
		t.Errorf("AddPort with new ids sent %d transactions, want 1", n)
	}
	checkPorts(t, c, "br-int", []ovs.PortInfo{{Name: "br-int", Type: "internal"}, {Name: "veth1", ExternalIDs: ids2}})

	if err := c.AddPort(tctx(t), "br-nope", "veth2", ids); err == nil || !strings.Contains(err.Error(), "br-nope does not exist") {
		t.Errorf("AddPort to a missing bridge: %v", err)
	}
	if err := c.DeletePort(tctx(t), "br-other", "veth1"); err == nil || !strings.Contains(err.Error(), "on bridge br-int") {
		t.Errorf("DeletePort from the wrong bridge: %v", err)
	}
	t.Logf("ovs-vsctl show:\n%s", db.vsctl(t, "show"))

	if n := txns(t, c, func() error { return c.DeletePort(tctx(t), "br-int", "veth1") }); n != 1 {
		t.Errorf("DeletePort sent %d transactions, want 1", n)
	}
	if got := db.vsctl(t, "list-ports", "br-int"); got != "" {
		t.Errorf("br-int ports after delete: %q", got)
	}
	if got := db.vsctl(t, "--columns=name", "--bare", "list", "Interface"); got != "br-int" {
		t.Errorf("interfaces after delete: %q, want only br-int", got)
	}
	checkPorts(t, c, "br-int", []ovs.PortInfo{{Name: "br-int", Type: "internal"}})
	if n := txns(t, c, func() error { return c.DeletePort(tctx(t), "br-int", "veth1") }); n != 0 {
		t.Errorf("DeletePort of a missing port sent %d transactions", n)
	}
}

func TestInternalPort(t *testing.T) {
	db := startDB(t, true)
	c := db.connect(t)
	if err := c.EnsureBridge(tctx(t), "br-int", "", nil); err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{"iface-id": "kovn-mp-node1"}
	add := func(mac string) func() error {
		return func() error { return c.AddInternalPort(tctx(t), "br-int", "kovn-mp0", ids, mac) }
	}
	if n := txns(t, c, add("0A:58:0A:80:00:02")); n != 1 {
		t.Errorf("AddInternalPort sent %d transactions, want 1", n)
	}
	if got := db.vsctl(t, "get", "Interface", "kovn-mp0", "type", "mac", "external_ids"); got != "internal\n\"0a:58:0a:80:00:02\"\n{iface-id=kovn-mp-node1}" {
		t.Errorf("kovn-mp0 type, mac, external_ids: %q", got)
	}
	if n := txns(t, c, add("0a:58:0a:80:00:02")); n != 0 {
		t.Errorf("AddInternalPort again sent %d transactions", n)
	}
	if n := txns(t, c, add("0a:58:0a:80:00:99")); n != 1 {
		t.Errorf("AddInternalPort with a new MAC sent %d transactions, want 1", n)
	}
	if got := db.vsctl(t, "get", "Interface", "kovn-mp0", "mac"); got != `"0a:58:0a:80:00:99"` {
		t.Errorf("mac after change: %s", got)
	}
	if err := add("not-a-mac")(); err == nil {
		t.Error("AddInternalPort accepted a bad MAC")
	}
}

func checkPorts(t *testing.T, c *ovs.Client, bridge string, want []ovs.PortInfo) {
	t.Helper()
	if err := portsEqual(c, bridge, want); err != nil {
		t.Error(err)
	}
}

// portsEqual compares what Ports says; without ovs-vswitchd, no interface
// has an ofport or an error.
func portsEqual(c *ovs.Client, bridge string, want []ovs.PortInfo) error {
	got, err := c.Ports(tctxBG(), bridge)
	if err != nil {
		return err
	}
	if len(got) != len(want) {
		return fmt.Errorf("Ports(%s) = %+v, want %+v", bridge, got, want)
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Name != w.Name || g.Type != w.Type || !maps.Equal(g.ExternalIDs, w.ExternalIDs) ||
			g.Installed != w.Installed || g.OFPort != 0 || g.Error != "" {
			return fmt.Errorf("Ports(%s)[%d] = %+v, want %+v", bridge, i, g, w)
		}
	}
	return nil
}
