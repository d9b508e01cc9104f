package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/kovntest"
)

// run runs kovnctl in-process and returns its output and exit code (as
// main would exit).
func run(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out strings.Builder
	err := newApp(&out).RunContext(context.Background(), append([]string{"kovnctl"}, args...))
	code := 0
	if err != nil {
		code = 2
		var ec cli.ExitCoder
		if errors.As(err, &ec) {
			code = ec.ExitCode()
		}
		out.WriteString("error: " + err.Error() + "\n")
	}
	return out.String(), code
}

// noKube makes sure no kubeconfig is found, so the commands run on NB and
// SB alone, as a test has no API server.
func noKube(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("KUBECONFIG", "")
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
}

// unsetenv unsets variables for one test (an empty but set variable
// still counts for urfave/cli, as for a shell).
func unsetenv(t *testing.T, names ...string) {
	for _, n := range names {
		t.Setenv(n, "") // restores the old value after the test
		os.Unsetenv(n)
	}
}

// TestCommandsWithLabEnvironment runs the commands with the variables
// `kovn-lab env` prints (OVN_NB_DB, OVN_SB_DB) instead of flags.
func TestCommandsWithLabEnvironment(t *testing.T) {
	if _, err := exec.LookPath("ovn-trace"); err != nil && os.Getenv("KOVN_REQUIRE_OVN") != "1" {
		t.Skip("ovn-trace not found")
	}
	c := kovntest.Start(t)
	noKube(t)
	unsetenv(t, "KOVN_NB", "KOVN_SB")
	t.Setenv("OVN_NB_DB", c.OVN.NBAddr)
	t.Setenv("OVN_SB_DB", c.OVN.SBAddr)

	out, code := run(t, "show", "pod", "team-a/web-1")
	if code != 0 || !strings.Contains(out, "Logical_Switch_Port team-a_web-1") || !strings.Contains(out, "api: not consulted (no kubeconfig)") {
		t.Errorf("show pod: exit %d\n%s", code, out)
	}
	out, code = run(t, "-o", "json", "show", "-n", "team-a", "policy", "allow-web")
	var tree map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &tree) != nil || tree["kind"] != "NetworkPolicy" || tree["name"] != "team-a/allow-web" {
		t.Errorf("show policy json: exit %d\n%s", code, out)
	}

	out, code = run(t, "trace", "--verbose", "--from", "team-b/x", "--to", "team-a/web-1", "--port", "80")
	t.Logf("kovnctl trace --verbose --from team-b/x --to team-a/web-1 --port 80:\n%s", out)
	if !strings.Contains(out, "\n$ ovn-trace --db="+c.OVN.SBAddr+" --detailed --ct=new") || !strings.Contains(out, `ingress(dp="n2", inport="team-b_x")`) {
		t.Errorf("trace --verbose lacks the ovn-trace command or output:\n%s", out)
	}
	if code != 0 || !strings.Contains(out, "verdict: DROPPED") || !strings.Contains(out, "isolated for ingress by NetworkPolicy team-a/allow-web") {
		t.Errorf("trace: exit %d\n%s", code, out)
	}
	out, code = run(t, "-o", "json", "trace", "--from", "team-a/client", "--to", "team-a/web-1", "--port", "80")
	t.Logf("kovnctl -o json trace --from team-a/client --to team-a/web-1 --port 80:\n%s", out)
	var res struct {
		Verdict   string
		DecidedBy []struct{ Owner, ID string }
	}
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res.Verdict != "delivered" ||
		len(res.DecidedBy) != 1 || res.DecidedBy[0].Owner != "team-a/allow-web" {
		t.Errorf("trace json: exit %d %+v\n%s", code, res, out)
	}
	if out, code = run(t, "trace", "--from", "team-a/nope", "--to", "team-a/web-1"); code != 2 || !strings.Contains(out, "no logical switch port team-a_nope") {
		t.Errorf("trace of an unknown pod: exit %d\n%s", code, out)
	}

	// Without an API, status reports that as a problem: exit 1.
	out, code = run(t, "status")
	if code != 1 || !strings.Contains(out, "ok      nb: "+c.OVN.NBAddr+" reachable") || !strings.Contains(out, "PROBLEM api: no kubeconfig") {
		t.Errorf("status: exit %d\n%s", code, out)
	}
	out, code = run(t, "--nb", "unix:/nonexistent/nb.sock", "--timeout", "1s", "status")
	if code != 1 || !strings.Contains(out, "PROBLEM nb: unix:/nonexistent/nb.sock unreachable") {
		t.Errorf("status with NB down: exit %d\n%s", code, out)
	}
}

func TestUsageErrors(t *testing.T) {
	noKube(t)
	unsetenv(t, "OVN_NB_DB", "KOVN_NB")
	for _, args := range [][]string{
		{"show", "pod"},
		{"show", "pod", "a/b"}, // no NB address
		{"-o", "yaml", "show", "pod", "a/b"},
	} {
		if out, code := run(t, args...); code != 2 {
			t.Errorf("%q: exit %d\n%s", args, code, out)
		}
	}
}
