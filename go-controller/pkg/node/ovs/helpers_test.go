package ovs_test

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

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/kovn-io/kovn/go-controller/pkg/node/ovs"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/vswitchd"
	"github.com/kovn-io/kovn/go-controller/pkg/testenv"
)

const timeout = 10 * time.Second

// testDB is a private ovsdb-server with a fresh Open_vSwitch database and
// no ovs-vswitchd: bridges and ports are only rows, ofport stays empty and
// the test plays ovn-controller itself.
type testDB struct {
	dir, addr, dbFile string
	bins              map[string]string
	env               []string
	proc              *exec.Cmd
	exited            chan struct{}
}

// startDB is testenv.StartOVN's recipe (pkg/testenv) for the local
// database; init says whether to run `ovs-vsctl init` as OVS's start
// script does.
func startDB(t *testing.T, init bool) *testDB {
	t.Helper()
	bins := lookBinaries(t, "ovsdb-tool", "ovsdb-server", "ovs-vsctl")
	// Not t.TempDir(): its path is too long for a unix socket (107 bytes).
	dir, err := os.MkdirTemp("", "kovn-ovs-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	d := &testDB{dir: dir, addr: "unix:" + filepath.Join(dir, "db.sock"), dbFile: filepath.Join(dir, "conf.db"), bins: bins}
	d.env = os.Environ()
	for _, v := range []string{"OVS_RUNDIR", "OVS_LOGDIR", "OVS_DBDIR"} {
		d.env = append(d.env, v+"="+dir)
	}
	schema := filepath.Join(dir, "vswitch.ovsschema")
	if err := os.WriteFile(schema, vswitchd.SchemaJSON(), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bins["ovsdb-tool"], "create", d.dbFile, schema).CombinedOutput(); err != nil {
		t.Fatalf("ovsdb-tool create: %v: %s", err, out)
	}
	t.Cleanup(func() {
		d.kill(t)
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "ovsdb-server.log"))
			t.Logf("--- ovsdb-server.log ---\n%s", log)
		}
	})
	d.start(t)
	if init {
		d.vsctl(t, "init")
	}
	return d
}

// start runs ovsdb-server on the database and waits for its socket.
func (d *testDB) start(t *testing.T) {
	t.Helper()
	sock := strings.TrimPrefix(d.addr, "unix:")
	cmd := exec.Command(d.bins["ovsdb-server"], d.dbFile, "--remote=punix:"+sock,
		"--pidfile="+filepath.Join(d.dir, "ovsdb-server.pid"), "--unixctl="+filepath.Join(d.dir, "ovsdb-server.ctl"),
		"--log-file="+filepath.Join(d.dir, "ovsdb-server.log"), "-vconsole:off", "-vsyslog:off")
	cmd.Dir, cmd.Env = d.dir, d.env
	// The kernel kills the server if the test binary dies first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	started, exited := make(chan error, 1), make(chan struct{})
	go func() {
		// Pdeathsig fires when the forking thread exits.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		defer close(exited)
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
	}()
	if err := <-started; err != nil {
		t.Fatalf("start ovsdb-server: %v", err)
	}
	d.proc, d.exited = cmd, exited
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			t.Fatalf("ovsdb-server exited: %v", cmd.ProcessState)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("ovsdb-server not listening after %v: %v", timeout, err)
		}
	}
}

// kill ends ovsdb-server abruptly, as a crash would.
func (d *testDB) kill(t *testing.T) {
	t.Helper()
	if d.proc == nil {
		return
	}
	_ = d.proc.Process.Kill()
	<-d.exited
	d.proc = nil
}

// vsctl runs ovs-vsctl against the database; --no-wait because no
// ovs-vswitchd will ever acknowledge a change.
func (d *testDB) vsctl(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.bins["ovs-vsctl"], append([]string{"--db=" + d.addr, "--no-wait", "--timeout=10"}, args...)...)
	cmd.Env = d.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ovs-vsctl %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(stdout.String())
}

// connect returns the Client under test, closed when the test ends.
func (d *testDB) connect(t *testing.T) *ovs.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := ovs.Connect(ctx, d.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// other is a second, plain libovsdb client: another writer, such as
// ovn-controller or ovs-vswitchd.
func (d *testDB) other(t *testing.T) client.Client {
	t.Helper()
	m, err := vswitchd.FullDatabaseModel()
	if err != nil {
		t.Fatal(err)
	}
	return testenv.Connect(t, d.addr, m)
}

// setIface updates columns of interface name as another writer would
// (ovs-vsctl refuses to write ofport and error, which ovs-vswitchd owns).
func setIface(t *testing.T, c client.Client, name string, row ovsdb.Row) {
	t.Helper()
	ifaceOp(t, c, name, ovsdb.Operation{Op: ovsdb.OperationUpdate, Row: row})
}

// installed adds ovn-installed=true, as ovn-controller does once the
// port's flows are in.
func installed(t *testing.T, c client.Client, name string) {
	t.Helper()
	ifaceOp(t, c, name, ovsdb.Operation{Op: ovsdb.OperationMutate, Mutations: []ovsdb.Mutation{{
		Column: "external_ids", Mutator: ovsdb.MutateOperationInsert,
		Value: ovsdb.OvsMap{GoMap: map[any]any{"ovn-installed": "true"}},
	}}})
}

func ifaceOp(t *testing.T, c client.Client, name string, op ovsdb.Operation) {
	t.Helper()
	op.Table = vswitchd.InterfaceTable
	op.Where = []ovsdb.Condition{{Column: "name", Function: ovsdb.ConditionEqual, Value: name}}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	res, err := c.Transact(ctx, op)
	if err == nil {
		_, err = ovsdb.CheckOperationResults(res, []ovsdb.Operation{op})
	}
	if err == nil && res[0].Count != 1 {
		err = fmt.Errorf("matched %d rows", res[0].Count)
	}
	if err != nil {
		t.Errorf("%s interface %s: %v", op.Op, name, err)
	}
}

// txns returns how many transactions f made c send.
func txns(t *testing.T, c *ovs.Client, f func() error) uint64 {
	t.Helper()
	before := c.Stats().Transactions
	if err := f(); err != nil {
		t.Fatal(err)
	}
	return c.Stats().Transactions - before
}

func tctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return ctx
}

// lookBinaries follows testenv's rule: skip without the binaries, unless
// KOVN_REQUIRE_OVN=1 makes that a failure.
func lookBinaries(t *testing.T, names ...string) map[string]string {
	t.Helper()
	bins := map[string]string{}
	var missing []string
	for _, name := range names {
		path, err := exec.LookPath(name)
		for _, dir := range []string{"/usr/sbin", "/usr/local/sbin"} {
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
		msg := fmt.Sprintf("OVS binaries not found: %s (apt-get install openvswitch-switch)", strings.Join(missing, ", "))
		if os.Getenv("KOVN_REQUIRE_OVN") == "1" {
			t.Fatal(msg + "; KOVN_REQUIRE_OVN=1 forbids skipping")
		}
		t.Skip(msg + "; set KOVN_REQUIRE_OVN=1 to fail instead of skipping")
	}
	return bins
}

// tctxBG is for helpers polled by testenv.WaitFor, which has no t of its
// own to clean up after.
func tctxBG() context.Context { return context.Background() }
