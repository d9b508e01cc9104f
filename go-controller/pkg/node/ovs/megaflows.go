package ovs

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// ExactFlows keeps megaflows disabled in one ovs-vswitchd: every datapath
// flow it installs then matches all of a packet's fields.
//
// Why: OVS 3.1's userspace datapath (dpif-netdev) applies a revalidator's
// "modify actions" to whichever installed flow a lookup of the flow's key
// finds first, not to the flow the revalidator meant (it looks up by key,
// not by flow id). When a policy change makes a broader flow (say "drop
// everything from this pod to anywhere") coexist with a narrower one
// installed earlier ("allow this pod to that pod's port 80"), the
// revalidator's attempt to turn the narrow flow into a drop lands on the
// broad one, and the narrow flow keeps allowing new connections for as
// long as traffic keeps it alive. The lab's NetworkPolicy suite saw that
// as a single wrongly allowed entry in about half of its runs, cured by
// `ovs-appctl revalidator/purge`. Exact-match flows cannot overlap, so
// every modify lands where it was meant.
//
// The price is one upcall per new connection instead of per megaflow;
// the kernel datapath looks flows up by id and does not need this.
//
// The setting lives in ovs-vswitchd's memory and switching it flushes
// every datapath flow, so it is applied once per ovs-vswitchd process,
// recognised by its pid.
type ExactFlows struct {
	// RunDir holds ovs-vswitchd.pid (default: $OVS_RUNDIR, else
	// /var/run/openvswitch).
	RunDir string
	// Appctl runs an ovs-appctl command (default: the ovs-appctl binary).
	Appctl func(ctx context.Context, args ...string) (string, error)

	appliedPID int
}

// Ensure disables megaflows if this ovs-vswitchd has not had it done yet.
// It reports whether it sent the command.
func (e *ExactFlows) Ensure(ctx context.Context) (bool, error) {
	pid, err := readPID(filepath.Join(e.runDir(), "ovs-vswitchd.pid"))
	if err != nil {
		return false, err
	}
	if pid == e.appliedPID {
		return false, nil
	}
	appctl := e.Appctl
	if appctl == nil {
		appctl = runAppctl
	}
	out, err := appctl(ctx, "-t", filepath.Join(e.runDir(), fmt.Sprintf("ovs-vswitchd.%d.ctl", pid)), "upcall/disable-megaflows")
	if err != nil {
		return false, fmt.Errorf("ovs-vswitchd (pid %d): upcall/disable-megaflows: %w", pid, err)
	}
	if !strings.Contains(out, "megaflows disabled") {
		return false, fmt.Errorf("ovs-vswitchd (pid %d): upcall/disable-megaflows answered %q", pid, strings.TrimSpace(out))
	}
	e.appliedPID = pid
	return true, nil
}

func (e *ExactFlows) runDir() string {
	switch {
	case e.RunDir != "":
		return e.RunDir
	case os.Getenv("OVS_RUNDIR") != "":
		return os.Getenv("OVS_RUNDIR")
	}
	return "/var/run/openvswitch"
}

func readPID(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("ovs-vswitchd pid: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("ovs-vswitchd pid file %s: %q is not a pid", path, strings.TrimSpace(string(b)))
	}
	return pid, nil
}

func runAppctl(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "ovs-appctl", args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}
