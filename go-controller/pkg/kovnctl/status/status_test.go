package status

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes/fake"

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
