package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/vswitchd"
)

const (
	stepTimeout = 20 * time.Second
	outsideIP   = "192.168.77.1"
	nodeIP      = "192.168.77.2"
	sharedMAC   = "02:00:00:77:00:02"
	patchExt    = "patch-lnet-n1-to-br-int" // longer than OpenFlow's 15 characters, as ovn-controller's are
	patchInt    = "patch-br-int-to-lnet-n1"
	// host ↔ GR direct path, as a masquerade subnet would be
	hostLinkIP = "169.254.0.2"
	grLinkIP   = "169.254.0.1"
)

// lab is a mini shared-gateway node: namespace "host" runs a private
// ovsdb-server and ovs-vswitchd (netdev datapath) with br-ex holding the
// node IP and eth0, whose veth peer is in "outside"; addOVN adds br-int, the
// patch pair and an internal port "gr" moved into namespace "ovn", with
// br-ex's IP and MAC, standing in for GR_<node>. The tests make "ovn"'s
// outgoing connections from the GR's SNAT ports (ovnAddr), the host's from
// its ordinary ephemeral ones.
type lab struct {
	t     *testing.T
	dir   string            // OVS run, db and log directory
	ns    map[string]string // role → netns name
	bins  map[string]string
	procs []*exec.Cmd
	done  []chan struct{}
}

func newLab(t *testing.T) *lab {
	bins := lookBinaries(t, "ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl", "ip", "ethtool", "ping")
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and runs ovs-vswitchd")
	}
	l := &lab{t: t, ns: map[string]string{}, bins: bins}
	// Not t.TempDir(): unix socket paths must stay under 108 bytes.
	dir, err := os.MkdirTemp("", "kgw-")
	if err != nil {
		t.Fatal(err)
	}
	l.dir = dir
	t.Cleanup(l.cleanup)
	base := filepath.Base(dir)
	for _, role := range []string{"host", "outside", "ovn"} {
		l.ns[role] = base + "-" + role
		l.run("ip", "netns", "add", l.ns[role])
		l.ip(role, "link", "set", "lo", "up")
	}
	l.startOVS()
	l.vsctl("add-br", "br-ex", "--", "set", "Bridge", "br-ex", "datapath_type=netdev", "other-config:hwaddr="+sharedMAC)
	l.ip("host", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", l.ns["outside"])
	for _, role := range []string{"host", "outside"} {
		l.ip(role, "link", "set", "eth0", "up")
		// The userspace datapath never fills in checksums the kernel left
		// to the NIC; without this TCP segments arrive corrupt.
		l.run("ip", "netns", "exec", l.ns[role], "ethtool", "-K", "eth0", "tx", "off")
	}
	l.ip("outside", "addr", "add", outsideIP+"/24", "dev", "eth0")
	l.vsctl("add-port", "br-ex", "eth0")
	l.ip("host", "addr", "add", nodeIP+"/24", "dev", "br-ex")
	l.ip("host", "addr", "add", hostLinkIP+"/30", "dev", "br-ex")
	l.ip("host", "link", "set", "br-ex", "up")
	return l
}

// addOVN plays ovn-controller binding the localnet port: the patch pair,
// and behind it a "GR" with the node's IP and MAC. br-int is a plain wire
// between the two, since NORMAL would trip over the one MAC on both sides.
func (l *lab) addOVN() {
	l.vsctl("add-br", "br-int", "--", "set", "Bridge", "br-int", "datapath_type=netdev")
	l.vsctl("add-port", "br-ex", patchExt, "--", "set", "Interface", patchExt, "type=patch",
		"options:peer="+patchInt, "--", "set", "Port", patchExt, "external_ids:ovn-localnet-port=lnet-n1",
		"--", "add-port", "br-int", patchInt, "--", "set", "Interface", patchInt, "type=patch", "options:peer="+patchExt,
		"--", "add-port", "br-int", "gr", "--", "set", "Interface", "gr", "type=internal")
	p, g := l.vsctl("get", "Interface", patchInt, "ofport"), l.vsctl("get", "Interface", "gr", "ofport")
	l.run("ovs-ofctl", "del-flows", l.of("br-int"))
	l.run("ovs-ofctl", "add-flow", l.of("br-int"), "in_port="+p+",actions=output:"+g)
	l.run("ovs-ofctl", "add-flow", l.of("br-int"), "in_port="+g+",actions=output:"+p)
	// ovs-vsctl waited for ovs-vswitchd, so the tap exists by now.
	l.ip("host", "link", "set", "gr", "netns", l.ns["ovn"])
	l.ip("ovn", "link", "set", "gr", "address", sharedMAC)
	l.ip("ovn", "addr", "add", nodeIP+"/24", "dev", "gr")
	l.ip("ovn", "addr", "add", grLinkIP+"/30", "dev", "gr")
	l.ip("ovn", "link", "set", "gr", "up")
	// Static, as a masquerade neighbour would be: both ends share one MAC.
	l.ip("host", "neigh", "replace", grLinkIP, "lladdr", sharedMAC, "dev", "br-ex", "nud", "permanent")
	l.ip("ovn", "neigh", "replace", hostLinkIP, "lladdr", sharedMAC, "dev", "gr", "nud", "permanent")
}

func (l *lab) startOVS() {
	db := filepath.Join(l.dir, "conf.db")
	schema := filepath.Join(l.dir, "vswitch.ovsschema")
	if err := os.WriteFile(schema, vswitchd.SchemaJSON(), 0o644); err != nil {
		l.t.Fatal(err)
	}
	l.run("ovsdb-tool", "create", db, schema)
	sock := filepath.Join(l.dir, "db.sock")
	l.start("ovsdb-server", l.bins["ovsdb-server"], db, "--remote=punix:"+sock)
	l.waitFor("ovsdb-server socket", func() error {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
		}
		return err
	})
	l.vsctl("--no-wait", "init")
	// In the host namespace: its datapath reads and creates devices there.
	l.start("ovs-vswitchd", l.bins["ip"], "netns", "exec", l.ns["host"], l.bins["ovs-vswitchd"], "unix:"+sock)
}

// start runs an OVS daemon in the foreground, so its PID is known and the
// kernel kills it if the test binary dies before cleaning up.
func (l *lab) start(name, bin string, args ...string) {
	args = append(args, "--pidfile="+filepath.Join(l.dir, name+".pid"), "--unixctl="+filepath.Join(l.dir, name+".ctl"),
		"--log-file="+filepath.Join(l.dir, name+".log"), "-vconsole:off", "-vsyslog:off")
	cmd := exec.Command(bin, args...)
	cmd.Dir, cmd.Env = l.dir, l.env()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	started, done := make(chan error, 1), make(chan struct{})
	go func() {
		defer close(done)
		// Pdeathsig fires when the forking thread exits.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
	}()
	if err := <-started; err != nil {
		l.t.Fatalf("start %s: %v", name, err)
	}
	l.procs, l.done = append(l.procs, cmd), append(l.done, done)
}

// cleanup runs even after a failure: daemons first (their taps go with
// them), then the namespaces (taking the veths), then the directory.
func (l *lab) cleanup() {
	if l.t.Failed() && len(l.procs) > 0 {
		for _, br := range []string{"br-ex", "br-int"} {
			out, _ := l.try("ovs-ofctl", "dump-flows", l.of(br))
			l.t.Logf("--- %s flows ---\n%s", br, out)
		}
		log, _ := os.ReadFile(filepath.Join(l.dir, "ovs-vswitchd.log"))
		l.t.Logf("--- ovs-vswitchd.log (tail) ---\n%s", tail(string(log), 30))
	}
	for i := len(l.procs) - 1; i >= 0; i-- {
		_ = l.procs[i].Process.Kill()
		select {
		case <-l.done[i]:
		case <-time.After(5 * time.Second):
			l.t.Errorf("%s did not exit after SIGKILL", l.procs[i].Path)
		}
	}
	for _, name := range l.ns {
		if out, err := l.try("ip", "netns", "del", name); err != nil && !strings.Contains(out, "No such file") {
			l.t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	}
	os.RemoveAll(l.dir)
}

func (l *lab) env() []string {
	env := os.Environ()
	for _, v := range []string{"OVS_RUNDIR", "OVS_DBDIR", "OVS_LOGDIR"} {
		env = append(env, v+"="+l.dir)
	}
	return env
}

// of names a bridge for ovs-ofctl by its management socket.
func (l *lab) of(bridge string) string { return "unix:" + filepath.Join(l.dir, bridge+".mgmt") }

func (l *lab) vsctl(args ...string) string {
	return l.run("ovs-vsctl", append([]string{"--db=unix:" + filepath.Join(l.dir, "db.sock"), "--timeout=15"}, args...)...)
}

func (l *lab) ip(role string, args ...string) string {
	return l.run("ip", append([]string{"-n", l.ns[role]}, args...)...)
}

func (l *lab) run(name string, args ...string) string {
	l.t.Helper()
	out, err := l.try(name, args...)
	if err != nil {
		l.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func (l *lab) try(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	bin := l.bins[name]
	if bin == "" {
		bin = name
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = l.env()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}

// in runs f with the calling goroutine's thread inside role's namespace:
// sockets made there stay there.
func (l *lab) in(role string, f func() error) error {
	netns, err := ns.GetNS("/run/netns/" + l.ns[role])
	if err != nil {
		return err
	}
	defer netns.Close()
	return netns.Do(func(ns.NetNS) error { return f() })
}

func (l *lab) waitFor(what string, cond func() error) {
	l.t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("%s: still failing after %v: %v", what, stepTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// lookBinaries skips without OVS, unless KOVN_REQUIRE_OVN=1 makes that a
// failure (as pkg/testenv does).
func lookBinaries(t *testing.T, names ...string) map[string]string {
	t.Helper()
	bins := map[string]string{}
	var missing []string
	for _, name := range names {
		path, err := exec.LookPath(name)
		for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
			if err == nil {
				break
			}
			path, err = exec.LookPath(filepath.Join(dir, name))
		}
		if err != nil {
			missing = append(missing, name)
		}
		bins[name] = path
	}
	if len(missing) > 0 {
		msg := fmt.Sprintf("binaries not found: %s (apt-get install openvswitch-switch iproute2 ethtool iputils-ping)", strings.Join(missing, ", "))
		if os.Getenv("KOVN_REQUIRE_OVN") == "1" {
			t.Fatal(msg + "; KOVN_REQUIRE_OVN=1 forbids skipping")
		}
		t.Skip(msg + "; set KOVN_REQUIRE_OVN=1 to fail instead of skipping")
	}
	return bins
}
