package ovs_test

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/cache"
	"github.com/ovn-kubernetes/libovsdb/model"

	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/vswitchd"
)

// Pods start in bursts: 30 CNI ADDs at once, each adding its port and
// waiting for ovn-controller, played here by a second client that marks
// each bound interface installed after a random delay.
func TestConcurrentAddPortWaitInstalled(t *testing.T) {
	const pods = 30
	db := startDB(t, true)
	c := db.connect(t)
	if err := c.EnsureBridge(tctx(t), "br-int", "", nil); err != nil {
		t.Fatal(err)
	}
	fakeOVNController(t, db)

	before := c.Stats()
	start := time.Now()
	errs := make(chan error, pods)
	var wg sync.WaitGroup
	for i := range pods {
		name := fmt.Sprintf("veth%02d", i)
		ctx := tctx(t)
		wg.Go(func() {
			if err := c.AddPort(ctx, "br-int", name, podIDs(name, "uid")); err != nil {
				errs <- err
				return
			}
			errs <- c.WaitInstalled(ctx, name, 5*time.Second)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	t.Logf("%d ports added and installed in %v", pods, time.Since(start))
	if n := c.Stats().Transactions - before.Transactions; n != pods {
		t.Errorf("%d AddPorts sent %d transactions, want one each", pods, n)
	}
	ports, err := c.Ports(tctx(t), "br-int")
	if err != nil {
		t.Fatal(err)
	}
	if len(ports) != pods+1 {
		t.Errorf("br-int has %d ports, want %d", len(ports), pods+1)
	}
	for _, p := range ports {
		if p.Name != "br-int" && !p.Installed {
			t.Errorf("%s not installed: %+v", p.Name, p)
		}
	}
}

// fakeOVNController sets ovn-installed on every interface that gets an
// iface-id, 0–100 ms later, as ovn-controller does once flows are in.
func fakeOVNController(t *testing.T, db *testDB) {
	other := db.other(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[string]bool{}
	bind := func(_ string, m model.Model) {
		iface, ok := m.(*vswitchd.Interface)
		if !ok || iface.ExternalIDs["iface-id"] == "" || iface.ExternalIDs["ovn-installed"] == "true" {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if seen[iface.Name] {
			return
		}
		seen[iface.Name] = true
		// Not in the handler: it must not block libovsdb's event loop.
		wg.Go(func() {
			time.Sleep(time.Duration(rand.IntN(100)) * time.Millisecond)
			installed(t, other, iface.Name)
		})
	}
	other.Cache().AddEventHandler(&cache.EventHandlerFuncs{
		AddFunc:    bind,
		UpdateFunc: func(table string, _, m model.Model) { bind(table, m) },
	})
	t.Cleanup(wg.Wait)
}
