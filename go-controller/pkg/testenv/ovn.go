package testenv

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"

	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/sbdb"
)

// OVN is a running OVN central private to one test.
type OVN struct {
	// Dir holds databases, sockets, pid files and logs (<daemon>.log).
	Dir string
	// NBAddr and SBAddr are OVSDB endpoints, e.g. "unix:/tmp/kovn-ovn-1/nb.sock".
	NBAddr, SBAddr string

	bins    map[string]string
	env     []string
	northd  *daemon
	daemons []*daemon
}

// StartOVN starts NB and SB ovsdb-server and ovn-northd, waits until northd
// is active and stops everything when the test ends. The databases are
// created from the schemas embedded in pkg/ovsdb, so they always match the
// generated models.
func StartOVN(t testing.TB) *OVN {
	t.Helper()
	bins := lookBinaries(t, "ovsdb-tool", "ovsdb-server", "ovn-northd", "ovn-nbctl", "ovn-sbctl", "ovn-appctl")
	// Not t.TempDir(): test names make that path too long for a unix
	// socket (107 bytes).
	dir, err := os.MkdirTemp("", "kovn-ovn-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	o := &OVN{
		Dir:    dir,
		NBAddr: "unix:" + filepath.Join(dir, "nb.sock"),
		SBAddr: "unix:" + filepath.Join(dir, "sb.sock"),
		bins:   bins,
		env:    privateEnv(dir),
	}
	// Registered before anything starts so a half-started OVN is torn down
	// and its logs shown too.
	t.Cleanup(func() { o.stop(t) })

	for _, db := range []struct {
		name   string
		schema []byte
	}{{"nb", nbdb.SchemaJSON()}, {"sb", sbdb.SchemaJSON()}} {
		sock := filepath.Join(dir, db.name+".sock")
		if err := o.startDB(db.name, db.schema); err != nil {
			t.Fatal(err)
		}
		if err := waitFor(db.name+" ovsdb-server", o.daemons, func() error { return dialUnix(sock) }); err != nil {
			t.Fatal(err)
		}
	}

	ctl := filepath.Join(dir, "northd.ctl")
	o.northd, err = startDaemon(dir, o.env, "northd", bins["ovn-northd"],
		"--ovnnb-db="+o.NBAddr, "--ovnsb-db="+o.SBAddr,
		"--pidfile="+filepath.Join(dir, "northd.pid"), "--unixctl="+ctl)
	if err != nil {
		t.Fatal(err)
	}
	o.daemons = append(o.daemons, o.northd)
	// "active" means northd holds the SB lock and has connected to both
	// databases, so it will translate whatever the test writes next.
	err = waitFor("ovn-northd", o.daemons, func() error {
		out, err := exec.Command(bins["ovn-appctl"], "-t", ctl, "status").CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte("Status: active")) {
			return fmt.Errorf("ovn-appctl status: %v: %s", err, bytes.TrimSpace(out))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func (o *OVN) startDB(name string, schema []byte) error {
	schemaFile := filepath.Join(o.Dir, name+".ovsschema")
	dbFile := filepath.Join(o.Dir, name+".db")
	if err := os.WriteFile(schemaFile, schema, 0o644); err != nil {
		return err
	}
	if out, err := exec.Command(o.bins["ovsdb-tool"], "create", dbFile, schemaFile).CombinedOutput(); err != nil {
		return fmt.Errorf("ovsdb-tool create %s: %v: %s", dbFile, err, out)
	}
	d, err := startDaemon(o.Dir, o.env, name, o.bins["ovsdb-server"], dbFile,
		"--remote=punix:"+filepath.Join(o.Dir, name+".sock"),
		"--pidfile="+filepath.Join(o.Dir, name+".pid"),
		"--unixctl="+filepath.Join(o.Dir, name+".ctl"))
	if err != nil {
		return err
	}
	o.daemons = append(o.daemons, d)
	return nil
}

// stop ends northd first (so it does not log the databases going away as
// errors), then the databases; on failure it shows each daemon's log.
func (o *OVN) stop(t testing.TB) {
	for i := len(o.daemons) - 1; i >= 0; i-- {
		o.daemons[i].stop()
	}
	if t.Failed() {
		for _, d := range o.daemons {
			t.Logf("%s", d.report())
		}
	}
}

// NB returns a new client of the NB database with every table monitored;
// it is closed when the test ends.
func (o *OVN) NB(t testing.TB) client.Client {
	t.Helper()
	return Connect(t, o.NBAddr, mustModel(t, nbdb.FullDatabaseModel))
}

// SB returns a new client of the SB database with every table monitored;
// it is closed when the test ends.
func (o *OVN) SB(t testing.TB) client.Client {
	t.Helper()
	return Connect(t, o.SBAddr, mustModel(t, sbdb.FullDatabaseModel))
}

// NBCtl runs ovn-nbctl against this NB and returns its stdout, failing the
// test (with stderr) if the command fails.
func (o *OVN) NBCtl(t testing.TB, args ...string) string {
	t.Helper()
	return o.ctl(t, "ovn-nbctl", o.NBAddr, args)
}

// SBCtl is NBCtl for ovn-sbctl and the SB database.
func (o *OVN) SBCtl(t testing.TB, args ...string) string {
	t.Helper()
	return o.ctl(t, "ovn-sbctl", o.SBAddr, args)
}

func (o *OVN) ctl(t testing.TB, bin, db string, args []string) string {
	t.Helper()
	return runCtl(t, o.bins[bin], o.env, append([]string{"--db=" + db}, args...))
}

// runCtl runs a ctl tool (ovn-nbctl, ...) and returns its stdout, failing
// the test (with stderr) if the command fails.
func runCtl(t testing.TB, bin string, env, args []string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// NorthdLog returns ovn-northd's log so far, for asserting that it logged
// no errors; failing to read it fails the test rather than returning an
// empty (and so error-free looking) log.
func (o *OVN) NorthdLog(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(o.northd.logFile)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// privateEnv points every OVS/OVN default directory into dir, so neither
// the daemons nor the ctl tools touch /var/run or /var/log.
func privateEnv(dir string) []string {
	env := os.Environ()
	for _, v := range []string{"OVS_RUNDIR", "OVS_LOGDIR", "OVS_DBDIR", "OVN_RUNDIR", "OVN_LOGDIR", "OVN_DBDIR"} {
		env = append(env, v+"="+dir)
	}
	return env
}

// lookBinaries resolves each binary, also in the sbin directories a
// non-root PATH often lacks (Debian puts ovsdb-server in /usr/sbin).
func lookBinaries(t testing.TB, names ...string) map[string]string {
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
		msg := fmt.Sprintf("OVN binaries not found: %s (apt-get install ovn-central ovn-host openvswitch-switch)", strings.Join(missing, ", "))
		if os.Getenv("KOVN_REQUIRE_OVN") == "1" {
			t.Fatal(msg + "; KOVN_REQUIRE_OVN=1 forbids skipping")
		}
		t.Skip(msg + "; set KOVN_REQUIRE_OVN=1 to fail instead of skipping")
	}
	return bins
}

func dialUnix(path string) error {
	c, err := net.DialTimeout("unix", path, readyTimeout)
	if err != nil {
		return err
	}
	return c.Close()
}

func mustModel(t testing.TB, full func() (model.ClientDBModel, error)) model.ClientDBModel {
	t.Helper()
	m, err := full()
	if err != nil {
		t.Fatal(err)
	}
	return m
}
