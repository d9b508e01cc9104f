package ovs_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/kovn-io/kovn/go-controller/pkg/testenv"
)

// The gateway's ports as the cache shows them: ovn-controller's localnet
// patch port (marked on the Port row) and ofport numbers, which only
// ovs-vswitchd writes (played here by a second client).
func TestGatewayPortsFromCache(t *testing.T) {
	d := startDB(t, true)
	c := d.connect(t)
	other := d.other(t)
	ctx := tctx(t)

	d.vsctl(t, "add-br", "br-ex", "--", "add-port", "br-ex", "eth0", "--", "add-br", "br-int")
	testenv.WaitFor(t, timeout, func() error {
		if p, err := c.LocalnetPatchPort(ctx, "br-ex"); err != nil || p != "" {
			return fmt.Errorf("patch port before ovn-controller made one: %q, %v", p, err)
		}
		if _, _, err := c.OFPort(ctx, "eth0"); err != nil {
			return err
		}
		return nil
	})
	if n, br, err := c.OFPort(ctx, "eth0"); err != nil || n != 0 || br != "br-ex" {
		t.Errorf("eth0 before ovs-vswitchd numbered it = %d, %q, %v; want 0, br-ex", n, br, err)
	}
	if _, _, err := c.OFPort(ctx, "nope"); err == nil || !strings.Contains(err.Error(), "no interface nope") {
		t.Errorf("missing interface: %v", err)
	}

	const patch = "patch-br-ex_node1-to-br-int"
	d.vsctl(t, "add-port", "br-ex", patch, "--", "set", "Port", patch, "external_ids:ovn-localnet-port=physnet")
	// The same mark on a port of another bridge is not br-ex's.
	d.vsctl(t, "add-port", "br-int", "other-patch", "--", "set", "Port", "other-patch", "external_ids:ovn-localnet-port=x")
	setIface(t, other, "eth0", ovsdb.Row{"ofport": 1})
	setIface(t, other, patch, ovsdb.Row{"ofport": 7})
	testenv.WaitFor(t, timeout, func() error {
		p, err := c.LocalnetPatchPort(ctx, "br-ex")
		if err != nil || p != patch {
			return fmt.Errorf("patch port = %q, %v", p, err)
		}
		if n, br, err := c.OFPort(ctx, patch); err != nil || n != 7 || br != "br-ex" {
			return fmt.Errorf("%s = %d, %q, %v", patch, n, br, err)
		}
		if n, _, err := c.OFPort(ctx, "eth0"); err != nil || n != 1 {
			return fmt.Errorf("eth0 = %d, %v", n, err)
		}
		return nil
	})

	d.vsctl(t, "add-port", "br-ex", "second", "--", "set", "Port", "second", "external_ids:ovn-localnet-port=y")
	testenv.WaitFor(t, timeout, func() error {
		if _, err := c.LocalnetPatchPort(ctx, "br-ex"); err == nil || !strings.Contains(err.Error(), "several localnet patch ports") {
			return fmt.Errorf("two patch ports: %v", err)
		}
		return nil
	})
	if p, err := c.LocalnetPatchPort(ctx, "no-such-br"); err != nil || p != "" {
		t.Errorf("missing bridge = %q, %v", p, err)
	}
}
