package nbops_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/kovn-io/kovn/go-controller/pkg/controller/queue"
	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
	"github.com/kovn-io/kovn/go-controller/pkg/testenv"
)

// These tests run kovn's NB client against a real 3-member RAFT cluster
// and kill its leader while a controller-shaped workqueue writes, to prove
// that no write is lost, none is applied twice, and a converged resync
// after the failover sends nothing.

const (
	raftKind   = "RaftTest" // kovn.io/owner-kind of every row written here
	raftRouter = "raft-gr"  // holds every item's SNAT
	// failoverTimeout bounds an election plus libovsdb's reconnect
	// backoff (0.5s growing by 1.5x) on a loaded machine.
	failoverTimeout = 20 * time.Second
)

func itemOwner(i int) string          { return fmt.Sprintf("item-%03d", i) }
func itemSwitch(i int) string         { return fmt.Sprintf("raft-sw-%03d", i) }
func itemPort(i int) string           { return fmt.Sprintf("raft-p-%03d", i) }
func itemAddressSet(i int) string     { return fmt.Sprintf("raft_as_%03d", i) }
func itemSubnet(i int) string         { return fmt.Sprintf("10.%d.%d.0/24", 100+i/250, i%250) }
func itemIDs(i int) map[string]string { return own.IDs(raftKind, itemOwner(i), "") }

// itemOps builds, from c's cache, the ops that bring item i to its desired
// state: a switch with one port, an address set, and an SNAT on the shared
// router. Switches (no schema index on name) are guarded by a wait, ports
// and address sets by their schema index; a NAT has neither, which makes
// it the row a stale cache would duplicate.
func itemOps(c client.Client, i int) ([]ovsdb.Operation, error) {
	ops, sw, err := nbops.EnsureSwitch(c, &nbdb.LogicalSwitch{
		Name:        itemSwitch(i),
		OtherConfig: map[string]string{"subnet": itemSubnet(i)},
		ExternalIDs: itemIDs(i),
	})
	if err != nil {
		return nil, err
	}
	add := func(more []ovsdb.Operation, _ string, err error) error {
		ops = append(ops, more...)
		return err
	}
	ip := strings.TrimSuffix(itemSubnet(i), "0/24") + "5"
	if err := add(nbops.EnsureSwitchPort(c, sw, &nbdb.LogicalSwitchPort{
		Name:        itemPort(i),
		Addresses:   []string{"0a:58:0a:00:00:05 " + ip},
		ExternalIDs: itemIDs(i),
	})); err != nil {
		return nil, err
	}
	if err := add(nbops.EnsureAddressSet(c, &nbdb.AddressSet{
		Name:        itemAddressSet(i),
		Addresses:   []string{ip},
		ExternalIDs: itemIDs(i),
	})); err != nil {
		return nil, err
	}
	nat, err := natOps(c, i)
	return append(ops, nat...), err
}

// natOps builds item i's SNAT alone, as a controller owning only NATs
// would: nothing in such a transaction is refused if the NAT exists.
func natOps(c client.Client, i int) ([]ovsdb.Operation, error) {
	lr, err := nbops.GetRouter(c, raftRouter)
	if err != nil {
		return nil, err
	}
	return nbops.EnsureNATs(c, lr.UUID, itemIDs(i), []*nbdb.NAT{{
		Type: nbdb.NATTypeSNAT, LogicalIP: itemSubnet(i), ExternalIP: "172.18.0.2", ExternalIDs: itemIDs(i),
	}})
}

// wantRows is what items [0, n) consist of, keyed as countRows keys them.
func wantRows(n int, natOnly bool) map[string]int {
	want := map[string]int{}
	for i := range n {
		want["nat "+itemSubnet(i)] = 1
		if !natOnly {
			want["switch "+itemSwitch(i)] = 1
			want["port "+itemPort(i)] = 1
			want["address set "+itemAddressSet(i)] = 1
		}
	}
	return want
}

// raftEnv is a cluster and a kovn client of it, built as kovn-controller
// builds its own.
type raftEnv struct {
	t       *testing.T
	cluster *testenv.Cluster
	addrs   []string // the client's endpoints, member order
	c       client.Client
	tx      *nbops.Transactor
	build   func(client.Client, int) ([]ovsdb.Operation, error)
}

func newRaftEnv(t *testing.T, cluster *testenv.Cluster, addrs []string, opts ...nbops.TransactorOption) *raftEnv {
	t.Helper()
	e := &raftEnv{t: t, cluster: cluster, addrs: addrs, build: itemOps}
	e.c = raftClient(t, addrs)
	e.tx = nbops.NewTransactor(e.c, nil, opts...)
	ops, _, err := nbops.EnsureRouter(e.c, &nbdb.LogicalRouter{Name: raftRouter, ExternalIDs: own.IDs(raftKind, "router", "")})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.tx.Transact(context.Background(), "router", ops); err != nil {
		t.Fatal(err)
	}
	return e
}

func raftClient(t *testing.T, addrs []string) client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), failoverTimeout)
	defer cancel()
	c, err := nbops.NewClient(ctx, addrs, nbops.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// waitOnLeader waits until the client is connected to the cluster's
// leader (leader-only mode) and returns the leader's number.
func (e *raftEnv) waitOnLeader() int {
	e.t.Helper()
	leader := e.cluster.Leader(e.t)
	testenv.WaitFor(e.t, failoverTimeout, func() error {
		if got := e.c.CurrentEndpoint(); got != e.addrs[leader] {
			return fmt.Errorf("client on %q, leader nb%d is %s", got, leader, e.addrs[leader])
		}
		return nil
	})
	return leader
}

// syncStats counts what the workqueue saw.
type syncStats struct {
	failed    atomic.Int64 // syncs that returned an error
	txnErrors atomic.Int64 // of those, refused by the database
	mu        sync.Mutex
	firstErr  error // the first other one, for the log
}

// runQueue syncs items [from, to) through kovn's controller workqueue
// with 4 workers: a sync builds item i's ops from the cache and sends
// them; a failed sync is retried with the queue's backoff, rebuilding from
// the cache, exactly as a controller's would. during runs in the test
// goroutine while the queue works (the leader kill). runQueue returns
// once every item has synced without error.
func (e *raftEnv) runQueue(from, to int, during func()) *syncStats {
	e.t.Helper()
	st := &syncStats{}
	var mu sync.Mutex
	done := map[string]bool{}
	syncItem := func(ctx context.Context, key string) error {
		var i int
		if _, err := fmt.Sscanf(key, "item-%d", &i); err != nil {
			return err
		}
		ops, err := e.build(e.c, i)
		if err == nil {
			err = e.tx.Transact(ctx, key, ops)
		}
		if err != nil {
			st.count(err)
			return err
		}
		mu.Lock()
		done[key] = true
		mu.Unlock()
		return nil
	}
	q := queue.New("raft", 4, nil, syncItem)
	for i := from; i < to; i++ {
		q.Enqueue(itemOwner(i))
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { defer close(stopped); q.Run(ctx) }()
	defer func() { cancel(); <-stopped }()
	if during != nil {
		during()
	}
	testenv.WaitFor(e.t, failoverTimeout, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(done) < to-from {
			return fmt.Errorf("%d of %d items synced (%d failed syncs)", len(done), to-from, st.failed.Load())
		}
		return nil
	})
	return st
}

func (st *syncStats) count(err error) {
	st.failed.Add(1)
	if errors.As(err, new(*nbops.TxnError)) {
		st.txnErrors.Add(1)
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.firstErr == nil {
		st.firstErr = err
	}
}

func (st *syncStats) String() string {
	st.mu.Lock()
	defer st.mu.Unlock()
	return fmt.Sprintf("%d failed syncs (%d refused by the database; first other error: %v)",
		st.failed.Load(), st.txnErrors.Load(), st.firstErr)
}

// killLeaderAfter waits until the Transactor has sent n more
// transactions, so the workers are in full swing, and SIGKILLs the leader.
func (e *raftEnv) killLeaderAfter(n uint64, leader int) {
	e.t.Helper()
	base, _ := e.tx.Stats()
	testenv.WaitFor(e.t, failoverTimeout, func() error {
		if txns, _ := e.tx.Stats(); txns < base+n {
			return fmt.Errorf("%d transactions sent, waiting for %d", txns-base, n)
		}
		return nil
	})
	e.cluster.Kill(e.t, leader)
}

// resyncSendsNothing syncs items [0, n) again and fails unless the
// Transactor sent no transaction: the cache rebuilt after the failover
// already holds every row.
func (e *raftEnv) resyncSendsNothing(n int) {
	e.t.Helper()
	before, _ := e.tx.Stats()
	st := e.runQueue(0, n, nil)
	if after, _ := e.tx.Stats(); after != before || st.failed.Load() != 0 {
		e.t.Errorf("resync of %d converged items sent %d transactions; %v", n, after-before, st)
	}
	// A restarted controller, with a fresh client and Transactor, too.
	fresh := raftClient(e.t, e.addrs)
	tx := nbops.NewTransactor(fresh, nil)
	for i := range n {
		ops, err := e.build(fresh, i)
		if err == nil {
			err = tx.Transact(context.Background(), itemOwner(i), ops)
		}
		if err != nil {
			e.t.Fatal(err)
		}
	}
	if txns, _ := tx.Stats(); txns != 0 {
		e.t.Errorf("a fresh client's resync of %d items sent %d transactions", n, txns)
	}
}

// exactlyOnce checks on a fresh client that items [0, n) each have
// exactly their rows, once, and nothing else carries the test's ownership.
func exactlyOnce(t *testing.T, c client.Client, n int, natOnly bool) {
	t.Helper()
	diffCounts(t, "fresh client", wantRows(n, natOnly), countRows(c))
}

// countRows counts the cached rows with the test's ownership by name (NATs
// by logical IP).
func countRows(c client.Client) map[string]int {
	got := map[string]int{}
	for _, ls := range nbops.Owned[nbdb.LogicalSwitch](c, raftKind) {
		got["switch "+ls.Name]++
	}
	for _, lsp := range nbops.Owned[nbdb.LogicalSwitchPort](c, raftKind) {
		got["port "+lsp.Name]++
	}
	for _, as := range nbops.Owned[nbdb.AddressSet](c, raftKind) {
		got["address set "+as.Name]++
	}
	for _, nat := range nbops.Owned[nbdb.NAT](c, raftKind) {
		got["nat "+nat.LogicalIP]++
	}
	return got
}

// exactlyOnceNBCtl checks the same through ovn-nbctl on member i, once it
// has caught up with every item.
func exactlyOnceNBCtl(t *testing.T, cluster *testenv.Cluster, i, n int) {
	t.Helper()
	find := func(table, column string) []string {
		out := cluster.NBCtl(t, i, "--bare", "--columns="+column, "find", table, "external_ids:\"kovn.io/owner-kind\"="+raftKind)
		return strings.Fields(out)
	}
	want := wantRows(n, false)
	var got map[string]int
	testenv.WaitFor(t, failoverTimeout, func() error {
		got = map[string]int{}
		for _, name := range find("Logical_Switch", "name") {
			got["switch "+name]++
		}
		for _, name := range find("Logical_Switch_Port", "name") {
			got["port "+name]++
		}
		for _, name := range find("Address_Set", "name") {
			got["address set "+name]++
		}
		for _, ip := range find("NAT", "logical_ip") {
			got["nat "+ip]++
		}
		if len(got) < len(want) {
			return fmt.Errorf("nb%d shows %d of %d rows", i, len(got), len(want))
		}
		return nil
	})
	diffCounts(t, fmt.Sprintf("ovn-nbctl on nb%d", i), want, got)
}

func diffCounts(t *testing.T, where string, want, got map[string]int) {
	t.Helper()
	bad := 0
	for k, w := range want {
		if got[k] != w {
			bad++
			if bad <= 10 {
				t.Errorf("%s: %d × %s, want %d", where, got[k], k, w)
			}
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			bad++
			if bad <= 10 {
				t.Errorf("%s: unexpected %d × %s", where, g, k)
			}
		}
	}
	if bad > 10 {
		t.Errorf("%s: %d rows wrong in all", where, bad)
	}
}

// TestIntegrationRaftLeaderFailover kills the RAFT leader twice while a
// controller-shaped workqueue writes through a leader-only client; the
// first killed member is restarted in between and must rejoin.
func TestIntegrationRaftLeaderFailover(t *testing.T) {
	const first, second = 200, 100
	cluster := testenv.StartNBCluster(t, 3)
	e := newRaftEnv(t, cluster, cluster.Addrs())
	leader := e.waitOnLeader()

	start := time.Now()
	st := e.runQueue(0, first, func() { e.killLeaderAfter(60, leader) })
	killed := leader
	leader = e.waitOnLeader()
	t.Logf("%d items synced in %v, leader nb%d killed mid-stream, client now on nb%d: %v", first, time.Since(start).Round(time.Millisecond), killed, leader, st)
	exactlyOnce(t, raftClient(t, cluster.Addrs()), first, false)
	exactlyOnceNBCtl(t, cluster, leader, first)
	e.resyncSendsNothing(first)

	// The killed member comes back and catches up; then the new leader
	// is killed too, leaving the restarted member and the third one.
	cluster.Restart(t, killed)
	exactlyOnceNBCtl(t, cluster, killed, first)
	start = time.Now()
	st = e.runQueue(first, first+second, func() { e.killLeaderAfter(30, leader) })
	killed = leader
	leader = e.waitOnLeader()
	t.Logf("%d more items synced in %v, leader nb%d killed mid-stream, client now on nb%d: %v", second, time.Since(start).Round(time.Millisecond), killed, leader, st)
	exactlyOnce(t, raftClient(t, cluster.Addrs()), first+second, false)
	exactlyOnceNBCtl(t, cluster, 3-leader-killed, first+second) // the follower
	e.resyncSendsNothing(first + second)
}

// TestIntegrationRaftAmbiguousCommit makes the leader commit a transaction
// whose reply the client never gets, then kills the leader: the client
// sees a broken connection, not a result, and cannot tell whether the
// commit happened. The controller's retry must neither lose the write nor
// apply it twice, and should find nothing left to send.
func TestIntegrationRaftAmbiguousCommit(t *testing.T) {
	for _, tc := range []struct {
		name    string
		natOnly bool
	}{
		// The switch's wait guard and the port's and address set's
		// indexes would refuse a stale retry anyway (one more failed
		// sync); the NAT alone has nothing to refuse a second copy.
		{"item", false},
		{"NAT only", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, st, txns := ambiguousCommit(t, tc.natOnly)
			exactlyOnce(t, raftClient(t, e.cluster.Addrs()), 1, tc.natOnly)
			if st.failed.Load() != 1 || st.txnErrors.Load() != 0 {
				t.Errorf("want exactly the one failure without result, got %v", st)
			}
			if txns != 1 {
				t.Errorf("the item took %d transactions, want 1: the retry must find the commit in the rebuilt cache", txns)
			}
		})
	}
	// Why the Transactor waits for the reconnection: without the wait the
	// retry is built from the cache of before the kill, and the NAT is
	// inserted twice. The next sync removes the extra copy.
	t.Run("NAT only without reconnect wait", func(t *testing.T) {
		e, st, txns := ambiguousCommit(t, true, nbops.WithReconnectWait(0))
		t.Logf("%d transactions; %v", txns, st)
		fresh := raftClient(t, e.cluster.Addrs())
		if got := countRows(fresh)["nat "+itemSubnet(0)]; got != 2 {
			t.Errorf("%d copies of the NAT, want the 2 of a retry built from the stale cache", got)
		}
		e.runQueue(0, 1, nil)
		exactlyOnce(t, raftClient(t, e.cluster.Addrs()), 1, true)
	})
}

// ambiguousCommit syncs item 0 through a workqueue while the leader's
// replies are withheld by a proxy, waits until both followers have applied
// the commit (so whichever is elected serves it), kills the leader and
// returns once the workqueue's retries have succeeded, with the number of
// transactions the item took.
func ambiguousCommit(t *testing.T, natOnly bool, opts ...nbops.TransactorOption) (*raftEnv, *syncStats, uint64) {
	t.Helper()
	cluster := testenv.StartNBCluster(t, 3)
	proxies := make([]*freezer, 3)
	addrs := make([]string, 3)
	for i, target := range cluster.Addrs() {
		proxies[i] = newFreezer(t, strings.TrimPrefix(target, "tcp:"))
		addrs[i] = proxies[i].addr()
	}
	e := newRaftEnv(t, cluster, addrs, opts...)
	if natOnly {
		e.build = natOps
	}
	leader := e.waitOnLeader()
	before, _ := e.tx.Stats()

	proxies[leader].freeze()
	st := e.runQueue(0, 1, func() {
		for i := range 3 {
			if i != leader {
				waitNBCtl(t, cluster, i, itemSubnet(0), "--bare", "--columns=logical_ip", "list", "NAT")
			}
		}
		cluster.Kill(t, leader)
	})
	after, _ := e.tx.Stats()
	return e, st, after - before
}

// waitNBCtl polls ovn-nbctl on member i until its output contains want.
func waitNBCtl(t *testing.T, cluster *testenv.Cluster, i int, want string, args ...string) {
	t.Helper()
	testenv.WaitFor(t, failoverTimeout, func() error {
		if out := cluster.NBCtl(t, i, args...); !strings.Contains(out, want) {
			return fmt.Errorf("nb%d: ovn-nbctl %s: %q", i, strings.Join(args, " "), out)
		}
		return nil
	})
}

// freezer is a TCP proxy in front of one cluster member that can stop
// passing the member's messages on (freeze): requests still reach the
// member and commit, but the client never sees a reply or an update.
type freezer struct {
	l      net.Listener
	target string
	frozen atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
}

func newFreezer(t *testing.T, target string) *freezer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{l: l, target: target}
	go f.serve()
	t.Cleanup(f.close)
	return f
}

func (f *freezer) addr() string { return "tcp:" + f.l.Addr().String() }

func (f *freezer) freeze() { f.frozen.Store(true) }

func (f *freezer) serve() {
	for {
		down, err := f.l.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", f.target)
		if err != nil {
			down.Close()
			continue
		}
		f.track(down, up)
		go func() { _, _ = io.Copy(up, down); up.Close(); down.Close() }()
		go f.pipeDown(up, down)
	}
}

// pipeDown copies the member's messages to the client unless frozen, when
// it reads and drops them so the member never blocks on a full socket.
// When the member goes away, so does the client's connection, as it would
// without the proxy.
func (f *freezer) pipeDown(up, down net.Conn) {
	defer down.Close()
	defer up.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := up.Read(buf)
		if n > 0 && !f.frozen.Load() {
			if _, werr := down.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (f *freezer) track(conns ...net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.conns = append(f.conns, conns...)
}

func (f *freezer) close() {
	f.l.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		c.Close()
	}
}
