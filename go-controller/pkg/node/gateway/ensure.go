package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/digitalocean/go-openvswitch/ovs"
)

// defaultTimeout bounds a call whose context has no deadline: ovs-vsctl and
// ovs-ofctl otherwise wait forever for a daemon that does not answer.
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

// PatchPort returns the patch port ovn-controller created on bridge for a
// localnet port (it sets external_ids:ovn-localnet-port on the Port row,
// not the Interface — seen on OVN 23.03), or "" when
// there is none yet. runDir is as in Config. More than one such port is an
// error: the caller must then say which localnet port is the gateway's.
func PatchPort(ctx context.Context, runDir, bridge string) (string, error) {
	ctx, cancel := bounded(ctx)
	defer cancel()
	out, err := vsctl(ctx, runDir, "--format=json", "--columns=name,external_ids", "list", "Port")
	if err != nil {
		return "", err
	}
	var table struct {
		Data [][]json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(out, &table); err != nil {
		return "", fmt.Errorf("parse ovs-vsctl find output: %w", err)
	}
	out, err = vsctl(ctx, runDir, "list-ports", bridge)
	if err != nil {
		return "", err
	}
	onBridge := strings.Fields(string(out))
	var found []string
	for _, row := range table.Data {
		var name string
		var ids []any // ["map", [[key, value], ...]]
		if len(row) != 2 || json.Unmarshal(row[0], &name) != nil || json.Unmarshal(row[1], &ids) != nil {
			return "", fmt.Errorf("unexpected ovs-vsctl row %s", row)
		}
		if slices.Contains(onBridge, name) && hasKey(ids, "ovn-localnet-port") {
			found = append(found, name)
		}
	}
	switch len(found) {
	case 0:
		return "", nil
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("bridge %s has several localnet patch ports: %s", bridge, strings.Join(found, ", "))
}

// hasKey reports whether an OVSDB map in JSON form holds key.
func hasKey(m []any, key string) bool {
	if len(m) != 2 || m[0] != "map" {
		return false
	}
	pairs, _ := m[1].([]any)
	for _, p := range pairs {
		if kv, ok := p.([]any); ok && len(kv) == 2 && kv[0] == key {
			return true
		}
	}
	return false
}

// resolvePorts reads the ports' OpenFlow numbers from OVSDB, not from
// OpenFlow: OpenFlow truncates port names to 15 characters and
// ovn-controller's patch port names are longer.
func resolvePorts(ctx context.Context, cfg Config) (ofports, error) {
	names := []string{cfg.NIC}
	if cfg.PatchPort != "" {
		names = append(names, cfg.PatchPort)
	}
	if cfg.Resolve != nil {
		return resolveWith(ctx, cfg, names)
	}
	var args []string
	for _, n := range names {
		args = append(args, "--", "get", "Interface", n, "ofport", "--", "iface-to-br", n)
	}
	out, err := vsctl(ctx, cfg.RunDir, args...)
	if err != nil {
		return ofports{}, err
	}
	lines := strings.Fields(string(out))
	if len(lines) != 2*len(names) {
		return ofports{}, fmt.Errorf("unexpected ovs-vsctl output %q", out)
	}
	nums := make([]int, len(names))
	for i, n := range names {
		ofport, br := lines[2*i], lines[2*i+1]
		if br != cfg.Bridge {
			return ofports{}, fmt.Errorf("port %s is on bridge %s, not %s", n, br, cfg.Bridge)
		}
		num, err := strconv.Atoi(ofport)
		if err != nil || num <= 0 {
			return ofports{}, fmt.Errorf("port %s has no OpenFlow number yet (ofport %s)", n, ofport)
		}
		nums[i] = num
	}
	p := ofports{nic: nums[0]}
	if len(nums) > 1 {
		p.patch = nums[1]
	}
	return p, nil
}

// resolveWith is resolvePorts through cfg.Resolve.
func resolveWith(ctx context.Context, cfg Config, names []string) (ofports, error) {
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

func vsctl(ctx context.Context, runDir string, args ...string) ([]byte, error) {
	if runDir != "" {
		args = append([]string{"--db=unix:" + filepath.Join(runDir, "db.sock")}, args...)
	}
	return run(ctx, nil, "ovs-vsctl", args...)
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
