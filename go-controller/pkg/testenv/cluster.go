package testenv

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
)

// nbDBName is the database a clustered NB serves, and the name the
// cluster/* unixctl commands take.
const nbDBName = "OVN_Northbound"

// Cluster is a clustered (RAFT) NB database private to one test: one
// ovsdb-server per member, no northd. Members are numbered from 0; the
// numbers stay valid across Kill and Restart.
type Cluster struct {
	// Dir holds one directory per member (nb0, nb1, ...) with its
	// database, sockets, pid file and log (nbN.log).
	Dir string

	bins    map[string]string
	members []*member
}

// member is one ovsdb-server of the cluster with its own run directory, so
// its pid file, control socket and default paths never meet the others'.
type member struct {
	name     string // "nb0": daemon and log name
	dir      string
	dbFile   string
	sock     string // unix socket path
	tcpPort  int    // of the client remote on 127.0.0.1
	raft     string // RAFT address, "tcp:127.0.0.1:port"
	ctl      string // unixctl socket
	env      []string
	d        *daemon // the current (or last) process
	restarts int
}

// raftStatus is what "cluster/status" says about one member.
type raftStatus struct {
	sid    string // short server ID, e.g. "db3d"
	status string // "cluster member", "joining cluster", ...
	role   string // "leader", "follower", "candidate"
	leader string // short server ID of the leader, "self" or "unknown"
}

// StartNBCluster creates an n-member clustered NB database (the first
// member creates the cluster, the others join it), starts every member
// and waits until all of them are cluster members that agree on a leader.
// Each member listens on a unix socket and on a TCP port of 127.0.0.1,
// and talks RAFT on another; everything is stopped when the test ends.
// The schema is the one embedded in pkg/ovsdb, which is also the packaged
// /usr/share/ovn/ovn-nb.ovsschema, so it matches the generated models.
func StartNBCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("StartNBCluster: %d members", n)
	}
	bins := lookBinaries(t, "ovsdb-tool", "ovsdb-server", "ovs-appctl", "ovn-nbctl")
	// Not t.TempDir(), for the unix socket length limit (see StartOVN).
	dir, err := os.MkdirTemp("", "kovn-nbc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	c := &Cluster{Dir: dir, bins: bins}
	// Registered before anything starts, so a half-started cluster is
	// torn down and its logs shown too.
	t.Cleanup(func() { c.stop(t) })

	ports, err := freePorts(2 * n)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		m, err := newMember(dir, i, ports[2*i], ports[2*i+1])
		if err != nil {
			t.Fatal(err)
		}
		c.members = append(c.members, m)
	}
	if err := c.createDBs(); err != nil {
		t.Fatal(err)
	}
	for _, m := range c.members {
		if err := c.start(m); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range c.members {
		if err := c.waitListening(m); err != nil {
			t.Fatal(err)
		}
	}
	c.Leader(t)
	return c
}

func newMember(dir string, i, tcpPort, raftPort int) (*member, error) {
	name := fmt.Sprintf("nb%d", i)
	mdir := filepath.Join(dir, name)
	if err := os.Mkdir(mdir, 0o755); err != nil {
		return nil, err
	}
	return &member{
		name:    name,
		dir:     mdir,
		dbFile:  filepath.Join(mdir, "nb.db"),
		sock:    filepath.Join(mdir, "nb.sock"),
		tcpPort: tcpPort,
		raft:    fmt.Sprintf("tcp:127.0.0.1:%d", raftPort),
		ctl:     filepath.Join(mdir, "nb.ctl"),
		env:     privateEnv(mdir),
	}, nil
}

// createDBs writes every member's database file: member 0 creates the
// cluster, the others join it through member 0's RAFT address (they are
// added once they start and reach it).
func (c *Cluster) createDBs() error {
	schema := filepath.Join(c.Dir, "nb.ovsschema")
	if err := os.WriteFile(schema, nbdb.SchemaJSON(), 0o644); err != nil {
		return err
	}
	first := c.members[0]
	if err := c.tool("create-cluster", first.dbFile, schema, first.raft); err != nil {
		return err
	}
	for _, m := range c.members[1:] {
		if err := c.tool("join-cluster", m.dbFile, nbDBName, m.raft, first.raft); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) tool(args ...string) error {
	out, err := exec.Command(c.bins["ovsdb-tool"], args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ovsdb-tool %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// start runs m's ovsdb-server; the same command restarts it, since the
// database file remembers the cluster and m's place in it.
func (c *Cluster) start(m *member) error {
	d, err := startDaemon(m.dir, m.env, m.name, c.bins["ovsdb-server"], m.dbFile,
		"--remote=punix:"+m.sock,
		fmt.Sprintf("--remote=ptcp:%d:127.0.0.1", m.tcpPort),
		"--pidfile="+filepath.Join(m.dir, "nb.pid"),
		"--unixctl="+m.ctl)
	if err != nil {
		return err
	}
	m.d = d
	return nil
}

// waitListening waits until both of m's client sockets accept connections.
func (c *Cluster) waitListening(m *member) error {
	hostPort := net.JoinHostPort("127.0.0.1", strconv.Itoa(m.tcpPort))
	return waitFor(m.name+" ovsdb-server", []*daemon{m.d}, func() error {
		if err := dialUnix(m.sock); err != nil {
			return err
		}
		conn, err := net.DialTimeout("tcp", hostPort, readyTimeout)
		if err != nil {
			return err
		}
		return conn.Close()
	})
}

// Addrs returns every member's client endpoint ("tcp:127.0.0.1:port"), in
// member order, for a client that is to find the leader itself.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.members))
	for i, m := range c.members {
		addrs[i] = fmt.Sprintf("tcp:127.0.0.1:%d", m.tcpPort)
	}
	return addrs
}

// UnixAddr returns member i's unix socket endpoint, "unix:/path".
func (c *Cluster) UnixAddr(i int) string { return "unix:" + c.members[i].sock }

// Leader waits until the running members agree on a leader, that is one
// of them is leader and every other one is a cluster member following it,
// and returns the leader's number. After a Kill of the leader this is the
// wait for the election.
func (c *Cluster) Leader(t testing.TB) int {
	t.Helper()
	leader := -1
	err := waitFor("NB cluster leader", c.running(), func() error {
		var err error
		leader, err = c.agreedLeader()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return leader
}

func (c *Cluster) agreedLeader() (int, error) {
	statuses := map[int]raftStatus{}
	leader := -1
	for i, m := range c.members {
		if !m.up() {
			continue
		}
		st, err := c.status(m)
		if err != nil {
			return -1, err
		}
		if st.status != "cluster member" {
			return -1, fmt.Errorf("%s: status %q", m.name, st.status)
		}
		if st.role == "leader" {
			if leader >= 0 {
				return -1, fmt.Errorf("%s and %s both leader", c.members[leader].name, m.name)
			}
			leader = i
		}
		statuses[i] = st
	}
	if leader < 0 {
		return -1, fmt.Errorf("no leader among %d running members", len(statuses))
	}
	for i, st := range statuses {
		if i != leader && st.leader != statuses[leader].sid {
			return -1, fmt.Errorf("%s follows %q, not %s (%s)", c.members[i].name, st.leader, statuses[leader].sid, c.members[leader].name)
		}
	}
	return leader, nil
}

// status runs "ovs-appctl cluster/status" against m.
func (c *Cluster) status(m *member) (raftStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bins["ovs-appctl"], "-t", m.ctl, "cluster/status", nbDBName)
	cmd.Env = m.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return raftStatus{}, fmt.Errorf("%s cluster/status: %v: %s", m.name, err, strings.TrimSpace(string(out)))
	}
	return parseRaftStatus(string(out)), nil
}

// parseRaftStatus reads the "Key: value" lines of cluster/status output;
// "Server ID: db3d (db3df052-...)" keeps only the short ID, which is what
// the "Leader:" line uses.
func parseRaftStatus(out string) raftStatus {
	var st raftStatus
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			continue
		}
		switch key {
		case "Server ID":
			st.sid, _, _ = strings.Cut(val, " ")
		case "Status":
			st.status = val
		case "Role":
			st.role = val
		case "Leader":
			st.leader = val
		}
	}
	return st
}

// Kill ends member i with SIGKILL, as a crash or an OOM kill would: no
// clean shutdown, its connections closed by the kernel.
func (c *Cluster) Kill(t testing.TB, i int) {
	t.Helper()
	m := c.members[i]
	if !m.up() {
		t.Fatalf("Kill: %s is not running", m.name)
	}
	m.d.kill()
}

// Restart starts member i again after Kill and waits until it is back in
// the cluster, following the current leader.
func (c *Cluster) Restart(t testing.TB, i int) {
	t.Helper()
	m := c.members[i]
	if m.up() {
		t.Fatalf("Restart: %s is still running", m.name)
	}
	m.restarts++
	if err := c.start(m); err != nil {
		t.Fatal(err)
	}
	if err := c.waitListening(m); err != nil {
		t.Fatal(err)
	}
	c.Leader(t)
}

// NBCtl runs ovn-nbctl against member i, leader or not
// (--no-leader-only), so a test can see what that member serves.
func (c *Cluster) NBCtl(t testing.TB, i int, args ...string) string {
	t.Helper()
	m := c.members[i]
	return runCtl(t, c.bins["ovn-nbctl"], m.env, append([]string{"--no-leader-only", "--db=" + c.UnixAddr(i)}, args...))
}

// running returns the processes of the members that are up, for waitFor
// to notice one of them dying.
func (c *Cluster) running() []*daemon {
	var ds []*daemon
	for _, m := range c.members {
		if m.up() {
			ds = append(ds, m.d)
		}
	}
	return ds
}

func (m *member) up() bool {
	if m.d == nil {
		return false
	}
	done, _ := m.d.exited()
	return !done
}

// stop ends every running member; on failure it shows each member's log
// (one per member: a restart appends to it).
func (c *Cluster) stop(t testing.TB) {
	for _, m := range c.members {
		if m.d != nil {
			m.d.stop()
		}
	}
	if t.Failed() {
		for _, m := range c.members {
			if m.restarts > 0 {
				t.Logf("%s was restarted %d times; its log covers every run", m.name, m.restarts)
			}
			if m.d != nil {
				t.Logf("%s", m.d.report())
			}
		}
	}
}

// freePorts returns n distinct TCP ports of 127.0.0.1 that were free a
// moment ago. The listeners are held until all are chosen, so no port is
// returned twice; another process could still take one before the
// daemon binds it, which would fail the start with the daemon's log.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		_, p, err := net.SplitHostPort(l.Addr().String())
		if err != nil {
			return nil, err
		}
		port, err := strconv.Atoi(p)
		if err != nil {
			return nil, err
		}
		ports = append(ports, port)
	}
	return ports, nil
}
