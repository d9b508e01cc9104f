package status_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/kovntest"
	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/nbview"
	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/ovndb"
	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/sbview"
	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/status"
)

// snapshot connects as the command does and runs status.
func snapshot(t *testing.T, c *kovntest.Cluster, objs []runtime.Object, cfg status.Config) *status.Report {
	t.Helper()
	return snapshotAPI(t, c, fake.NewSimpleClientset(objs...), cfg)
}

// snapshotAPI is snapshot with a given API.
func snapshotAPI(t *testing.T, c *kovntest.Cluster, kc kubernetes.Interface, cfg status.Config) *status.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), kovntest.Timeout)
	defer cancel()
	in := status.Inputs{Kube: kc, NBAddr: c.OVN.NBAddr, SBAddr: c.OVN.SBAddr}
	nb, err := ovndb.NB(ctx, c.OVN.NBAddr, nil, nbview.Tables()...)
	if err != nil {
		t.Fatal(err)
	}
	defer nb.Close()
	sb, err := ovndb.SB(ctx, c.OVN.SBAddr, nil, sbview.Tables()...)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	in.NB, in.SB = nbview.FromClient(nb), sbview.FromClient(sb)
	r := status.Run(ctx, cfg, in)
	var b strings.Builder
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	t.Logf("kovnctl status:\n%s", b.String())
	return r
}

func problems(r *status.Report) []string {
	var out []string
	for _, p := range r.Problems() {
		out = append(out, p.Object+": "+p.Message)
	}
	return out
}

// hasProblem wants exactly one problem of obj containing text.
func hasProblem(t *testing.T, r *status.Report, obj, text string) {
	t.Helper()
	n := 0
	for _, p := range r.Problems() {
		if p.Object == obj && strings.Contains(p.Message, text) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("want one problem %s: …%s…; have %q", obj, text, problems(r))
	}
}

func TestStatusAgainstOVN(t *testing.T) {
	c := kovntest.Start(t)
	for _, n := range kovntest.Nodes {
		c.AddChassis(t, n.Chassis, n.Name, strings.Split(n.NodeIP, "/")[0], 0)
	}
	for _, p := range kovntest.Pods {
		c.Bind(t, p.Namespace+"_"+p.Name, "chassis-"+p.Node, true)
	}
	for _, n := range kovntest.Nodes {
		c.Bind(t, "kovn-mp-"+n.Name, n.Chassis, true)
	}
	c.WaitSB(t, "Chassis_Private", "name", "chassis-n1", "chassis-n2")

	t.Run("healthy", func(t *testing.T) {
		r := snapshot(t, c, kovntest.Objects(), status.DefaultConfig())
		if p := problems(r); len(p) != 0 {
			t.Errorf("problems on a healthy cluster: %q", p)
		}
		if len(r.Checks) != 7 { // nb, sb, leader, 2 nodes, pods, stale
			t.Errorf("%d checks: %+v", len(r.Checks), r.Checks)
		}
		for _, c := range r.Checks {
			if strings.HasPrefix(c.Object, "node/") && !strings.HasSuffix(c.Message, ", kovn-node renewed 0s ago") {
				t.Errorf("node line without kovn-node's heartbeat: %s: %s", c.Object, c.Message)
			}
		}
		if len(r.Notes) != 0 {
			t.Errorf("notes: %q", r.Notes)
		}
	})

	t.Run("kovn-node stopped", func(t *testing.T) {
		// n1's kovn-node stopped two minutes ago; n2's never ran with a
		// heartbeat. Nothing else shows it: every other check passes.
		now := time.Now()
		objs := nodeLeases(kovntest.Objects(), map[string]time.Time{"n1": now.Add(-2 * time.Minute)})
		cfg := status.DefaultConfig()
		cfg.Now = func() time.Time { return now }
		r := snapshot(t, c, objs, cfg)
		hasProblem(t, r, "node/n1", "kovn-node silent for 2m0s (Lease kovn-system/kovn-node-n1 last renewed at "+
			now.Add(-2*time.Minute).UTC().Format(time.RFC3339)+")")
		hasProblem(t, r, "node/n2", "kovn-node has never reported (no Lease kovn-system/kovn-node-n2)")
		if n := len(r.Problems()); n != 2 {
			t.Errorf("%d problems: %q", n, problems(r))
		}
	})

	t.Run("unplugged pod, unbound and down ports", func(t *testing.T) {
		// team-b/x loses its binding, as when nothing on n2 plugs it;
		// team-a/client stays bound but not up; so does n1's
		// management port.
		c.OVN.SBCtl(t, "lsp-unbind", "team-b_x")
		c.OVN.SBCtl(t, "set", "port_binding", "team-a_client", "up=false")
		c.OVN.SBCtl(t, "set", "port_binding", "kovn-mp-n1", "up=false")
		defer c.Bind(t, "team-b_x", "chassis-n2", true)
		defer c.OVN.SBCtl(t, "set", "port_binding", "team-a_client", "up=true")
		defer c.OVN.SBCtl(t, "set", "port_binding", "kovn-mp-n1", "up=true")
		r := snapshot(t, c, kovntest.Objects(), status.DefaultConfig())
		hasProblem(t, r, "pod/team-b/x", "port team-b_x is bound to no chassis: nothing on node n2 has plugged it")
		hasProblem(t, r, "pod/team-a/client", "bound on chassis-n2 but not up")
		hasProblem(t, r, "node/n2", "1 pod(s) on the node for over 30s have no plugged port (team-b/x): kovn-node there is stopped or failing")
		hasProblem(t, r, "node/n1", "management port kovn-mp-n1 is bound but not up")
		if n := len(r.Problems()); n != 4 {
			t.Errorf("%d problems: %q", n, problems(r))
		}
		// Within the grace period pods are only counted.
		cfg := status.DefaultConfig()
		cfg.Grace = 2 * time.Hour
		r = snapshot(t, c, kovntest.Objects(), cfg)
		if p := problems(r); len(p) != 1 {
			t.Errorf("problems within the grace period: %q", p)
		}
	})

	t.Run("pod refused by the controller", func(t *testing.T) {
		// team-b/bad on n2 asks for an address outside n2's subnet:
		// kovn-controller gives it none and says why in a Warning
		// Event. That is the controller's refusal, not kovn-node's
		// failure: n2's kovn-node is not blamed.
		kc := fake.NewSimpleClientset(append(kovntest.Objects(), kovntest.RefusedPod())...)
		msg := kovntest.Refusal(kovntest.Nodes[1].Subnet, "team-b/bad", kovntest.RefusedIP)
		kovntest.RecordWarning(t, kc, kovntest.RefusedPod(), "Pod", "IPOutOfRange", msg)
		r := snapshotAPI(t, c, kc, status.DefaultConfig())
		hasProblem(t, r, "pod/team-b/bad", "kovn-controller refused the pod: IPOutOfRange: "+msg+" (Warning Event from kovn-controller, once, last ")
		if p := problems(r); len(p) != 1 {
			t.Errorf("problems: %q", p)
		}
		// Without the Event (expired, or never recorded) status says
		// the pod has no address, and still does not blame kovn-node.
		r = snapshot(t, c, append(kovntest.Objects(), kovntest.RefusedPod()), status.DefaultConfig())
		hasProblem(t, r, "pod/team-b/bad", "no kovn.io/pod-network annotation: kovn-controller has not given it an address")
		if p := problems(r); len(p) != 1 {
			t.Errorf("problems: %q", p)
		}
	})

	t.Run("stale rows and no leader", func(t *testing.T) {
		var objs []runtime.Object
		for _, o := range kovntest.Objects() {
			switch kovntest.Name(o) {
			case "Service team-a/web", "Pod team-b/x", "NetworkPolicy team-a/allow-web", "Lease kovn-system/kovn-controller":
				continue
			}
			objs = append(objs, o)
		}
		objs = append(objs, kovntest.Lease("", time.Now()))
		r := snapshot(t, c, objs, status.DefaultConfig())
		hasProblem(t, r, "leader", "has no holder")
		if n := len(r.Problems()); n != 5 {
			t.Errorf("%d problems: %q", n, problems(r))
		}
		hasProblem(t, r, "stale", "rows of Service team-a/web (no such Service): Load_Balancer Service_team-a/web_TCP")
		hasProblem(t, r, "stale", "rows of Pod team-b/x (no such Pod): Logical_Switch_Port team-b_x")
		hasProblem(t, r, "stale", "rows of NetworkPolicy team-a/allow-web (no such NetworkPolicy): ACL ")
		hasProblem(t, r, "stale", "rows of NetworkPolicyIsolation team-a (no NetworkPolicy of namespace team-a isolates for ingress): ACL ")
	})

	t.Run("chassis gone and lagging", func(t *testing.T) {
		c.OVN.SBCtl(t, "chassis-del", "chassis-n2")
		// NB asks chassis for nb_cfg 3; chassis-n1 never answers.
		c.OVN.NBCtl(t, "set", "nb_global", ".", "nb_cfg=3")
		testWait(t, func() bool {
			return strings.TrimSpace(c.OVN.NBCtl(t, "get", "nb_global", ".", "nb_cfg_timestamp")) != "0"
		})
		cfg := status.DefaultConfig()
		later := time.Now().Add(time.Minute)
		cfg.Now = func() time.Time { return later }
		// kovn-node keeps renewing on both nodes meanwhile.
		objs := nodeLeases(kovntest.Objects(), map[string]time.Time{"n1": later, "n2": later})
		r := snapshot(t, c, objs, cfg)
		hasProblem(t, r, "node/n2", `no chassis in SB (chassis ID "chassis-n2", hostname n2)`)
		hasProblem(t, r, "node/n1", "chassis chassis-n1 is at nb_cfg 0, NB asked for 3")
		hasProblem(t, r, "leader", "expired") // a minute later the lease is stale too
		hasProblem(t, r, "pod/team-b/x", "bound to no chassis")
		// Nothing can be plugged on n2 without a chassis: that, not
		// kovn-node or the management port, is n2's problem.
		for _, p := range problems(r) {
			if strings.Contains(p, "kovn-node") {
				t.Errorf("kovn-node blamed for a missing chassis: %s", p)
			}
		}
	})
}

// nodeLeases replaces every node's heartbeat Lease by one renewed at
// renewed[node]; a node not in renewed has none.
func nodeLeases(objs []runtime.Object, renewed map[string]time.Time) []runtime.Object {
	var out []runtime.Object
	for _, o := range objs {
		if !strings.HasPrefix(kovntest.Name(o), "Lease kovn-system/kovn-node-") {
			out = append(out, o)
		}
	}
	for node, at := range renewed {
		out = append(out, kovntest.NodeLease(node, at))
	}
	return out
}

func testWait(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(kovntest.Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
