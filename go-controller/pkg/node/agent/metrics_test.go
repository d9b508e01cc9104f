package agent

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kovn-io/kovn/go-controller/pkg/node/ovs"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/vswitchd"
	"github.com/kovn-io/kovn/go-controller/pkg/testenv"
)

// TestPodPortsAndReady counts pod ports on br-int by state, and follows
// readiness through the OVSDB connection.
func TestPodPortsAndReady(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mem := testenv.StartInMemoryOVS(t)
	db := mem.Client // plays ovs-vswitchd and ovn-controller
	ops, err := db.Create(&vswitchd.OpenvSwitch{UUID: "root"})
	if err == nil {
		_, err = db.Transact(ctx, ops...)
	}
	if err != nil {
		t.Fatal(err)
	}
	o, err := ovs.Connect(ctx, mem.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()

	reg := prometheus.NewPedanticRegistry()
	m := NewMetrics(reg)
	ports := func() (map[string]float64, error) {
		mfs, err := reg.Gather()
		if err != nil {
			return nil, err
		}
		got := map[string]float64{}
		for _, mf := range mfs {
			if mf.GetName() == "kovn_node_pod_ports" {
				for _, s := range mf.Metric {
					got[s.Label[0].GetValue()] = s.GetGauge().GetValue()
				}
			}
		}
		return got, nil
	}
	if got, err := ports(); err != nil || len(got) != 0 {
		t.Errorf("before Run connected: %v %v, want no series", got, err)
	}

	if err := o.EnsureBridge(ctx, "br-int", "system", nil); err != nil {
		t.Fatal(err)
	}
	for name, pod := range map[string]string{"kvinstalled": "ns/a", "kvpending": "ns/b", "kverror": "ns/c", "kovn-mp0": ""} {
		ids := map[string]string{"iface-id": name}
		if pod != "" {
			ids[podKey] = pod
		}
		if err := o.AddPort(ctx, "br-int", name, ids); err != nil {
			t.Fatal(err)
		}
	}
	update := func(name string, set func(*vswitchd.Interface) []any) {
		t.Helper()
		iface := &vswitchd.Interface{Name: name}
		if err := db.Get(ctx, iface); err != nil {
			t.Fatal(err)
		}
		ops, err := db.Where(iface).Update(iface, set(iface)...)
		if err == nil {
			_, err = db.Transact(ctx, ops...)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	update("kvinstalled", func(i *vswitchd.Interface) []any {
		i.ExternalIDs[ovs.KeyOVNInstalled] = "true"
		return []any{&i.ExternalIDs}
	})
	update("kverror", func(i *vswitchd.Interface) []any {
		ofport, msg := -1, "could not open network device kverror (No such device)"
		i.Ofport, i.Error = &ofport, &msg
		return []any{&i.Ofport, &i.Error}
	})

	m.ovs.Store(o) // as Run does
	want := fmt.Sprint(map[string]float64{portInstalled: 1, portPending: 1, portError: 1})
	testenv.WaitFor(t, 10*time.Second, func() error {
		got, err := ports()
		if err == nil && fmt.Sprint(got) != want {
			err = fmt.Errorf("kovn_node_pod_ports %v, want %v", got, want)
		}
		return err
	})

	if m.Ready() {
		t.Error("ready before the CNI server is listening")
	}
	m.serving.Store(true)
	if !m.Ready() {
		t.Error("not ready while connected and serving")
	}
	// A lost connection (the server going away) is Connected's to notice,
	// tested in pkg/node/ovs; here the client is closed.
	o.Close()
	if m.Ready() {
		t.Error("ready without an OVSDB connection")
	}
}
