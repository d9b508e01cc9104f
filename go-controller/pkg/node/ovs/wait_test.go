package ovs_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
)

func TestWaitInstalled(t *testing.T) {
	db := startDB(t, true)
	c := db.connect(t)
	other := db.other(t) // plays ovs-vswitchd and ovn-controller
	if err := c.EnsureBridge(tctx(t), "br-int", "", nil); err != nil {
		t.Fatal(err)
	}
	add := func(t *testing.T, name string) {
		t.Helper()
		if err := c.AddPort(tctx(t), "br-int", name, podIDs(name, "uid-"+name)); err != nil {
			t.Fatal(err)
		}
	}
	ofport := func(n int) ovsdb.Row { return ovsdb.Row{"ofport": n} }

	t.Run("installed later", func(t *testing.T) {
		add(t, "veth-a")
		setIface(t, other, "veth-a", ofport(5))
		go func() {
			time.Sleep(200 * time.Millisecond)
			installed(t, other, "veth-a")
		}()
		start := time.Now()
		if err := c.WaitInstalled(tctx(t), "veth-a", 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 190*time.Millisecond || d > 2*time.Second {
			t.Errorf("WaitInstalled returned after %v; the flag was set after 200ms", d)
		}
	})

	t.Run("already installed", func(t *testing.T) {
		add(t, "veth-b")
		installed(t, other, "veth-b")
		// Another client's change reaches c's cache on its own schedule;
		// after that, WaitInstalled must not wait at all.
		if err := c.WaitInstalled(tctx(t), "veth-b", 5*time.Second); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := c.WaitInstalled(tctx(t), "veth-b", 50*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 20*time.Millisecond {
			t.Errorf("WaitInstalled on an installed interface took %v", d)
		}
	})

	for _, tc := range []struct {
		name  string
		row   ovsdb.Row // set on the interface before waiting
		iface string    // "" is the added port; else a name never added
		want  string
	}{
		{name: "no ofport yet", want: "no ofport yet"},
		{name: "ofport -1", row: ofport(-1), want: "interface has no ofport: device missing?"},
		{name: "not bound", row: ofport(7), want: "ofport 7, iface-id=ns_veth-c"},
		{name: "missing interface", iface: "veth-none", want: "interface not in the database"},
	} {
		t.Run("timeout/"+tc.name, func(t *testing.T) {
			name := tc.iface
			if name == "" {
				name = "veth-c"
				add(t, name)
				if tc.row != nil {
					setIface(t, other, name, tc.row)
				}
			}
			start := time.Now()
			err := c.WaitInstalled(tctx(t), name, 300*time.Millisecond)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), name) ||
				!errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("WaitInstalled: %v; want a timeout naming %s that says %q", err, name, tc.want)
			}
			if d := time.Since(start); d < 300*time.Millisecond || d > 2*time.Second {
				t.Errorf("WaitInstalled timed out after %v, want 300ms", d)
			}
			t.Log(err)
		})
	}

	t.Run("interface error while waiting", func(t *testing.T) {
		add(t, "veth-d")
		const msg = "could not open network device veth-d (No such device)"
		go func() {
			time.Sleep(100 * time.Millisecond)
			setIface(t, other, "veth-d", ovsdb.Row{"error": msg, "ofport": -1})
		}()
		start := time.Now()
		err := c.WaitInstalled(tctx(t), "veth-d", 5*time.Second)
		if err == nil || !strings.Contains(err.Error(), msg) || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("WaitInstalled: %v; want ovs-vswitchd's error at once", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("WaitInstalled took %v to report the error", d)
		}
		t.Log(err)
	})

	t.Run("canceled", func(t *testing.T) {
		add(t, "veth-e")
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		if err := c.WaitInstalled(ctx, "veth-e", 5*time.Second); !errors.Is(err, context.Canceled) {
			t.Errorf("WaitInstalled after cancel: %v", err)
		}
	})
}
