package nbops

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/klog/v2"
)

// Transactor is kovn's one way to send operations to the NB database. It
// is safe for concurrent use; make one per client.
type Transactor struct {
	c client.Client

	window           time.Duration
	maxOps           int
	syncTimeout      time.Duration
	txnTimeout       time.Duration
	reconnectTimeout time.Duration

	txns, ops atomic.Uint64
	m         metrics

	// Batching state (batch.go): the batch still accepting requests, and
	// a one-slot semaphore so one merged transaction is in flight at a
	// time while the next batch fills.
	mu        sync.Mutex
	open      *batch
	flushSlot chan struct{}

	// dryRun, when set, receives every transaction instead of the
	// database (kovn-controller --verify).
	dryRun func(desc string, ops []ovsdb.Operation)
}

// TransactorOption tunes a Transactor.
type TransactorOption func(*Transactor)

// WithBatchWindow sets how long TransactBatched waits for other callers
// before sending (default 2ms).
func WithBatchWindow(d time.Duration) TransactorOption {
	return func(t *Transactor) { t.window = d }
}

// WithBatchMaxOps sends a batch as soon as it holds this many operations
// (default 500); one request larger than that is sent on its own.
func WithBatchMaxOps(n int) TransactorOption {
	return func(t *Transactor) { t.maxOps = n }
}

// WithCacheSync bounds how long a successful transaction waits for the
// client's cache to show the rows it inserted and deleted (default 2s; 0
// disables). Nothing in OVSDB promises the cache has a change when
// Transact returns, and a builder running on a cache without it would
// insert a second copy of a row; with the wait, "transact, then build
// again" is safe. Against a standalone ovsdb-server the update arrives
// before the reply (libovsdb handles it synchronously), so the wait is one
// lookup per inserted or deleted row.
func WithCacheSync(timeout time.Duration) TransactorOption {
	return func(t *Transactor) { t.syncTimeout = timeout }
}

// WithBatchTxnTimeout bounds a merged transaction, which runs on behalf of
// several callers and so cannot use any one caller's context (default 30s).
func WithBatchTxnTimeout(d time.Duration) TransactorOption {
	return func(t *Transactor) { t.txnTimeout = d }
}

// WithReconnectWait bounds how long a transaction that got no result
// (its connection broke) waits for the client to reconnect before
// returning its error (default 30s; 0 disables). See Transact.
func WithReconnectWait(timeout time.Duration) TransactorOption {
	return func(t *Transactor) { t.reconnectTimeout = timeout }
}

// WithDryRun hands every transaction to record instead of sending it, and
// reports success. Nothing reaches NB, so the client's cache never shows
// the change: for a one-pass "what would kovn write" check, not for a
// controller that keeps running.
func WithDryRun(record func(desc string, ops []ovsdb.Operation)) TransactorOption {
	return func(t *Transactor) { t.dryRun = record }
}

// NewTransactor returns a Transactor sending through c. Its metrics are
// registered with reg unless reg is nil; Transactors sharing a registry
// share the metrics.
func NewTransactor(c client.Client, reg prometheus.Registerer, opts ...TransactorOption) *Transactor {
	t := &Transactor{
		c:                c,
		window:           2 * time.Millisecond,
		maxOps:           500,
		syncTimeout:      2 * time.Second,
		txnTimeout:       30 * time.Second,
		reconnectTimeout: 30 * time.Second,
		m:                newMetrics(reg),
		flushSlot:        make(chan struct{}, 1),
	}
	for _, o := range opts {
		o(t)
	}
	return t
}

// Stats returns how many transactions and operations this Transactor has
// sent, failed ones included.
func (t *Transactor) Stats() (txns, ops uint64) {
	return t.txns.Load(), t.ops.Load()
}

// Transact sends ops as one transaction, or nothing at all when ops is
// empty (a converged controller sends no transactions). desc says what the
// transaction is for; it is in the log and in any error. An error the
// database reports is a *TxnError.
//
// Any other error means there is no result. When the connection broke
// with the transaction in flight (a RAFT leader killed), it may still
// commit: the leader may have replicated it first, and the new leader then
// commits it. Such an error is returned only once the client has
// reconnected (see awaitReconnect; at most WithReconnectWait later), so the
// caller's retry builds its ops from a cache that holds the transaction if
// it committed, rather than from the cache of before the break, which
// would insert its rows a second time.
func (t *Transactor) Transact(ctx context.Context, desc string, ops []ovsdb.Operation) error {
	if len(ops) == 0 {
		return nil
	}
	return t.transact(ctx, desc, ops)
}

func (t *Transactor) transact(ctx context.Context, desc string, ops []ovsdb.Operation) error {
	if t.dryRun != nil {
		t.dryRun(desc, ops)
		return nil
	}
	start := time.Now()
	res, err := t.c.Transact(ctx, ops...)
	noResult := err != nil
	if err == nil {
		err = checkResults(desc, res, ops)
	} else {
		err = fmt.Errorf("nb transaction %q (%d ops): %w", desc, len(ops), err)
	}
	d := time.Since(start)
	t.txns.Add(1)
	t.ops.Add(uint64(len(ops)))
	t.m.observe(err == nil, len(ops), d)
	klog.V(4).InfoS("NB transaction", "desc", desc, "ops", len(ops), "duration", d, "err", err)
	if noResult {
		t.awaitReconnect(ctx, desc)
	}
	if err != nil {
		return err
	}
	if t.syncTimeout > 0 {
		t.awaitCache(ctx, desc, cacheExpectations(ops, res))
	}
	return nil
}

// TxnError is a transaction the database refused: one or more operations
// failed, or the commit did (for example an index or referential
// integrity violation). Unwrap gives the ovsdb.OperationError values, so
// errors.As(err, new(*ovsdb.ConstraintViolation)) works.
type TxnError struct {
	Desc   string
	NumOps int
	Err    error
}

func (e *TxnError) Error() string {
	return fmt.Sprintf("nb transaction %q (%d ops) failed: %v", e.Desc, e.NumOps, e.Err)
}

func (e *TxnError) Unwrap() error { return e.Err }

func checkResults(desc string, res []ovsdb.OperationResult, ops []ovsdb.Operation) error {
	opErrs, err := ovsdb.CheckOperationResults(res, ops)
	if err == nil {
		return nil
	}
	var errs []error
	for _, oe := range opErrs {
		i := opIndex(ops, oe.Operation())
		hint := ""
		if i >= 0 && ops[i].Op == ovsdb.OperationWait {
			// Builders only wait to guard an insert of a name without
			// a schema index.
			hint = " (the row to insert exists already: stale cache or a concurrent writer)"
		}
		errs = append(errs, fmt.Errorf("op %d (%s): %w%s", i, describeOp(ops, i), oe, hint))
	}
	if len(opErrs) == 0 || len(res) > len(ops) {
		// The commit itself failed (the extra result past the last op),
		// or the server sent too few results.
		errs = append(errs, err)
	}
	return &TxnError{Desc: desc, NumOps: len(ops), Err: errors.Join(errs...)}
}

func opIndex(ops []ovsdb.Operation, op *ovsdb.Operation) int {
	for i := range ops {
		if &ops[i] == op {
			return i
		}
	}
	return -1
}

// describeOp names an operation well enough to find its builder: op,
// table, the row's name if it has one, and which row it addresses.
func describeOp(ops []ovsdb.Operation, i int) string {
	if i < 0 || i >= len(ops) {
		return "?"
	}
	op := ops[i]
	parts := []string{op.Op, op.Table}
	if name, ok := op.Row["name"].(string); ok {
		parts = append(parts, fmt.Sprintf("name=%q", name))
	}
	if op.UUIDName != "" {
		parts = append(parts, "uuid-name="+op.UUIDName)
	}
	for _, w := range op.Where {
		parts = append(parts, fmt.Sprintf("where %s %s %v", w.Column, w.Function, w.Value))
	}
	return strings.Join(parts, " ")
}

// rowState is a row a committed transaction inserted (present) or deleted.
type rowState struct {
	table, uuid string
	present     bool
}

func cacheExpectations(ops []ovsdb.Operation, res []ovsdb.OperationResult) []rowState {
	var want []rowState
	for i, op := range ops {
		switch {
		case op.Op == ovsdb.OperationInsert && i < len(res) && res[i].UUID.GoUUID != "":
			want = append(want, rowState{op.Table, res[i].UUID.GoUUID, true})
		case op.Op == ovsdb.OperationDelete && len(op.Where) == 1 && op.Where[0].Column == "_uuid":
			if u, ok := op.Where[0].Value.(ovsdb.UUID); ok && ovsdb.IsValidUUID(u.GoUUID) {
				want = append(want, rowState{op.Table, u.GoUUID, false})
			}
		}
	}
	return want
}

// awaitCache waits until the client's cache shows every expected row
// state. OVSDB sends one update per transaction, so once these rows are
// right the transaction's other changes are in the cache too. Timing out
// is logged, not returned: the transaction did commit.
func (t *Transactor) awaitCache(ctx context.Context, desc string, want []rowState) {
	if len(want) == 0 {
		return
	}
	deadline := time.Now().Add(t.syncTimeout)
	sleep := 50 * time.Microsecond
	for {
		pending := 0
		for _, w := range want {
			rc := t.c.Cache().Table(w.table)
			if rc != nil && rc.HasRow(w.uuid) != w.present {
				pending++
			}
		}
		if pending == 0 {
			return
		}
		if !t.c.Connected() || ctx.Err() != nil || time.Now().After(deadline) {
			klog.InfoS("NB cache does not show a committed transaction yet; builders may see stale rows",
				"desc", desc, "rowsPending", pending, "connected", t.c.Connected())
			return
		}
		time.Sleep(sleep)
		sleep = min(2*sleep, 5*time.Millisecond)
	}
}

// awaitReconnect waits until the client answers an echo again, which
// after a broken connection means it has reconnected with its cache
// rebuilt: libovsdb re-monitors (monitor_cond_since: the changes since
// the last update it saw, from whichever member it reached, the RAFT
// leader with WithLeaderOnly) while holding the lock Echo needs, and only
// then takes calls again. Polling is needed because libovsdb tells no one
// when it is back; and for a short while after the break the dead
// connection still answers with an error. When the connection never broke
// (the transaction's context ended, a validation error) the first echo
// answers at once, or fails at once on the ended context.
//
// This protects rows without a schema index or a wait guard (NATs, static
// routes, ACLs) in particular: a retry built from the stale cache would
// insert them again, and nothing in the database refuses that. It cannot
// help when the new leader has the transaction in its log but commits it
// only after serving the client's monitor (RAFT commits a new leader's
// older entries with its first entry of the new term, a round trip
// later); rows with an index or a guard are safe even then.
//
// A client that does not reconnect (no WithReconnect, or closed) makes
// the wait run to its timeout or to the end of ctx.
func (t *Transactor) awaitReconnect(parent context.Context, desc string) {
	if t.reconnectTimeout <= 0 {
		return
	}
	ctx, cancel := context.WithTimeout(parent, t.reconnectTimeout)
	defer cancel()
	start := time.Now()
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	for {
		err := t.c.Echo(ctx)
		if err == nil {
			klog.V(2).InfoS("NB client answers again after a transaction without result", "desc", desc, "waited", time.Since(start))
			return
		}
		select {
		case <-ctx.Done():
			if parent.Err() == nil {
				klog.InfoS("NB client not back after a transaction without result; a retry may build on a stale cache",
					"desc", desc, "waited", time.Since(start), "err", err)
			}
			return
		case <-poll.C:
		}
	}
}
