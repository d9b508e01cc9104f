package policy

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/kovn-io/kovn/go-controller/pkg/controller/internal/ctltest"
	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	"github.com/kovn-io/kovn/go-controller/pkg/testenv"
)

// TestMatchesAcceptedByOVN programs a variety of policies into a real
// NB, waits until northd has turned every ACL into logical flows, and
// has ovn-trace parse all of them: northd copies matches without parsing
// them, ovn-trace parses every flow as ovn-controller would and warns
// "parsing expression failed" for a bad one (checked below on a
// deliberately bad ACL, so the check itself is known to work).
func TestMatchesAcceptedByOVN(t *testing.T) {
	o := testenv.StartOVN(t)
	trace, err := exec.LookPath("ovn-trace")
	if err != nil {
		if os.Getenv("KOVN_REQUIRE_OVN") == "1" {
			t.Fatal("ovn-trace not found; KOVN_REQUIRE_OVN=1 forbids skipping")
		}
		t.Skip("ovn-trace not found")
	}
	h := newHarnessOn(t, ctltest.NewEnvAt(t, o.NBAddr))
	populate(h)
	i := h.start()
	for _, p := range variety() {
		h.policy(p)
	}
	h.waitMembers("kovn_np.team_b.from_a", "team-b_b1")
	i.Settle(t)

	var matches []string
	for _, a := range h.NB.Cache().Table(nbdb.ACLTable).RowsShallow() {
		matches = append(matches, a.(*nbdb.ACL).Match)
	}
	if len(matches) < 14 {
		t.Fatalf("only %d ACLs programmed: %q", len(matches), matches)
	}
	waitFlows(t, o, matches)
	if out := runTrace(t, o, trace); strings.Contains(out, "parsing") || strings.Contains(out, "rror") {
		t.Errorf("ovn-trace could not parse some flows:\n%s", out)
	}
	if log := o.NorthdLog(t); strings.Contains(log, "Syntax error") || strings.Contains(log, "|ERR|") {
		t.Errorf("northd log:\n%s", log)
	}

	// The control: a bad match is caught.
	bad := "outport == @" + webPG + " && ip4.src == $kovn_no_such_set"
	pg, err := nbops.GetPortGroup(h.NB, webPG)
	if err != nil {
		t.Fatal(err)
	}
	acls := []*nbdb.ACL{}
	for _, a := range h.acls(webPG) {
		acls = append(acls, a)
	}
	acls = append(acls, &nbdb.ACL{Action: "drop", Direction: "to-lport", Priority: 1, Match: bad,
		ExternalIDs: map[string]string{"kovn.io/id": "control"}})
	h.apply("bad ACL", func() ([]ovsdbOp, error) { return nbops.EnsurePortGroupACLs(h.NB, pg.UUID, acls) })
	waitFlows(t, o, []string{bad})
	if out := runTrace(t, o, trace); !strings.Contains(out, "parsing expression failed") {
		t.Errorf("ovn-trace did not flag a bad match:\n%s", out)
	}
}

// waitFlows waits until every match is part of a logical flow.
func waitFlows(t *testing.T, o *testenv.OVN, matches []string) {
	t.Helper()
	ctltest.WaitFor(t, func() error {
		flows := o.SBCtl(t, "--bare", "--columns=match", "list", "Logical_Flow")
		for _, m := range matches {
			if !strings.Contains(flows, m) {
				return fmt.Errorf("no logical flow for %q yet", m)
			}
		}
		return nil
	})
}

// runTrace has ovn-trace load (and so parse) every logical flow, and
// returns what it logged.
func runTrace(t *testing.T, o *testenv.OVN, bin string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ctltest.WaitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--db="+o.SBAddr, "--minimal", "n1", `inport == "team-a_web-1"`)
	cmd.Env = append(os.Environ(), "OVS_RUNDIR="+o.Dir, "OVS_LOGDIR="+o.Dir, "OVN_RUNDIR="+o.Dir, "OVN_LOGDIR="+o.Dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ovn-trace: %v\n%s", err, stderr.String())
	}
	return stderr.String()
}
