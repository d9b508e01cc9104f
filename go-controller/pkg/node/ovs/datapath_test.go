package ovs_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kovn-io/kovn/go-controller/pkg/testenv"
)

// HideCTZeroSNAT flips only ct_zero_snat of the datapath of its type, once,
// and keeps the other capabilities ovs-vswitchd reported.
func TestHideCTZeroSNAT(t *testing.T) {
	db := startDB(t, true)
	c := db.connect(t)
	if _, err := c.HideCTZeroSNAT(tctx(t), "netdev"); err == nil {
		t.Fatal("no netdev datapath yet, and no error")
	}
	// What ovs-vswitchd writes when it creates the row.
	db.vsctl(t, "--", "--id=@dp", "create", "Datapath", `capabilities={ct_zero_snat="true", recirc="true"}`,
		"--", "set", "Open_vSwitch", ".", "datapaths:netdev=@dp")
	db.vsctl(t, "--", "--id=@dp", "create", "Datapath", `capabilities={ct_zero_snat="true"}`,
		"--", "set", "Open_vSwitch", ".", "datapaths:system=@dp")
	var changed bool
	testenv.WaitFor(t, 5*time.Second, func() error {
		var err error
		changed, err = c.HideCTZeroSNAT(tctx(t), "netdev")
		return err
	})
	if !changed {
		t.Error("first call reported no change")
	}
	caps := func(typ string) string {
		uuid := strings.TrimSpace(db.vsctl(t, "get", "Open_vSwitch", ".", "datapaths:"+typ))
		return strings.TrimSpace(db.vsctl(t, "get", "Datapath", uuid, "capabilities"))
	}
	if got := caps("netdev"); got != `{ct_zero_snat="false", recirc="true"}` {
		t.Errorf("netdev capabilities %s", got)
	}
	if got := caps("system"); got != `{ct_zero_snat="true"}` {
		t.Errorf("the system datapath was touched: %s", got)
	}
	if n := txns(t, c, func() error { _, err := c.HideCTZeroSNAT(tctx(t), "netdev"); return err }); n != 0 {
		t.Errorf("second call sent %d transactions", n)
	}
	// ovs-vswitchd restarted: its boot-time value is back.
	uuid := strings.TrimSpace(db.vsctl(t, "get", "Open_vSwitch", ".", "datapaths:netdev"))
	db.vsctl(t, "set", "Datapath", uuid, "capabilities:ct_zero_snat=true")
	testenv.WaitFor(t, 5*time.Second, func() error {
		if _, err := c.HideCTZeroSNAT(tctx(t), "netdev"); err != nil {
			return err
		}
		if got := caps("netdev"); got != `{ct_zero_snat="false", recirc="true"}` {
			return fmt.Errorf("capabilities %s", got)
		}
		return nil
	})
}
