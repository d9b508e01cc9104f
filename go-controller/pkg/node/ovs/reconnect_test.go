package ovs_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kovn-io/kovn/go-controller/pkg/node/ovs"
	"github.com/kovn-io/kovn/go-controller/pkg/testenv"
)

// The agent must outlive an ovsdb-server restart (a package upgrade, a
// crash): the client reconnects by itself, its cache is refilled, and
// waiters are woken by changes made after the restart.
func TestReconnect(t *testing.T) {
	db := startDB(t, true)
	c := db.connect(t)
	if err := c.EnsureBridge(tctx(t), "br-int", "", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.AddPort(tctx(t), "br-int", "veth1", podIDs("a", "1")); err != nil {
		t.Fatal(err)
	}

	db.kill(t)
	testenv.WaitFor(t, timeout, func() error {
		if c.Connected() {
			return fmt.Errorf("still connected after ovsdb-server was killed")
		}
		return nil
	})
	// A change made while the server is down: it waits for the
	// reconnection rather than failing.
	added, addCtx := make(chan error, 1), tctx(t)
	go func() { added <- c.AddPort(addCtx, "br-int", "veth2", podIDs("b", "2")) }()
	// And one made by someone else behind the agent's back, which the
	// refilled cache must show.
	time.Sleep(300 * time.Millisecond)
	db.start(t)
	db.vsctl(t, "add-port", "br-int", "veth3", "--", "set", "Interface", "veth3", "external_ids:iface-id=ns_c")

	if err := <-added; err != nil {
		t.Fatalf("AddPort across the restart: %v", err)
	}
	testenv.WaitFor(t, timeout, func() error {
		got, err := c.Ports(tctxBG(), "br-int")
		if err != nil {
			return err
		}
		var names []string
		for _, p := range got {
			names = append(names, p.Name)
		}
		if fmt.Sprint(names) != "[br-int veth1 veth2 veth3]" {
			return fmt.Errorf("ports after the restart: %v", names)
		}
		return nil
	})
	if !c.Connected() {
		t.Error("not connected after the restart")
	}
	// Writes computed from the refilled cache are no-ops.
	if n := txns(t, c, func() error { return c.AddPort(tctx(t), "br-int", "veth1", podIDs("a", "1")) }); n != 0 {
		t.Errorf("AddPort of an existing port after the restart sent %d transactions", n)
	}

	// The event handler still wakes waiters.
	other := db.other(t)
	go func() {
		time.Sleep(100 * time.Millisecond)
		installed(t, other, "veth2")
	}()
	if err := c.WaitInstalled(tctx(t), "veth2", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("stats %+v; ovs-vsctl show:\n%s", c.Stats(), db.vsctl(t, "show"))
}

// Connect keeps trying while ovsdb-server is not up yet, as on a host
// where the agent starts first.
func TestConnectWaitsForServer(t *testing.T) {
	db := startDB(t, true)
	db.kill(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	type result struct {
		c   *ovs.Client
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := ovs.Connect(ctx, db.addr)
		done <- result{c, err}
	}()
	time.Sleep(500 * time.Millisecond)
	select {
	case r := <-done:
		t.Fatalf("Connect returned before the server was up: %v", r.err)
	default:
	}
	db.start(t)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	c := r.c
	defer c.Close()
	if err := c.EnsureBridge(ctx, "br-int", "", nil); err != nil {
		t.Fatal(err)
	}

	// …and gives up when its context ends.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	if _, err := ovs.Connect(ctx2, "unix:/nonexistent/db.sock"); err == nil {
		t.Fatal("Connect to a missing socket succeeded")
	}
}
