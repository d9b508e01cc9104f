package ovs_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kovn-io/kovn/go-controller/pkg/node/ovs"
)

// Appctl against a real daemon's control socket: the same answers as
// ovs-appctl, found by name the way ovs-appctl finds it.
func TestAppctlRealDaemon(t *testing.T) {
	d := startDB(t, false)
	ctl := filepath.Join(d.dir, "ovsdb-server.ctl")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	got, err := ovs.Appctl(ctx, ctl, "version")
	if err != nil {
		t.Fatalf("version: %v", err)
	}
	want, err := exec.Command(lookBinaries(t, "ovs-appctl")["ovs-appctl"], "-t", ctl, "version").Output()
	if err != nil {
		t.Fatalf("ovs-appctl version: %v", err)
	}
	if strings.TrimSpace(got) != strings.TrimSpace(string(want)) {
		t.Errorf("version = %q, ovs-appctl says %q", got, want)
	}

	// By name: <OVS_RUNDIR>/<name>.<pid>.ctl, the pid from <name>.pid.
	pid, err := os.ReadFile(filepath.Join(d.dir, "ovsdb-server.pid"))
	if err != nil {
		t.Fatal(err)
	}
	byPid := filepath.Join(d.dir, fmt.Sprintf("ovsdb-server.%s.ctl", strings.TrimSpace(string(pid))))
	if err := os.Symlink(ctl, byPid); err != nil {
		t.Fatal(err)
	}
	t.Setenv("OVS_RUNDIR", d.dir)
	if got, err := ovs.Appctl(ctx, "ovsdb-server", "version"); err != nil || strings.TrimSpace(got) != strings.TrimSpace(string(want)) {
		t.Errorf("version by name = %q, %v", got, err)
	}

	// Arguments, and a reply that is an error.
	if got, err := ovs.Appctl(ctx, ctl, "ovsdb-server/list-dbs"); err != nil || !strings.Contains(got, "Open_vSwitch") {
		t.Errorf("list-dbs = %q, %v", got, err)
	}
	if _, err := ovs.Appctl(ctx, ctl, "no-such/command", "x"); err == nil || !strings.Contains(err.Error(), "is not a valid command") {
		t.Errorf("unknown command: %v, want the daemon's refusal", err)
	}
	if _, err := ovs.Appctl(ctx, "no-such-daemon", "version"); err == nil || !strings.Contains(err.Error(), "no-such-daemon.pid") {
		t.Errorf("missing daemon: %v, want its pidfile named", err)
	}
}
