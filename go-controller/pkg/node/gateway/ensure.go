package gateway

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/digitalocean/go-openvswitch/ovs"
)

// defaultTimeout bounds a call whose context has no deadline:
// ovs-ofctl otherwise waits forever for a daemon that does not answer.
const defaultTimeout = 30 * time.Second

// EnsureFlows makes cfg.Bridge's kovn flows equal to the rule set of cfg,
// and its fragment handling "nx-match" (see fragMode). When they already
// are, it changes nothing (flows and counters stay); else it replaces all
// of the flows in one atomic OpenFlow bundle. It fails, leaving the bridge
// as it was, when a named port is not on the bridge or has no OpenFlow
// number yet.
func EnsureFlows(ctx context.Context, cfg Config) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	ctx, cancel := bounded(ctx)
	defer cancel()
	ports, err := resolvePorts(ctx, cfg)
	if err != nil {
		return err
	}
	want, cookie, err := desiredFlows(cfg, ports)
	if err != nil {
		return err
	}
	of := newClient(ctx).OpenFlow
	target := ofTarget(cfg.RunDir, cfg.Bridge)
	ours := &ovs.MatchFlow{Cookie: cookieKovn, CookieMask: cookieMask, Table: ovs.AnyTable}
	have, err := of.DumpFlowsWithFlowArgs(target, ours)
	if err != nil {
		return fmt.Errorf("dump kovn flows of %s: %w", cfg.Bridge, err)
	}
	if len(have) != len(want) || slices.ContainsFunc(have, func(f *ovs.Flow) bool { return f.Cookie != cookie }) {
		err = of.AddFlowBundle(target, func(tx *ovs.FlowTransaction) error {
			tx.Delete(ours)
			tx.Add(want...)
			return tx.Commit()
		})
		if err != nil {
			return fmt.Errorf("replace kovn flows of %s: %w", cfg.Bridge, err)
		}
	}
	return ensureFragMode(ctx, target, cfg.Bridge)
}

// fragMode is the bridge's fragment handling the flows need: "nx-match"
// gives the first fragment of a TCP or UDP datagram its ports, so it is
// steered like an unfragmented packet, where OVS's default ("normal")
// zeroes the ports of every fragment (a large UDP reply to a pod would then
// go to the host, and a large ping to the node IP to both sides). The
// setting lives in ovs-vswitchd, not in OVSDB: a restart resets it, even
// when ovs-ctl restores the flows, hence the check on every call.
const fragMode = "nx-match"

func ensureFragMode(ctx context.Context, target, bridge string) error {
	out, err := run(ctx, nil, "ovs-ofctl", "get-frags", target)
	if err != nil {
		return fmt.Errorf("fragment handling of %s: %w", bridge, err)
	}
	if strings.TrimSpace(string(out)) == fragMode {
		return nil
	}
	if _, err := run(ctx, nil, "ovs-ofctl", "set-frags", target, fragMode); err != nil {
		return fmt.Errorf("fragment handling of %s: %w", bridge, err)
	}
	return nil
}

// resolvePorts gets the ports' OpenFlow numbers through cfg.Resolve
// (from OVSDB, not from OpenFlow: OpenFlow truncates port names to 15
// characters and ovn-controller's patch port names are longer), and checks
// each is on the bridge and numbered.
func resolvePorts(ctx context.Context, cfg Config) (ofports, error) {
	names := []string{cfg.NIC}
	if cfg.PatchPort != "" {
		names = append(names, cfg.PatchPort)
	}
	nums := make([]int, len(names))
	for i, n := range names {
		num, br, err := cfg.Resolve(ctx, n)
		if err != nil {
			return ofports{}, err
		}
		if br != cfg.Bridge {
			return ofports{}, fmt.Errorf("port %s is on bridge %q, not %s", n, br, cfg.Bridge)
		}
		if num <= 0 {
			return ofports{}, fmt.Errorf("port %s has no OpenFlow number yet", n)
		}
		nums[i] = num
	}
	p := ofports{nic: nums[0]}
	if len(nums) > 1 {
		p.patch = nums[1]
	}
	return p, nil
}

func bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, defaultTimeout)
}

// ofTarget names the bridge for ovs-ofctl. ovs-ofctl turns a bare bridge
// name into <rundir>/<bridge>.mgmt with its own idea of the run directory
// (OVS_RUNDIR or the default); an explicit socket path makes a private OVS
// work without touching the environment.
func ofTarget(runDir, bridge string) string {
	if runDir == "" {
		return bridge
	}
	return "unix:" + filepath.Join(runDir, bridge+".mgmt")
}

// newClient returns a go-openvswitch client whose commands die with ctx;
// its own shell helpers know no context.
func newClient(ctx context.Context) *ovs.Client {
	return ovs.New(
		ovs.Exec(func(cmd string, args ...string) ([]byte, error) {
			return run(ctx, nil, cmd, args...)
		}),
		ovs.Pipe(func(stdin io.Reader, cmd string, args ...string) ([]byte, error) {
			return run(ctx, stdin, cmd, args...)
		}),
	)
}

// run returns the command's stdout, and its stderr inside the error: a
// warning on stderr must not end up in output that is parsed.
func run(ctx context.Context, stdin io.Reader, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &stdout, &stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// RemoveFlows deletes kovn's flows from bridge and leaves it to the
// default NORMAL flow. Underlay mode has no gateway router sharing the
// node IP: the host and the pods (through the localnet patch port) each
// have MACs of their own, which MAC learning sorts out.
func RemoveFlows(ctx context.Context, runDir, bridge string) error {
	ctx, cancel := bounded(ctx)
	defer cancel()
	ours := &ovs.MatchFlow{Cookie: cookieKovn, CookieMask: cookieMask, Table: ovs.AnyTable}
	if err := newClient(ctx).OpenFlow.DelFlows(ofTarget(runDir, bridge), ours); err != nil {
		return fmt.Errorf("delete kovn flows of %s: %w", bridge, err)
	}
	return nil
}
