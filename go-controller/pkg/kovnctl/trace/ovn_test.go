package trace_test

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/kovntest"
	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/nbview"
	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/ovndb"
	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/trace"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// TestTraceAgainstOVN traces pod pairs through a topology programmed
// with kovn's own Desired functions into a real NB, translated by a real
// northd, with the real ovn-trace.
func TestTraceAgainstOVN(t *testing.T) {
	if _, err := exec.LookPath("ovn-trace"); err != nil {
		if os.Getenv("KOVN_REQUIRE_OVN") == "1" {
			t.Fatal("ovn-trace not found; KOVN_REQUIRE_OVN=1 forbids skipping")
		}
		t.Skip("ovn-trace not found")
	}
	c := kovntest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), kovntest.Timeout)
	defer cancel()
	nb, err := ovndb.NB(ctx, c.OVN.NBAddr, nil, nbview.Tables()...)
	if err != nil {
		t.Fatal(err)
	}
	defer nb.Close()
	sb, err := ovndb.SB(ctx, c.OVN.SBAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	tr := &trace.Tracer{View: nbview.FromClient(nb), SB: c.OVN.SBAddr, Hints: trace.SBHints(sb)}
	policyPG := own.PolicyPortGroup("team-a", "allow-web")
	isoPG := own.IsolationPortGroup("team-a", "ingress")

	for _, tc := range []struct {
		name     string
		req      trace.Request
		verdict  trace.Verdict
		path     []string
		because  string // prefix
		decided  []string
		portGrps []string
	}{{
		name: "allowed across nodes", req: trace.Request{From: "team-a/client", To: "team-a/web-1", Port: 80},
		verdict: trace.Delivered, path: []string{"n2", own.ClusterRouter, "n1", "port team-a_web-1"},
		because: "allowed by NetworkPolicy team-a/allow-web, ingress rule 0",
		decided: []string{own.KindNetworkPolicy + " team-a/allow-web ingress/0"}, portGrps: []string{policyPG},
	}, {
		name: "other namespace denied", req: trace.Request{From: "team-b/x", To: "team-a/web-1", Port: 80},
		verdict: trace.Dropped, path: []string{"n2", own.ClusterRouter, "n1"},
		because: "denied by default deny of namespace team-a for ingress: team-a/web-1 is isolated for ingress by NetworkPolicy team-a/allow-web",
		decided: []string{own.KindPolicyIsolation + " team-a ingress/drop"}, portGrps: []string{isoPG},
	}, {
		name: "port not allowed", req: trace.Request{From: "team-a/client", To: "team-a/web-1", Proto: "udp", Port: 80},
		verdict: trace.Dropped, path: []string{"n2", own.ClusterRouter, "n1"},
		because: "denied by default deny of namespace team-a",
		decided: []string{own.KindPolicyIsolation + " team-a ingress/drop"}, portGrps: []string{isoPG},
	}, {
		name: "no policy in the way", req: trace.Request{From: "team-a/web-1", To: "team-b/x"},
		verdict: trace.Delivered, path: []string{"n1", own.ClusterRouter, "n2", "port team-b_x"},
		because: "no NetworkPolicy ACL applies",
	}, {
		// SB has not learned the physical router's MAC (no chassis
		// here to learn it): the gateway router asks for it.
		name: "out of the cluster, next hop not learned", req: trace.Request{From: "team-a/web-1", To: "8.8.8.8", Port: 443},
		verdict: trace.Unresolved, path: []string{"n1", own.ClusterRouter, "kovn_join", "GR_n1"},
		because: "ovn-trace stops where a router must resolve an address",
	}, {
		// The service sends port 80 to the pod's 8080, which the policy
		// does not allow: policies apply to the backend after DNAT.
		name: "service to a port the policy does not allow", req: trace.Request{From: "team-a/client", To: kovntest.ClusterIP, Port: 80},
		verdict: trace.Dropped, path: []string{"n2", own.ClusterRouter, "n1"},
		because: "denied by default deny of namespace team-a for ingress: team-a/web-1 is isolated for ingress by NetworkPolicy team-a/allow-web",
		decided: []string{own.KindPolicyIsolation + " team-a ingress/drop"}, portGrps: []string{isoPG},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := tr.Trace(ctx, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			var text strings.Builder
			if err := res.WriteText(&text, false); err != nil {
				t.Fatal(err)
			}
			t.Logf("kovnctl trace output:\n%s", text.String())
			if res.Verdict != tc.verdict {
				t.Errorf("verdict %s, want %s", res.Verdict, tc.verdict)
			}
			if tc.path != nil && !slices.Equal(res.Path, tc.path) {
				t.Errorf("path %q, want %q", res.Path, tc.path)
			}
			if !strings.HasPrefix(res.Because, tc.because) {
				t.Errorf("because %q, want prefix %q", res.Because, tc.because)
			}
			var decided, groups []string
			for _, a := range res.DecidedBy {
				decided = append(decided, a.OwnerKind+" "+a.Owner+" "+a.ID)
				groups = append(groups, a.PortGroup)
				if a.By != "stage-hint" {
					t.Errorf("ACL %s tied by %s, want stage-hint (SB was reachable)", a.UUID, a.By)
				}
			}
			if !slices.Equal(decided, tc.decided) || !slices.Equal(groups, tc.portGrps) {
				t.Errorf("decided by %q in %q, want %q in %q", decided, groups, tc.decided, tc.portGrps)
			}
			if tc.verdict == trace.Unresolved && (res.Router != "GR_n1" || res.NextHop != "172.18.0.1") {
				t.Errorf("unresolved at %s for %s, want GR_n1 for 172.18.0.1", res.Router, res.NextHop)
			}
			if strings.Contains(tc.name, "service") != (len(res.LoadBalancing) == 1) {
				t.Errorf("load balancing %q", res.LoadBalancing)
			}
			if len(res.Warnings) > 0 {
				t.Errorf("warnings: %q", res.Warnings)
			}
			if t.Failed() {
				t.Logf("ovn-trace output:\n%s", res.Raw)
			}
		})
	}

	// Once SB knows the next hop's MAC, as it does in a live cluster,
	// the packet leaves through the node's localnet port.
	dp := strings.TrimSpace(c.OVN.SBCtl(t, "--bare", "--columns=_uuid", "find", "datapath_binding", "external_ids:name=GR_n1"))
	c.OVN.SBCtl(t, "create", "mac_binding", "datapath="+dp, "logical_port=rtoe-GR_n1", "ip=172.18.0.1", `mac="02:00:00:00:00:01"`)
	res, err := tr.Trace(ctx, trace.Request{From: "team-a/web-1", To: "8.8.8.8", Port: 443})
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	_ = res.WriteText(&text, false)
	t.Logf("kovnctl trace output:\n%s", text.String())
	want := []string{"n1", own.ClusterRouter, "kovn_join", "GR_n1", "ext_n1", "port lnet-n1"}
	if res.Verdict != trace.Delivered || !slices.Equal(res.Path, want) || res.DeliveredTo[0].PortType != "localnet" {
		t.Errorf("verdict %s path %q, want delivered along %q\n%s", res.Verdict, res.Path, want, res.Raw)
	}
}
