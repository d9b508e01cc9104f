package testenv_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/sbdb"
	"github.com/kovn-io/kovn/go-controller/pkg/testenv"
)

func TestStartOVN(t *testing.T) {
	ovn := testenv.StartOVN(t)
	nb, sb := ovn.NB(t), ovn.SB(t)

	createSwitch(t, nb, "sw1", "sw1-p1")

	// northd turns the NB port into a SB Port_Binding on its own schedule.
	testenv.WaitFor(t, 10*time.Second, func() error {
		var pbs []*sbdb.PortBinding
		err := sb.WhereCache(func(pb *sbdb.PortBinding) bool { return pb.LogicalPort == "sw1-p1" }).
			List(context.Background(), &pbs)
		if err == nil && len(pbs) == 0 {
			err = fmt.Errorf("no SB Port_Binding for sw1-p1 (SB has %d)", len(sb.Cache().Table(sbdb.PortBindingTable).Rows()))
		}
		return err
	})
	if show := ovn.NBCtl(t, "show"); !strings.Contains(show, "(sw1)") || !strings.Contains(show, "port sw1-p1") {
		t.Errorf("ovn-nbctl show does not list sw1/sw1-p1:\n%s", show)
	}
	if out := ovn.SBCtl(t, "--columns=logical_port", "find", "Port_Binding", "logical_port=sw1-p1"); !strings.Contains(out, "sw1-p1") {
		t.Errorf("ovn-sbctl find Port_Binding: %q", out)
	}
	if log := ovn.NorthdLog(t); strings.Contains(log, "|ERR|") || strings.Contains(log, "|EMER|") {
		t.Errorf("northd logged errors:\n%s", log)
	}
}

func TestStartInMemoryNB(t *testing.T) {
	db := testenv.StartInMemoryNB(t)

	createSwitch(t, db.Client, "sw1", "sw1-p1")

	testenv.WaitFor(t, 10*time.Second, func() error {
		// Logical_Switch_Port has a schema index on name, so Get can
		// look it up without the row's UUID.
		lsp := &nbdb.LogicalSwitchPort{Name: "sw1-p1"}
		if err := db.Client.Get(context.Background(), lsp); err != nil {
			return fmt.Errorf("get sw1-p1: %w", err)
		}
		var switches []*nbdb.LogicalSwitch
		err := db.Client.WhereCache(func(ls *nbdb.LogicalSwitch) bool { return ls.Name == "sw1" }).
			List(context.Background(), &switches)
		if err == nil && (len(switches) != 1 || len(switches[0].Ports) != 1 || switches[0].Ports[0] != lsp.UUID) {
			err = fmt.Errorf("want sw1 with port %s, got %+v", lsp.UUID, switches)
		}
		return err
	})
}

// createSwitch creates a switch with one port in a single transaction,
// referring to the port by named UUID as ovn-nbctl would.
func createSwitch(t *testing.T, nb client.Client, name, port string) {
	t.Helper()
	lsp := &nbdb.LogicalSwitchPort{UUID: "newport", Name: port, Addresses: []string{"0a:58:0a:00:00:05 10.0.0.5"}}
	ls := &nbdb.LogicalSwitch{UUID: "newswitch", Name: name, Ports: []string{lsp.UUID}}
	// One Create per table: libovsdb rejects mixed models in one call.
	var ops []ovsdb.Operation
	for _, m := range []model.Model{lsp, ls} {
		op, err := nb.Create(m)
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, op...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := nb.Transact(ctx, ops...)
	if err != nil {
		t.Fatalf("transact: %v", err)
	}
	if _, err := ovsdb.CheckOperationResults(res, ops); err != nil {
		t.Fatalf("create %s/%s: %v (results %+v)", name, port, err, res)
	}
}

func TestStartNBCluster(t *testing.T) {
	c := testenv.StartNBCluster(t, 3)
	leader := c.Leader(t)
	if n := len(c.Addrs()); n != 3 {
		t.Fatalf("%d endpoints, want 3", n)
	}
	// A follower forwards the write to the leader, and RAFT brings it to
	// every member.
	follower := (leader + 1) % 3
	createSwitch(t, testenv.Connect(t, c.UnixAddr(follower), mustNBModel(t)), "sw1", "sw1-p1")
	for i := range 3 {
		waitNBCtl(t, c, i, "(sw1-p1)", "lsp-list", "sw1")
	}
	if out := c.NBCtl(t, leader, "lsp-list", "sw1"); !strings.Contains(out, "(sw1-p1)") {
		t.Errorf("leader nb%d: lsp-list sw1: %q", leader, out)
	}
}

func TestNBClusterKillRestart(t *testing.T) {
	c := testenv.StartNBCluster(t, 3)
	old := c.Leader(t)
	c.Kill(t, old)
	leader := c.Leader(t)
	if leader == old {
		t.Fatalf("nb%d still leader after it was killed", old)
	}
	// The two survivors are a majority: writes go on.
	createSwitch(t, testenv.Connect(t, c.UnixAddr(leader), mustNBModel(t)), "sw1", "sw1-p1")

	// Restarted, the old leader follows the new one and catches up on
	// what it missed.
	c.Restart(t, old)
	waitNBCtl(t, c, old, "(sw1-p1)", "lsp-list", "sw1")
}

// waitNBCtl polls member i with ovn-nbctl until the output contains want:
// followers apply a commit a moment after the leader.
func waitNBCtl(t *testing.T, c *testenv.Cluster, i int, want string, args ...string) {
	t.Helper()
	testenv.WaitFor(t, 10*time.Second, func() error {
		if out := c.NBCtl(t, i, args...); !strings.Contains(out, want) {
			return fmt.Errorf("nb%d: ovn-nbctl %s: %q lacks %q", i, strings.Join(args, " "), out, want)
		}
		return nil
	})
}

func mustNBModel(t *testing.T) model.ClientDBModel {
	t.Helper()
	m, err := nbdb.FullDatabaseModel()
	if err != nil {
		t.Fatal(err)
	}
	return m
}
