package extport

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/node/ovs"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/vswitchd"
	"github.com/kovn-io/kovn/go-controller/pkg/testenv"
)

// fakeKernel records what plugging asked of the kernel; no link is touched.
type fakeKernel struct {
	mu        sync.Mutex
	userspace bool
	missing   map[string]bool
	csumOff   []string
	waited    []string
	config    map[string]linkConfig
}

func (f *fakeKernel) kernel() kernel {
	return kernel{
		checkLink: func(name string) error {
			if f.missing[name] {
				return &missingLink{name}
			}
			return nil
		},
		userspace: func(string) (bool, error) { return f.userspace, nil },
		txCsumOff: func(name string) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.csumOff = append(f.csumOff, name)
			return nil
		},
		waitLink: func(name string, _ time.Duration) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.waited = append(f.waited, name)
			return nil
		},
		configure: func(name string, want linkConfig) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.config[name] = want
			return nil
		},
	}
}

type missingLink struct{ name string }

func (m *missingLink) Error() string { return "interface " + m.name + ": Link not found" }

// env is an Open_vSwitch database with br-int and br-ex, a Client on it,
// and a fake ovn-controller that sets ovn-installed on interfaces whose
// iface-id it has been told to bind.
type env struct {
	ctx  context.Context
	db   client.Client
	o    *ovs.Client
	k    *fakeKernel
	p    plugger
	mu   sync.Mutex
	bind map[string]bool
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	mem := testenv.StartInMemoryOVS(t)
	ops, err := mem.Client.Create(&vswitchd.OpenvSwitch{UUID: "root"})
	if err == nil {
		_, err = mem.Client.Transact(ctx, ops...)
	}
	if err != nil {
		t.Fatal(err)
	}
	o, err := ovs.Connect(ctx, mem.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(o.Close)
	for _, br := range []string{"br-int", "br-ex"} {
		if err := o.EnsureBridge(ctx, br, "", nil); err != nil {
			t.Fatal(err)
		}
	}
	e := &env{ctx: ctx, db: mem.Client, o: o, k: &fakeKernel{missing: map[string]bool{}, config: map[string]linkConfig{}}, bind: map[string]bool{}}
	e.p = plugger{o: o, k: e.k.kernel()}
	go e.ovnController(ctx)
	return e
}

func (e *env) bindable(ifaceID string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.bind[ifaceID] = true
}

func (e *env) ovnController(ctx context.Context) {
	for ctx.Err() == nil {
		var ifaces []*vswitchd.Interface
		_ = e.db.List(ctx, &ifaces)
		for _, i := range ifaces {
			e.mu.Lock()
			ok := e.bind[i.ExternalIDs[ovs.KeyIfaceID]]
			e.mu.Unlock()
			if !ok || i.ExternalIDs[ovs.KeyOVNInstalled] == "true" {
				continue
			}
			i.ExternalIDs[ovs.KeyOVNInstalled] = "true"
			if ops, err := e.db.Where(i).Update(i, &i.ExternalIDs); err == nil {
				_, _ = e.db.Transact(ctx, ops...)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// port returns the interface's type and external_ids as the Client sees them.
func (e *env) port(t *testing.T, bridge, name string) *ovs.PortInfo {
	t.Helper()
	ports, err := e.o.Ports(e.ctx, bridge)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ports {
		if p.Name == name {
			return &p
		}
	}
	return nil
}

func TestPlug(t *testing.T) {
	e := newEnv(t)
	e.bindable("ep_ns_vm1")
	if err := e.p.plug(e.ctx, "br-int", "tap0", "ep_ns_vm1", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	p := e.port(t, "br-int", "tap0")
	if p == nil || p.Type != "" || p.ExternalIDs[ovs.KeyIfaceID] != "ep_ns_vm1" || p.ExternalIDs[KeyExternalPort] != "ep_ns_vm1" || !p.Installed {
		t.Fatalf("after plug: %+v", p)
	}
	if len(e.k.csumOff) != 0 {
		t.Errorf("TX checksum turned off on the kernel datapath: %v", e.k.csumOff)
	}

	// Again, the same: no transaction.
	before := e.o.Stats().Transactions
	if err := e.p.plug(e.ctx, "br-int", "tap0", "ep_ns_vm1", time.Second); err != nil {
		t.Fatal(err)
	}
	if n := e.o.Stats().Transactions - before; n != 0 {
		t.Errorf("re-plug sent %d transactions, want none", n)
	}

	// Another iface-id: the binding is replaced and the wait is for the
	// new one (which this ovn-controller does not know yet).
	err := e.p.plug(e.ctx, "br-int", "tap0", "ep_ns_vm2", 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "not installed") {
		t.Fatalf("plug with an unbound iface-id: %v", err)
	}
	if p := e.port(t, "br-int", "tap0"); p.ExternalIDs[ovs.KeyIfaceID] != "ep_ns_vm2" || p.Installed {
		t.Fatalf("after the iface-id changed: %+v", p)
	}
	e.bindable("ep_ns_vm2")
	if err := e.p.plug(e.ctx, "br-int", "tap0", "ep_ns_vm2", 5*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestPlugUserspaceKeepsOtherIDs(t *testing.T) {
	e := newEnv(t)
	e.k.userspace = true
	e.bindable("ep_ns_vm1")
	// As libvirt leaves a tap it plugged, with a stale iface-id-ver.
	libvirt := map[string]string{"attached-mac": "52:54:00:12:34:56", "vm-uuid": "u1", KeyExternalPort: "old", ovs.KeyIfaceID: "old", ovs.KeyIfaceIDVer: "v1"}
	if err := e.o.AddPort(e.ctx, "br-int", "vnet0", libvirt); err != nil {
		t.Fatal(err)
	}
	if err := e.p.plug(e.ctx, "br-int", "vnet0", "ep_ns_vm1", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	p := e.port(t, "br-int", "vnet0")
	if p.ExternalIDs["attached-mac"] != "52:54:00:12:34:56" || p.ExternalIDs["vm-uuid"] != "u1" || p.ExternalIDs[ovs.KeyIfaceIDVer] != "" {
		t.Errorf("external_ids %v: want libvirt's kept and iface-id-ver gone", p.ExternalIDs)
	}
	if len(e.k.csumOff) != 1 || e.k.csumOff[0] != "vnet0" {
		t.Errorf("TX checksum off on %v, want [vnet0]", e.k.csumOff)
	}
}

func TestPlugRefuses(t *testing.T) {
	e := newEnv(t)
	if err := e.o.AddPort(e.ctx, "br-int", "kv0123", map[string]string{ovs.KeyIfaceID: "ns_pod", "kovn.io/pod": "ns/pod"}); err != nil {
		t.Fatal(err)
	}
	if err := e.o.EnsureSystemPort(e.ctx, "br-ex", "eth0"); err != nil {
		t.Fatal(err)
	}
	e.k.missing["nope"] = true
	for _, tc := range []struct{ bridge, iface, want string }{
		{"br-int", "kv0123", "bound to iface-id ns_pod"},
		{"br-int", "eth0", "port of br-ex"},
		{"br-int", "br-int", `type is "internal"`},
		{"br-int", "nope", "Link not found"},
		{"br-nope", "tap0", "bridge br-nope does not exist"},
	} {
		err := e.p.plug(e.ctx, tc.bridge, tc.iface, "ep_x", time.Second)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("plug %s into %s: %v, want an error with %q", tc.iface, tc.bridge, err, tc.want)
		}
	}
	if p := e.port(t, "br-ex", "eth0"); p == nil {
		t.Error("eth0 left br-ex")
	}
	if p := e.port(t, "br-int", "kv0123"); p.ExternalIDs[ovs.KeyIfaceID] != "ns_pod" {
		t.Errorf("pod port changed: %v", p.ExternalIDs)
	}
}

func TestUnplug(t *testing.T) {
	e := newEnv(t)
	e.bindable("ep_ns_vm1")
	if err := e.p.plug(e.ctx, "br-int", "tap0", "ep_ns_vm1", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := e.o.AddPort(e.ctx, "br-int", "kv0123", map[string]string{ovs.KeyIfaceID: "ns_pod", "kovn.io/pod": "ns/pod"}); err != nil {
		t.Fatal(err)
	}
	if err := Unplug(e.ctx, e.o, "br-int", "kv0123"); err == nil || !strings.Contains(err.Error(), "not an external port") {
		t.Errorf("unplug of a pod port: %v", err)
	}
	if err := Unplug(e.ctx, e.o, "br-int", "tap0"); err != nil {
		t.Fatal(err)
	}
	if p := e.port(t, "br-int", "tap0"); p != nil {
		t.Errorf("tap0 still plugged: %+v", p)
	}
	if err := Unplug(e.ctx, e.o, "br-int", "tap0"); err != nil {
		t.Errorf("unplug of an absent port: %v", err)
	}
}

func TestPlugInternal(t *testing.T) {
	e := newEnv(t)
	e.bindable("ep_ns_host1")
	st := &kube.ExternalPortStatus{
		IPs: []string{"10.128.250.5/24"}, MAC: "0a:58:0a:80:fa:05", Gateway: "10.128.250.1",
		Routes: []string{"10.128.0.0/14", "10.96.0.0/16", "0.0.0.0/0"}, MTU: 1400, IfaceID: "ep_ns_host1",
	}
	if err := e.p.plugInternal(e.ctx, "br-int", "kovn-host0", "", st, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	p := e.port(t, "br-int", "kovn-host0")
	if p == nil || p.Type != "internal" || p.ExternalIDs[ovs.KeyIfaceID] != "ep_ns_host1" || p.ExternalIDs[KeyExternalPort] != "ep_ns_host1" {
		t.Fatalf("internal port: %+v", p)
	}
	var iface vswitchd.Interface
	iface.Name = "kovn-host0"
	if err := e.db.Get(e.ctx, &iface); err != nil || iface.MAC == nil || *iface.MAC != "0a:58:0a:80:fa:05" {
		t.Errorf("interface mac: %v %v", iface.MAC, err)
	}
	got := e.k.config["kovn-host0"]
	want := []netip.Prefix{netip.MustParsePrefix("10.128.0.0/14"), netip.MustParsePrefix("10.96.0.0/16")}
	if got.Addr.String() != "10.128.250.5/24" || got.MTU != 1400 || got.Gateway.String() != "10.128.250.1" ||
		got.MAC.String() != st.MAC || len(got.Routes) != 2 || got.Routes[0] != want[0] || got.Routes[1] != want[1] {
		t.Errorf("link configuration %+v", got)
	}
	if len(e.k.waited) != 1 {
		t.Errorf("waited for links %v", e.k.waited)
	}

	before := e.o.Stats().Transactions
	if err := e.p.plugInternal(e.ctx, "br-int", "kovn-host0", "", st, time.Second); err != nil {
		t.Fatal(err)
	}
	if n := e.o.Stats().Transactions - before; n != 0 {
		t.Errorf("second PlugInternal sent %d transactions, want none", n)
	}
	noMAC := *st
	noMAC.MAC = ""
	if err := e.p.plugInternal(e.ctx, "br-int", "kovn-host1", "", &noMAC, time.Second); err == nil {
		t.Error("PlugInternal without a MAC succeeded")
	}
	// A system port of that name is not taken over as an internal one.
	if err := e.o.AddPort(e.ctx, "br-int", "tap9", nil); err != nil {
		t.Fatal(err)
	}
	if err := e.p.plugInternal(e.ctx, "br-int", "tap9", "", st, time.Second); err == nil || !strings.Contains(err.Error(), `type is ""`) {
		t.Errorf("PlugInternal over a system port: %v", err)
	}
}
