package nbops_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	"github.com/kovn-io/kovn/go-controller/pkg/testenv"
)

const waitTimeout = 10 * time.Second

// env is one NB database with a client built like production ones.
type env struct {
	t  testing.TB
	c  client.Client
	tx *nbops.Transactor
}

func memEnv(t testing.TB) *env {
	t.Helper()
	db := testenv.StartInMemoryNB(t)
	return newEnv(t, db.Addr)
}

func newEnv(t testing.TB, addr string) *env {
	t.Helper()
	m, err := nbops.ClientDBModel()
	if err != nil {
		t.Fatal(err)
	}
	c := testenv.Connect(t, addr, m)
	return &env{t: t, c: c, tx: nbops.NewTransactor(c, nil)}
}

// apply sends ops built by a builder, failing the test on any error.
func (e *env) apply(ops []ovsdb.Operation, err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatalf("build: %v", err)
	}
	if len(ops) == 0 {
		e.t.Fatal("apply: builder returned no ops")
	}
	if err := e.tx.Transact(context.Background(), e.t.Name(), ops); err != nil {
		e.t.Fatal(err)
	}
}

// converged waits until build returns no ops, which is how every builder
// must answer once the cache holds what it asked for.
func (e *env) converged(build func() ([]ovsdb.Operation, error)) {
	e.t.Helper()
	testenv.WaitFor(e.t, waitTimeout, func() error {
		ops, err := build()
		if err != nil {
			return err
		}
		if len(ops) > 0 {
			return fmt.Errorf("still %d ops: %s", len(ops), opsString(ops))
		}
		return nil
	})
}

func opsString(ops []ovsdb.Operation) string {
	s := ""
	for _, op := range ops {
		s += fmt.Sprintf("\n  %s %s row=%v where=%v mut=%v", op.Op, op.Table, op.Row, op.Where, op.Mutations)
	}
	return s
}

// wantOps checks the kinds of ops a builder returned, in order.
func wantOps(t testing.TB, ops []ovsdb.Operation, err error, kinds ...string) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, op := range ops {
		got = append(got, op.Op+" "+op.Table)
	}
	if fmt.Sprint(got) != fmt.Sprint(kinds) {
		t.Fatalf("ops = %v, want %v:%s", got, kinds, opsString(ops))
	}
}

func (e *env) switchNamed(name string) *nbdb.LogicalSwitch {
	e.t.Helper()
	var found []*nbdb.LogicalSwitch
	err := e.c.WhereCache(func(ls *nbdb.LogicalSwitch) bool { return ls.Name == name }).List(context.Background(), &found)
	if err != nil {
		e.t.Fatal(err)
	}
	switch len(found) {
	case 0:
		return nil
	case 1:
		return found[0]
	}
	e.t.Fatalf("%d switches named %q", len(found), name)
	return nil
}

func (e *env) routerNamed(name string) *nbdb.LogicalRouter {
	e.t.Helper()
	var found []*nbdb.LogicalRouter
	err := e.c.WhereCache(func(lr *nbdb.LogicalRouter) bool { return lr.Name == name }).List(context.Background(), &found)
	if err != nil {
		e.t.Fatal(err)
	}
	if len(found) != 1 {
		e.t.Fatalf("%d routers named %q", len(found), name)
	}
	return found[0]
}

func (e *env) port(name string) *nbdb.LogicalSwitchPort {
	e.t.Helper()
	lsp := &nbdb.LogicalSwitchPort{Name: name}
	if err := e.c.Get(context.Background(), lsp); err != nil {
		return nil
	}
	return lsp
}

func ptr[T any](v T) *T { return &v }

// dropUUID adapts an Ensure builder's result to converged.
func dropUUID(ops []ovsdb.Operation, _ string, err error) ([]ovsdb.Operation, error) {
	return ops, err
}

// bothDBs runs test against libovsdb's in-memory server and against a
// real ovsdb-server (with northd), for behaviour where the two could
// differ: error results, wait, named UUIDs in conditions.
func bothDBs(t *testing.T, test func(t *testing.T, e *env)) {
	t.Run("inmemory", func(t *testing.T) { test(t, memEnv(t)) })
	t.Run("ovsdb-server", func(t *testing.T) { test(t, newEnv(t, testenv.StartOVN(t).NBAddr)) })
}
