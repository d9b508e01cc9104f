package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
)

// Connect returns a client of the OVSDB at addr ("unix:/path" or
// "tcp:host:port") with every table of dbModel monitored, so its cache is
// populated when Connect returns. It is closed when the test ends.
//
// Pass a model with client indexes (ClientDBModel.SetIndexes) to test code
// that relies on them; NB(t)/SB(t) use the plain generated models.
func Connect(t testing.TB, addr string, dbModel model.ClientDBModel) client.Client {
	t.Helper()
	c, err := client.NewOVSDBClient(dbModel, client.WithEndpoint(addr))
	if err != nil {
		t.Fatalf("new %s client: %v", dbModel.Name(), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("connect %s at %s: %v", dbModel.Name(), addr, err)
	}
	t.Cleanup(c.Close)
	if _, err := c.MonitorAll(ctx); err != nil {
		t.Fatalf("monitor %s at %s: %v", dbModel.Name(), addr, err)
	}
	return c
}

// WaitFor polls cond until it returns nil and fails the test with cond's
// last error after timeout. Needed because a libovsdb client's cache is
// updated asynchronously: Transact returns before the client has seen its
// own change, and northd's reaction arrives later still.
func WaitFor(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not true after %v: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
