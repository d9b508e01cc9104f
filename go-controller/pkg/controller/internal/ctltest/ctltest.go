// Package ctltest is the harness the controller packages' tests share; it
// is for tests only and must never be imported by production code.
//
// An Env is the world outside a controller: a fake API server and an NB
// database (libovsdb's in-memory server, or a real one), with the test's
// own NB connection and Transactor. It outlives controller instances, so
// that a test can restart a controller against the same world. An
// Instance is one run of a controller, as after a process start: its own
// NB connection, Transactor, informer factory and metrics registry.
//
//	env := ctltest.NewEnv(t)
//	i := env.NewInstance()
//	c := New(i.Factory..., i.NB, i.Tx, queue.NewMetrics(i.Reg))
//	i.Start(c.Queue, c.Start) // informers synced, Start called
//	i.Run()                   // workers running; the test's cleanup stops them
//	i.WaitSynced(t, 1)
//
// Each controller package keeps, in its helpers_test.go, only what is its
// own: how to build the controller, and the objects and rows it works on.
package ctltest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kovn-io/kovn/go-controller/pkg/controller/queue"
	"github.com/kovn-io/kovn/go-controller/pkg/metrics"
	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	"github.com/kovn-io/kovn/go-controller/pkg/testenv"
)

// WaitTimeout bounds every wait of the controller tests.
const WaitTimeout = 10 * time.Second

// WaitFor polls cond until it returns nil, and fails the test with cond's
// last error after WaitTimeout.
func WaitFor(t testing.TB, cond func() error) {
	t.Helper()
	testenv.WaitFor(t, WaitTimeout, cond)
}

// ConnectNB connects to the NB database at addr like production does:
// with the name indexes nbops' builders need.
func ConnectNB(t testing.TB, addr string) client.Client {
	t.Helper()
	m, err := nbops.ClientDBModel()
	if err != nil {
		t.Fatal(err)
	}
	return testenv.Connect(t, addr, m)
}

// Env is a fake API server and an NB database, which outlive controller
// instances (restarts).
type Env struct {
	KC     *fake.Clientset
	NBAddr string
	NB     client.Client     // the test's own view of NB
	Tx     *nbops.Transactor // the test's own writes

	t testing.TB
}

// NewEnv starts an in-memory NB database for the test and returns an Env
// on it with an empty fake API server.
func NewEnv(t testing.TB) *Env {
	t.Helper()
	return NewEnvAt(t, testenv.StartInMemoryNB(t).Addr)
}

// NewEnvAt is NewEnv on the NB database at addr (a real one, say).
func NewEnvAt(t testing.TB, addr string) *Env {
	t.Helper()
	nb := ConnectNB(t, addr)
	return &Env{KC: fake.NewClientset(), NBAddr: addr, NB: nb, Tx: nbops.NewTransactor(nb, nil), t: t}
}

// Write sends ops the test built, as one transaction of the test's own;
// err is the error from building them, which fails the test first.
func (e *Env) Write(desc string, ops []ovsdb.Operation, err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.Tx.Transact(context.Background(), desc, ops); err != nil {
		e.t.Fatal(err)
	}
}

// Patches counts the patch actions on resource ("pods", "nodes") that the
// fake API server has seen.
func (e *Env) Patches(resource string) int {
	n := 0
	for _, a := range e.KC.Actions() {
		if a.GetVerb() == "patch" && a.GetResource().Resource == resource {
			n++
		}
	}
	return n
}

// Create, Update and Delete call a typed client of the fake API (such as
// KC.CoreV1().Pods(ns)) and fail the test on error.
func Create[T any](t testing.TB, c interface {
	Create(context.Context, T, metav1.CreateOptions) (T, error)
}, obj T) T {
	t.Helper()
	obj, err := c.Create(context.Background(), obj, metav1.CreateOptions{})
	return check(t, obj, err)
}

// Update: see Create.
func Update[T any](t testing.TB, c interface {
	Update(context.Context, T, metav1.UpdateOptions) (T, error)
}, obj T) T {
	t.Helper()
	obj, err := c.Update(context.Background(), obj, metav1.UpdateOptions{})
	return check(t, obj, err)
}

// Delete: see Create.
func Delete(t testing.TB, c interface {
	Delete(context.Context, string, metav1.DeleteOptions) error
}, name string) {
	t.Helper()
	check(t, name, c.Delete(context.Background(), name, metav1.DeleteOptions{}))
}

func check[T any](t testing.TB, v T, err error) T {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// WaitIdle waits, for a bounded time, until q has been idle for a while;
// it does not fail the test when q stays busy.
func WaitIdle(q *queue.Controller) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	queue.WaitIdle(ctx, 50*time.Millisecond, q)
}

// SyncCount reads kovn_controller_syncs_total{result} ("ok", "error")
// from g, which holds the metrics of one queue.
func SyncCount(t testing.TB, g prometheus.Gatherer, result string) float64 {
	t.Helper()
	n, err := syncCount(g, result)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func syncCount(g prometheus.Gatherer, result string) (float64, error) {
	mfs, err := g.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "kovn_controller_syncs_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue(), err
				}
			}
		}
	}
	return 0, err
}

// WaitProblem waits until p has counted a problem of kind ("Pod", "Node")
// and reason.
func WaitProblem(t testing.TB, p *metrics.Problems, kind, reason string) {
	t.Helper()
	WaitFor(t, func() error {
		if p.Count(kind, reason) < 1 {
			return fmt.Errorf("no %s problem reported", reason)
		}
		return nil
	})
}
