package bench

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/ovn-kubernetes/libovsdb/cache"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"

	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
)

// Watcher timestamps rows appearing in and leaving NB, by table and name,
// from a libovsdb monitor: the moment the controller's transaction is
// committed is the moment the NB tells its monitors, which is what a node's
// ovn-controller (through northd) would react to.
type Watcher struct {
	c      client.Client
	tables []string // monitored
	mu     sync.Mutex
	waits  []*Wait
	// changes counts row events by table: a restart that changes nothing
	// in NB must leave them still.
	changes map[string]int
}

// Wait tracks one set of names until each reached its state: gone from
// the table, present, or present with a row the name's predicate accepts.
type Wait struct {
	table   string
	gone    bool
	at      map[string]time.Time // when each name reached the state
	pending map[string]bool
	// want holds each name's predicate on its row (nil: being there is
	// enough); it is checked on every insert and update of the row.
	want map[string]func(model.Model) bool
	// late counts names found by a cache rescan rather than by their
	// event: their time is the rescan's, so the figures are upper bounds.
	late int
	done chan struct{}
}

// watchedTables are the tables every watcher monitors; scenarios add
// theirs (NewWatcher's extra). No more: the benchmark's own CPU competes
// with the controller's on a small machine.
func watchedTables() []model.Model {
	return []model.Model{&nbdb.LogicalSwitchPort{}, &nbdb.LogicalSwitch{}, &nbdb.LogicalRouter{}, &nbdb.AddressSet{}}
}

// ServiceTables are what the services scenario adds: load balancers and
// the cluster-wide group they join.
func ServiceTables() []model.Model {
	return []model.Model{&nbdb.LoadBalancer{}, &nbdb.LoadBalancerGroup{}}
}

// PolicyTables are what the policies scenario adds (it counts ACLs).
func PolicyTables() []model.Model { return []model.Model{&nbdb.PortGroup{}, &nbdb.ACL{}} }

// NewWatcher connects to the NB at endpoint (unix:PATH from the root
// namespace) and monitors the tables the scenarios wait on, and extra.
func NewWatcher(ctx context.Context, endpoint string, extra ...model.Model) (*Watcher, error) {
	m, err := nbops.ClientDBModel()
	if err != nil {
		return nil, err
	}
	c, err := client.NewOVSDBClient(m, client.WithEndpoint(endpoint))
	if err != nil {
		return nil, err
	}
	if err := c.Connect(ctx); err != nil {
		return nil, fmt.Errorf("connect to NB %s: %w", endpoint, err)
	}
	w := &Watcher{c: c, changes: map[string]int{}}
	for table, typ := range m.Types() {
		for _, t := range append(watchedTables(), extra...) {
			if reflect.TypeOf(t) == typ {
				w.tables = append(w.tables, table)
			}
		}
	}
	c.Cache().AddEventHandler(&cache.EventHandlerFuncs{
		AddFunc:    func(table string, m model.Model) { w.event(table, m, false) },
		UpdateFunc: func(table string, _, m model.Model) { w.event(table, m, false) },
		DeleteFunc: func(table string, m model.Model) { w.event(table, m, true) },
	})
	var opts []client.MonitorOption
	for _, t := range append(watchedTables(), extra...) {
		opts = append(opts, client.WithTable(t))
	}
	if _, err := c.Monitor(ctx, c.NewMonitor(opts...)); err != nil {
		c.Close()
		return nil, fmt.Errorf("monitor NB: %w", err)
	}
	return w, nil
}

// Close disconnects.
func (w *Watcher) Close() { w.c.Close() }

func rowName(m model.Model) string {
	switch r := m.(type) {
	case *nbdb.LogicalSwitchPort:
		return r.Name
	case *nbdb.LogicalSwitch:
		return r.Name
	case *nbdb.LogicalRouter:
		return r.Name
	case *nbdb.AddressSet:
		return r.Name
	case *nbdb.LoadBalancer:
		return r.Name
	case *nbdb.LoadBalancerGroup:
		return r.Name
	case *nbdb.PortGroup:
		return r.Name
	}
	return "" // ACLs have no unique name: counted, never waited on
}

// Changes returns the row events (adds, updates, deletes) seen so far by
// table, including the initial population.
func (w *Watcher) Changes() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]int, len(w.changes))
	for k, v := range w.changes {
		out[k] = v
	}
	return out
}

// event handles an insert or update (gone false: m is the new row) or
// a delete.
func (w *Watcher) event(table string, m model.Model, gone bool) {
	now := time.Now()
	name := rowName(m)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.changes[table]++
	for _, wt := range w.waits {
		if wt.table == table && wt.gone == gone && wt.accepts(name, m) {
			wt.mark(name, now, false)
		}
	}
}

// accepts tells whether row m, present under name, is what wt waits for.
func (wt *Wait) accepts(name string, m model.Model) bool {
	if !wt.pending[name] {
		return false
	}
	f := wt.want[name]
	return wt.gone || f == nil || f(m)
}

func (wt *Wait) mark(name string, at time.Time, late bool) {
	if !wt.pending[name] {
		return
	}
	delete(wt.pending, name)
	wt.at[name] = at
	if late {
		wt.late++
	}
	if len(wt.pending) == 0 {
		close(wt.done)
	}
}

// Names present in a table now, from the cache.
func (w *Watcher) Names(table string) map[string]bool {
	out := map[string]bool{}
	for _, m := range w.c.Cache().Table(table).RowsShallow() {
		out[rowName(m)] = true
	}
	return out
}

// RowCounts is how many rows each monitored table holds now.
func (w *Watcher) RowCounts() map[string]int {
	out := map[string]int{}
	for _, t := range w.tables {
		out[t] = w.c.Cache().Table(t).Len()
	}
	return out
}

// Rows are the rows of a monitored table now, from the cache; read them,
// never change them.
func (w *Watcher) Rows(table string) []model.Model {
	rows := w.c.Cache().Table(table).RowsShallow()
	out := make([]model.Model, 0, len(rows))
	for _, m := range rows {
		out = append(out, m)
	}
	return out
}

// Expect starts tracking names in table until they exist (gone=false) or
// no longer exist (gone=true). Names already in that state count from now.
func (w *Watcher) Expect(table string, names []string, gone bool) *Wait {
	want := make(map[string]func(model.Model) bool, len(names))
	for _, n := range names {
		want[n] = nil
	}
	return w.expect(table, want, gone)
}

// ExpectRows starts tracking rows of table, by name, until each exists
// and its predicate accepts it (a nil predicate accepts any row): an
// update counts as much as an insert. Rows already accepted count from now.
func (w *Watcher) ExpectRows(table string, want map[string]func(model.Model) bool) *Wait {
	return w.expect(table, want, false)
}

func (w *Watcher) expect(table string, want map[string]func(model.Model) bool, gone bool) *Wait {
	wt := &Wait{table: table, gone: gone, want: want, at: map[string]time.Time{}, pending: map[string]bool{}, done: make(chan struct{})}
	for n := range want {
		wt.pending[n] = true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(wt.pending) == 0 {
		close(wt.done)
	}
	w.rescan(wt, false)
	// Finished waits need no more events (their caller keeps them).
	live := w.waits[:0]
	for _, o := range w.waits {
		if len(o.pending) > 0 {
			live = append(live, o)
		}
	}
	w.waits = append(live, wt)
	return wt
}

// rescan marks names whose state the cache already shows; w.mu held.
func (w *Watcher) rescan(wt *Wait, late bool) {
	if len(wt.pending) == 0 {
		return
	}
	rows := map[string]model.Model{}
	for _, m := range w.c.Cache().Table(wt.table).RowsShallow() {
		if n := rowName(m); wt.pending[n] {
			rows[n] = m
		}
	}
	now := time.Now()
	for n := range wt.pending {
		m, present := rows[n]
		if wt.gone && !present || !wt.gone && present && wt.accepts(n, m) {
			wt.mark(n, now, late)
		}
	}
}

// Until blocks until every name reached its state, the timeout passes or
// ctx ends. It rescans the cache now and then, since libovsdb drops events
// when its buffer is full and a missed event must not hang the run.
func (w *Watcher) Until(ctx context.Context, wt *Wait, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-wt.done:
			return nil
		case <-tick.C:
			w.mu.Lock()
			w.rescan(wt, true)
			w.mu.Unlock()
		case <-deadline.C:
			w.mu.Lock()
			defer w.mu.Unlock()
			name := anyKey(wt.pending)
			state := "missing"
			switch {
			case wt.gone:
				state = "still present"
			case w.Names(wt.table)[name]:
				state = "present, not as expected"
			}
			return fmt.Errorf("%s: %d rows not there yet after %v (e.g. %s: %s)", wt.table, len(wt.pending), timeout, name, state)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Times returns when each name reached its state, and how many were found
// late; call after Until.
func (w *Watcher) Times(wt *Wait) (map[string]time.Time, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]time.Time, len(wt.at))
	for k, v := range wt.at {
		out[k] = v
	}
	return out, wt.late
}

// Last is the latest of the times, or zero.
func Last(times map[string]time.Time) time.Time {
	var last time.Time
	for _, t := range times {
		if t.After(last) {
			last = t
		}
	}
	return last
}

func anyKey(m map[string]bool) string {
	for k := range m {
		return k
	}
	return ""
}
