package nbops_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
)

// concurrently runs n callers released at the same moment and returns
// their errors.
func concurrently(n int, call func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = call(i)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

func TestTransactBatchedMergesConcurrentCallers(t *testing.T) {
	e := memEnv(t)
	// A wide window so a loaded CI machine still lands every caller in
	// few batches.
	tx := nbops.NewTransactor(e.c, nil, nbops.WithBatchWindow(50*time.Millisecond))
	sw := e.switchWithPort("s", "p0")
	const n = 32
	errs := concurrently(n, func(i int) error {
		ops, _, err := nbops.EnsureSwitchPort(e.c, sw, &nbdb.LogicalSwitchPort{Name: fmt.Sprintf("p%d", i+1)})
		if err != nil {
			return err
		}
		return tx.TransactBatched(context.Background(), fmt.Sprintf("add p%d", i+1), ops)
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("caller %d: %v", i, err)
		}
	}
	txns, ops := tx.Stats()
	t.Logf("%d callers, %d ops in %d transactions", n, ops, txns)
	if txns >= n || ops != 2*n {
		t.Errorf("%d transactions, %d ops for %d callers: nothing was merged", txns, ops, n)
	}
	if got := len(e.switchNamed("s").Ports); got != n+1 {
		t.Errorf("switch has %d ports, want %d", got, n+1)
	}
}

// Callers that all use the same named UUID must not collide when merged.
func TestTransactBatchedRenamesNamedUUIDs(t *testing.T) {
	bothDBs(t, func(t *testing.T, e *env) {
		tx := nbops.NewTransactor(e.c, nil, nbops.WithBatchWindow(50*time.Millisecond))
		sw := e.switchWithPort("s", "p0")
		const n = 8
		errs := concurrently(n, func(i int) error {
			ops, err := e.c.Create(&nbdb.LogicalSwitchPort{UUID: "newport", Name: fmt.Sprintf("q%d", i)})
			if err != nil {
				return err
			}
			ops = append(ops, ovsdb.Operation{
				Op: ovsdb.OperationMutate, Table: nbdb.LogicalSwitchTable,
				Where:     []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionEqual, Value: ovsdb.UUID{GoUUID: sw}}},
				Mutations: []ovsdb.Mutation{{Column: "ports", Mutator: ovsdb.MutateOperationInsert, Value: ovsdb.OvsSet{GoSet: []any{ovsdb.UUID{GoUUID: "newport"}}}}},
			})
			return tx.TransactBatched(context.Background(), fmt.Sprintf("add q%d", i), ops)
		})
		for i, err := range errs {
			if err != nil {
				t.Errorf("caller %d: %v", i, err)
			}
		}
		// Had a merged transaction failed on a duplicate uuid-name, every
		// caller would have been retried alone: n+1 transactions at least.
		if txns, _ := tx.Stats(); txns >= n {
			t.Errorf("%d transactions for %d callers", txns, n)
		}
		if got := len(e.switchNamed("s").Ports); got != n+1 {
			t.Errorf("switch has %d ports, want %d", got, n+1)
		}
	})
}

func TestTransactBatchedIsolatesBadRequests(t *testing.T) {
	bothDBs(t, func(t *testing.T, e *env) {
		tx := nbops.NewTransactor(e.c, nil, nbops.WithBatchWindow(50*time.Millisecond))
		sw := e.switchWithPort("s", "taken")
		const n, dup, dangling = 16, 5, 11
		errs := concurrently(n, func(i int) error {
			switch i {
			case dup:
				return tx.TransactBatched(context.Background(), "duplicate port", dupPortOps(t, e, sw, "taken"))
			case dangling:
				return tx.TransactBatched(context.Background(), "dangling reference", []ovsdb.Operation{{
					Op: ovsdb.OperationMutate, Table: nbdb.LogicalSwitchTable,
					Where: []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionEqual, Value: ovsdb.UUID{GoUUID: sw}}},
					Mutations: []ovsdb.Mutation{{Column: "ports", Mutator: ovsdb.MutateOperationInsert,
						Value: ovsdb.OvsSet{GoSet: []any{ovsdb.UUID{GoUUID: "7a9f3c6e-0000-4000-8000-000000000000"}}}}},
				}})
			}
			ops, _, err := nbops.EnsureSwitchPort(e.c, sw, &nbdb.LogicalSwitchPort{Name: fmt.Sprintf("p%d", i)})
			if err != nil {
				return err
			}
			return tx.TransactBatched(context.Background(), fmt.Sprintf("add p%d", i), ops)
		})
		for i, err := range errs {
			var cv *ovsdb.ConstraintViolation
			var riv *ovsdb.ReferentialIntegrityViolation
			switch {
			case i == dup && !errors.As(err, &cv):
				t.Errorf("duplicate port: %v, want its constraint violation", err)
			case i == dangling && !errors.As(err, &riv):
				t.Errorf("dangling reference: %v, want its referential integrity violation", err)
			case i != dup && i != dangling && err != nil:
				t.Errorf("caller %d failed with the bad ones: %v", i, err)
			}
		}
		if got := len(e.switchNamed("s").Ports); got != n-1 {
			t.Errorf("switch has %d ports, want %d (taken + %d good)", got, n-1, n-2)
		}
		txns, _ := tx.Stats()
		t.Logf("%d callers, two bad: %d transactions", n, txns)
	})
}

func TestTransactBatchedSizeCap(t *testing.T) {
	e := memEnv(t)
	// A cap of 4 ops is two ports per transaction.
	tx := nbops.NewTransactor(e.c, nil, nbops.WithBatchWindow(time.Second), nbops.WithBatchMaxOps(4))
	sw := e.switchWithPort("s", "p0")
	start := time.Now()
	errs := concurrently(8, func(i int) error {
		ops, _, err := nbops.EnsureSwitchPort(e.c, sw, &nbdb.LogicalSwitchPort{Name: fmt.Sprintf("p%d", i+1)})
		if err != nil {
			return err
		}
		return tx.TransactBatched(context.Background(), "add", ops)
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Full batches go at once; the one-second window would otherwise
	// show.
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Errorf("full batches waited for the window: %v", d)
	}
	if txns, _ := tx.Stats(); txns != 4 {
		t.Errorf("%d transactions, want 4 of two ports each", txns)
	}
}

func TestTransactBatchedContext(t *testing.T) {
	e := memEnv(t)
	tx := nbops.NewTransactor(e.c, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ops, _, err := nbops.EnsureSwitch(e.c, &nbdb.LogicalSwitch{Name: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.TransactBatched(ctx, "cancelled", ops); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: %v", err)
	}
	if txns, _ := tx.Stats(); txns != 0 {
		t.Fatalf("a cancelled request was sent")
	}
}
