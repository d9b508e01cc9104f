package nbops_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
)

func TestTransactEmptySendsNothing(t *testing.T) {
	e := memEnv(t)
	for _, send := range []func(context.Context, string, []ovsdb.Operation) error{e.tx.Transact, e.tx.TransactBatched} {
		if err := send(context.Background(), "nothing", nil); err != nil {
			t.Fatal(err)
		}
	}
	if txns, ops := e.tx.Stats(); txns != 0 || ops != 0 {
		t.Fatalf("Stats() = %d txns, %d ops after empty transactions", txns, ops)
	}
}

// switchWithPort commits a switch with one port and returns its UUID.
func (e *env) switchWithPort(sw, port string) string {
	e.t.Helper()
	ops, uuid, err := nbops.EnsureSwitch(e.c, &nbdb.LogicalSwitch{Name: sw})
	if err != nil {
		e.t.Fatal(err)
	}
	more, _, err := nbops.EnsureSwitchPort(e.c, uuid, &nbdb.LogicalSwitchPort{Name: port})
	e.apply(append(ops, more...), err)
	return e.switchNamed(sw).UUID
}

// dupPortOps inserts a second port named name into switch sw, which the
// database refuses at commit (Logical_Switch_Port has a unique index on
// name); the builders would never produce them.
func dupPortOps(t testing.TB, e *env, sw, name string) []ovsdb.Operation {
	t.Helper()
	ops, err := e.c.Create(&nbdb.LogicalSwitchPort{UUID: "dup", Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return append(ops, ovsdb.Operation{
		Op: ovsdb.OperationMutate, Table: nbdb.LogicalSwitchTable,
		Where:     []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionEqual, Value: ovsdb.UUID{GoUUID: sw}}},
		Mutations: []ovsdb.Mutation{{Column: "ports", Mutator: ovsdb.MutateOperationInsert, Value: ovsdb.OvsSet{GoSet: []any{ovsdb.UUID{GoUUID: "dup"}}}}},
	})
}

func TestTransactErrors(t *testing.T) {
	bothDBs(t, func(t *testing.T, e *env) {
		sw := e.switchWithPort("s", "taken")

		// A commit-time failure: the unique index on the port name.
		err := e.tx.Transact(context.Background(), "add port taken again", dupPortOps(t, e, sw, "taken"))
		var txnErr *nbops.TxnError
		var cv *ovsdb.ConstraintViolation
		if !errors.As(err, &txnErr) || !errors.As(err, &cv) {
			t.Fatalf("duplicate port: %v, want a TxnError wrapping a constraint violation", err)
		}
		if !strings.Contains(err.Error(), "add port taken again") || !strings.Contains(err.Error(), "taken") {
			t.Errorf("error %q does not name the transaction and the row", err)
		}
		t.Logf("errors read like:\n%v", err)

		// An operation failure: the error says which op, and what it was.
		ops, _, err := nbops.EnsureSwitch(e.c, &nbdb.LogicalSwitch{Name: "t"})
		e.apply(ops, err)
		err = e.tx.Transact(context.Background(), "stale create of t", ops)
		if !errors.As(err, &txnErr) || !strings.Contains(err.Error(), "op 0 (wait Logical_Switch") ||
			!strings.Contains(err.Error(), "stale create of t") {
			t.Fatalf("failed wait: %v", err)
		}
		t.Logf("errors read like:\n%v", err)
	})
}

func counter(t testing.TB, reg *prometheus.Registry, name string, label ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if len(label) == 0 || labelIs(m, label[0], label[1]) {
				switch {
				case m.Counter != nil:
					return m.Counter.GetValue()
				case m.Histogram != nil:
					return float64(m.Histogram.GetSampleCount())
				}
			}
		}
	}
	return 0
}

func labelIs(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

func TestTransactMetrics(t *testing.T) {
	e := memEnv(t)
	reg := prometheus.NewRegistry()
	tx := nbops.NewTransactor(e.c, reg)
	// A second Transactor on the same registry shares the metrics.
	tx2 := nbops.NewTransactor(e.c, reg)

	ops, uuid, err := nbops.EnsureSwitch(e.c, &nbdb.LogicalSwitch{Name: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Transact(context.Background(), "create s", ops); err != nil {
		t.Fatal(err)
	}
	if err := tx2.Transact(context.Background(), "create s again", ops); err == nil {
		t.Fatal("stale create succeeded")
	}
	_ = uuid
	for _, c := range []struct {
		name  string
		label []string
		want  float64
	}{
		{"kovn_nb_transactions_total", []string{"result", "ok"}, 1},
		{"kovn_nb_transactions_total", []string{"result", "error"}, 1},
		{"kovn_nb_operations_total", nil, 4},
		{"kovn_nb_transaction_duration_seconds", nil, 2},
	} {
		if got := counter(t, reg, c.name, c.label...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.label, got, c.want)
		}
	}
	if txns, n := tx.Stats(); txns != 1 || n != 2 {
		t.Errorf("tx.Stats() = %d, %d; want 1 txn, 2 ops", txns, n)
	}
}

func TestDryRunSendsNothing(t *testing.T) {
	e := memEnv(t)
	var got []string
	tx := nbops.NewTransactor(e.c, nil, nbops.WithDryRun(func(desc string, ops []ovsdb.Operation) {
		got = append(got, desc)
	}))
	ops, _, err := nbops.EnsureSwitch(e.c, &nbdb.LogicalSwitch{Name: "dry"})
	if err != nil {
		t.Fatal(err)
	}
	for _, send := range []func(context.Context, string, []ovsdb.Operation) error{tx.Transact, tx.TransactBatched} {
		if err := send(context.Background(), "switch dry", ops); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 2 || got[0] != "switch dry" {
		t.Errorf("recorded %q", got)
	}
	if txns, _ := tx.Stats(); txns != 0 {
		t.Errorf("%d transactions counted as sent", txns)
	}
	var sws []nbdb.LogicalSwitch
	if err := e.c.List(context.Background(), &sws); err != nil || len(sws) != 0 {
		t.Errorf("NB holds %d switches after a dry run (%v)", len(sws), err)
	}
}

// A transaction without result waits for the client to answer again (see
// TestIntegrationRaftAmbiguousCommit), but on a connection that never
// broke that is one echo: neither an ended context nor an op libovsdb
// refuses to send makes Transact wait.
func TestTransactNoResultLiveConnection(t *testing.T) {
	e := memEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	bogus := []ovsdb.Operation{{Op: ovsdb.OperationInsert, Table: nbdb.LogicalSwitchTable, Row: ovsdb.Row{"no_such_column": "x"}}}
	for name, tc := range map[string]struct {
		ctx context.Context
		ops []ovsdb.Operation
	}{
		"ended context": {ctx, dupPortOps(t, e, e.switchWithPort("s", "p"), "q")},
		"invalid op":    {context.Background(), bogus},
	} {
		start := time.Now()
		err := e.tx.Transact(tc.ctx, name, tc.ops)
		if err == nil || errors.As(err, new(*nbops.TxnError)) {
			t.Fatalf("%s: want an error without result, got %v", name, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s: Transact took %v on a live connection", name, d)
		}
	}
}
