package ovs

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Appctl sends one command to a daemon's control socket and returns its
// reply, as `ovs-appctl -t <target> <command> <args>` does, without
// starting a process. The flow purger calls it several times a second
// while flows churn; as ovs-appctl that cost more CPU than the purge
// itself on a busy node.
//
// target is a daemon name (its socket is found from <rundir>/<target>.pid,
// rundir being $OVS_RUNDIR or /var/run/openvswitch, as ovs-appctl finds
// it) or a socket path.
func Appctl(ctx context.Context, target, command string, args ...string) (string, error) {
	path, err := controlSocket(target)
	if err != nil {
		return "", err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", target, command, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if args == nil {
		args = []string{} // JSON-RPC params must be an array, never null
	}
	req := struct {
		Method string   `json:"method"`
		Params []string `json:"params"`
		ID     int      `json:"id"`
	}{command, args, 0}
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return "", fmt.Errorf("%s %s: send: %w", target, command, err)
	}
	var reply struct {
		Result *string          `json:"result"`
		Error  *json.RawMessage `json:"error"`
	}
	if err := json.NewDecoder(c).Decode(&reply); err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return "", fmt.Errorf("%s %s: reply: %w", target, command, err)
	}
	if reply.Error != nil && string(*reply.Error) != "null" {
		var msg string
		if json.Unmarshal(*reply.Error, &msg) != nil {
			msg = string(*reply.Error)
		}
		return "", fmt.Errorf("%s %s: %s", target, command, strings.TrimSpace(msg))
	}
	if reply.Result == nil {
		return "", nil
	}
	return *reply.Result, nil
}

// controlSocket finds a daemon's unixctl socket the way ovs-appctl does:
// a path is used as is; a name is <rundir>/<name>.<pid>.ctl, the pid read
// from <rundir>/<name>.pid.
func controlSocket(target string) (string, error) {
	if strings.Contains(target, "/") {
		return target, nil
	}
	dir := os.Getenv("OVS_RUNDIR")
	if dir == "" {
		dir = "/var/run/openvswitch"
	}
	b, err := os.ReadFile(filepath.Join(dir, target+".pid"))
	if err != nil {
		return "", fmt.Errorf("control socket of %s: %w", target, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return "", fmt.Errorf("control socket of %s: pidfile holds %q", target, strings.TrimSpace(string(b)))
	}
	return filepath.Join(dir, fmt.Sprintf("%s.%d.ctl", target, pid)), nil
}
