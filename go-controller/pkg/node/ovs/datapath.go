package ovs

import (
	"context"
	"fmt"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/vswitchd"
)

// CapCTZeroSNAT is the Datapath capability ovn-controller reads to decide
// whether its conntrack commits carry an all-zero SNAT.
const CapCTZeroSNAT = "ct_zero_snat"

// HideCTZeroSNAT makes the Datapath row of dpType report ct_zero_snat as
// unsupported, so that ovn-controller stops adding an all-zero SNAT to the
// commits of stateful ACLs. OVS 3.1's userspace conntrack keeps such a
// connection twice under one key (the connection's reply tuple and its
// "un-NAT" twin) and ovs-vswitchd aborts on
// "assertion conn->conn_type == CT_CONN_TYPE_DEFAULT failed in
// conn_update_state()" under NetworkPolicy traffic; without the zero SNAT
// the lab's policy suite runs clean. ovs-vswitchd writes its boot-time
// value back only when it (re)creates the row, i.e. when it restarts, so
// callers repeat this. It reports whether it wrote anything; a missing row
// (ovs-vswitchd not there yet) is an error.
func (c *Client) HideCTZeroSNAT(ctx context.Context, dpType string) (bool, error) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	root, err := c.root(ctx)
	if err != nil {
		return false, err
	}
	uuid := root.Datapaths[dpType]
	if uuid == "" {
		return false, fmt.Errorf("no %s datapath in Open_vSwitch yet", dpType)
	}
	dp, err := get(ctx, c.ovs, &vswitchd.Datapath{UUID: uuid})
	if err != nil {
		return false, fmt.Errorf("datapath %s: %w", dpType, err)
	}
	muts := mapMutations("capabilities", dp.Capabilities, map[string]string{CapCTZeroSNAT: "false"}, nil)
	if len(muts) == 0 {
		return false, nil
	}
	return true, c.transact(ctx, "hide ct_zero_snat of "+dpType, []ovsdb.Operation{mutateOp(vswitchd.DatapathTable, uuid, muts...)})
}
