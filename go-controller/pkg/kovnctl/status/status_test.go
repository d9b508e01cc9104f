package status

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/kovntest"
)

func TestUnreachableAndNoAPI(t *testing.T) {
	r := Run(context.Background(), DefaultConfig(), Inputs{NBAddr: "tcp:192.0.2.1:6641", NBErr: errors.New("i/o timeout")})
	var got []string
	for _, p := range r.Problems() {
		got = append(got, p.Object+": "+p.Message)
	}
	want := []string{
		"nb: tcp:192.0.2.1:6641 unreachable: i/o timeout",
		"sb: no address given (--sb or KOVN_SB / OVN_SB_DB)",
		"api: no kubeconfig: leader, nodes, pods and stale rows are not checked",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var b strings.Builder
	if err := r.WriteText(&b); err != nil || !strings.HasSuffix(b.String(), "3 problems found\n") ||
		!strings.HasPrefix(b.String(), "PROBLEM nb: ") {
		t.Errorf("text %q %v", b.String(), err)
	}
}

func TestLeader(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cfg := DefaultConfig()
	cfg.Now = func() time.Time { return now }
	for _, tc := range []struct {
		name    string
		holder  string
		renewed time.Time
		ok      bool
		msg     string
	}{
		{"fresh", "controller-1", now.Add(-3 * time.Second), true, "kovn-system/kovn-controller held by controller-1, renewed 3s ago"},
		{"expired", "controller-1", now.Add(-25 * time.Second), false, "Lease kovn-system/kovn-controller held by controller-1 expired 15s ago: the leader stopped renewing"},
		{"released", "", now, false, "Lease kovn-system/kovn-controller has no holder: no kovn-controller is leading"},
	} {
		r := &Report{}
		leader(context.Background(), r, cfg, fake.NewSimpleClientset(kovntest.Lease(tc.holder, tc.renewed)))
		if len(r.Checks) != 1 || r.Checks[0].OK != tc.ok || r.Checks[0].Message != tc.msg {
			t.Errorf("%s: %+v", tc.name, r.Checks)
		}
	}
	r := &Report{}
	leader(context.Background(), r, cfg, fake.NewSimpleClientset())
	if len(r.Checks) != 1 || r.Checks[0].OK || !strings.Contains(r.Checks[0].Message, "not found") {
		t.Errorf("no lease: %+v", r.Checks)
	}
}

func TestNodeHeartbeat(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cfg := DefaultConfig()
	cfg.Now = func() time.Time { return now }
	fresh := kovntest.NodeLease("n1", now.Add(-3*time.Second))
	edge := kovntest.NodeLease("n1", now.Add(-40*time.Second))
	stale := kovntest.NodeLease("n1", now.Add(-95*time.Second))
	ahead := kovntest.NodeLease("n1", now.Add(5*time.Second))
	short := kovntest.NodeLease("n1", now.Add(-15*time.Second))
	d := int32(10)
	short.Spec.LeaseDurationSeconds = &d
	unrenewed := kovntest.NodeLease("n1", now)
	unrenewed.Spec.RenewTime = nil
	other := kovntest.NodeLease("n2", now)
	for _, tc := range []struct {
		name  string
		lease runtime.Object
		ok    bool
		msg   string
	}{
		{"fresh", fresh, true, "kovn-node renewed 3s ago"},
		{"at its duration", edge, true, "kovn-node renewed 40s ago"},
		{"stale", stale, false, "kovn-node silent for 1m35s (Lease kovn-system/kovn-node-n1 last renewed at 2026-01-02T03:02:30Z)"},
		{"stale by its own duration", short, false, "kovn-node silent for 15s (Lease kovn-system/kovn-node-n1 last renewed at 2026-01-02T03:03:50Z)"},
		{"missing", other, false, "kovn-node has never reported (no Lease kovn-system/kovn-node-n1)"},
		{"no renewTime", unrenewed, false, "kovn-node has never reported (Lease kovn-system/kovn-node-n1 has no renewTime)"},
		{"clock ahead", ahead, true, "kovn-node renewed 5s in the future (clock skew)"},
	} {
		cl, err := list(context.Background(), fake.NewSimpleClientset(tc.lease))
		if err != nil {
			t.Fatal(err)
		}
		r := &Report{}
		fact := nodeHeartbeat(r, cfg, "node/n1", "n1", cl)
		switch {
		case tc.ok && (fact != tc.msg || len(r.Checks) != 0):
			t.Errorf("%s: fact %q, checks %+v; want fact %q", tc.name, fact, r.Checks, tc.msg)
		case !tc.ok && (fact != "" || len(r.Checks) != 1 || r.Checks[0].OK || r.Checks[0].Object != "node/n1" || r.Checks[0].Message != tc.msg):
			t.Errorf("%s: fact %q, checks %+v; want problem %q", tc.name, fact, r.Checks, tc.msg)
		}
	}
}

// Without NB the node lines hold only the heartbeat; a stale or missing
// Lease is a problem (exit 1), whatever else could not be checked.
func TestHeartbeatWithoutNB(t *testing.T) {
	now := time.Now()
	cfg := DefaultConfig()
	cfg.Now = func() time.Time { return now }
	node := func(name string) *corev1.Node { return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}} }
	kc := fake.NewSimpleClientset(node("n1"), node("n2"), node("n3"), kovntest.Lease("controller-0", now),
		kovntest.NodeLease("n1", now.Add(-2*time.Second)), kovntest.NodeLease("n2", now.Add(-time.Minute)))
	r := Run(context.Background(), cfg, Inputs{Kube: kc, NBAddr: "tcp:192.0.2.1:6641", NBErr: errors.New("refused"), SBAddr: "tcp:192.0.2.1:6642", SBErr: errors.New("refused")})
	var got []string
	for _, c := range r.Checks {
		if strings.HasPrefix(c.Object, "node/") {
			got = append(got, fmt.Sprintf("%v %s: %s", c.OK, c.Object, c.Message))
		}
	}
	want := []string{
		"true node/n1: kovn-node renewed 2s ago",
		"false node/n2: kovn-node silent for 1m0s (Lease kovn-system/kovn-node-n2 last renewed at " + now.Add(-time.Minute).UTC().Format(time.RFC3339) + ")",
		"false node/n3: kovn-node has never reported (no Lease kovn-system/kovn-node-n3)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("node lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(r.Notes) != 0 {
		t.Errorf("notes: %q", r.Notes)
	}
}

// Leases that cannot be listed are one problem; the other checks go on.
func TestHeartbeatLeasesUnreadable(t *testing.T) {
	kc := fake.NewSimpleClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}, kovntest.Lease("controller-0", time.Now()))
	kc.PrependReactor("list", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}, "", errors.New("no RBAC"))
	})
	r := Run(context.Background(), DefaultConfig(), Inputs{Kube: kc, NBAddr: "x", NBErr: errors.New("refused"), SBAddr: "y", SBErr: errors.New("refused")})
	var got []string
	for _, p := range r.Problems() {
		got = append(got, p.Object+": "+p.Message)
	}
	if len(got) != 3 || !strings.HasPrefix(got[2], "api: cannot list kovn-node's heartbeat Leases in kovn-system: ") {
		t.Errorf("problems %q", got)
	}
	for _, c := range r.Checks {
		if c.Object == "leader" && !c.OK {
			t.Errorf("leader: %s", c.Message)
		}
	}
}
