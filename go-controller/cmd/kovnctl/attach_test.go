package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	"github.com/urfave/cli/v2"
	"github.com/vishvananda/netlink"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/kovntest"
	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/node/extport"
	"github.com/kovn-io/kovn/go-controller/pkg/node/ovs"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/vswitchd"
	"github.com/kovn-io/kovn/go-controller/pkg/testenv"
)

// TestAttachFlags checks where attach takes its flags from: before or
// after NAMESPACE/NAME, and --timeout/--kubeconfig before or after the
// command, with the global flag's environment variable.
func TestAttachFlags(t *testing.T) {
	type got struct {
		key, iface, kubeconfig string
		internal               bool
		timeout                time.Duration
	}
	parse := func(args ...string) (got, error) {
		var g got
		cmd := attachCommand()
		cmd.Action = func(c *cli.Context) error {
			fc, err := withTrailingFlags(c)
			if err != nil || fc == nil {
				return err
			}
			g = got{key: c.Args().First(), iface: flagContext(fc, "interface").String("interface"),
				kubeconfig: flagContext(fc, "kubeconfig").String("kubeconfig"), internal: flagContext(fc, "internal").Bool("internal"),
				timeout: flagContext(fc, "timeout").Duration("timeout")}
			return nil
		}
		app := &cli.App{Flags: globalFlags(), Commands: []*cli.Command{cmd}, ExitErrHandler: func(*cli.Context, error) {}}
		return g, app.Run(append([]string{"kovnctl"}, args...))
	}
	unsetenv(t, "KUBECONFIG")
	for _, tc := range []struct {
		args []string
		want got
	}{
		{[]string{"attach", "a/b", "--interface", "tap0"}, got{"a/b", "tap0", "", false, 30 * time.Second}},
		{[]string{"attach", "-i", "tap0", "a/b"}, got{"a/b", "tap0", "", false, 30 * time.Second}},
		{[]string{"--timeout", "5s", "--kubeconfig", "/k", "attach", "a/b", "-i", "kovn-host0", "--internal"}, got{"a/b", "kovn-host0", "/k", true, 5 * time.Second}},
		{[]string{"--timeout", "5s", "attach", "--timeout", "7s", "a/b", "-i", "x", "--kubeconfig", "/c"}, got{"a/b", "x", "/c", false, 7 * time.Second}},
		{[]string{"attach", "--internal", "a/b", "-i", "x", "--timeout=9s"}, got{"a/b", "x", "", true, 9 * time.Second}},
	} {
		g, err := parse(tc.args...)
		if err != nil || g != tc.want {
			t.Errorf("%q: %+v %v, want %+v", tc.args, g, err, tc.want)
		}
	}
	t.Setenv("KUBECONFIG", "/env")
	if g, err := parse("attach", "a/b", "-i", "x"); err != nil || g.kubeconfig != "/env" {
		t.Errorf("KUBECONFIG: %+v %v", g, err)
	}
	if _, err := parse("attach", "a/b", "-i", "x", "more"); err == nil {
		t.Error("a second argument was accepted")
	}
}

func TestAttachUsageErrors(t *testing.T) {
	noKube(t)
	for _, args := range [][]string{
		{"attach"},
		{"attach", "name-only", "-i", "x"},
		{"attach", "a/b/c", "-i", "x"},
		{"attach", "a/b"}, // no --interface
		{"attach", "a/b", "-i", "x"},
		{"detach"},
	} {
		if out, code := run(t, args...); code != 2 {
			t.Errorf("%q: exit %d\n%s", args, code, out)
		}
	}
	out, _ := run(t, "attach", "a/b", "-i", "x")
	if !strings.Contains(out, "pass --kubeconfig or set KUBECONFIG") {
		t.Errorf("attach without a kubeconfig:\n%s", out)
	}
}

// TestAttach runs attach against a fake API, an in-memory Open_vSwitch
// database whose ovn-controller the test plays, and real links in a
// private network namespace (a veth end to plug, and a veth named br-int
// standing for the bridge's device, so the datapath reads as the kernel's).
func TestAttach(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	o, db := attachOVS(t, ctx)
	ep := &kube.ExternalPort{ObjectMeta: metav1.ObjectMeta{Namespace: "infra", Name: "vm1"}, Spec: kube.ExternalPortSpec{Chassis: "host-a"}}
	other := &kube.ExternalPort{ObjectMeta: metav1.ObjectMeta{Namespace: "infra", Name: "vm2"}, Spec: kube.ExternalPortSpec{Chassis: "host-b"}}
	dc := kovntest.Dynamic(t, ep, other)
	d := attachDeps{dc: dc, o: o, hostname: "host-a.example"}

	netns, err := testutils.NewNS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = netns.Close(); _ = testutils.UnmountNS(netns) })
	err = netns.Do(func(ns.NetNS) error {
		for _, pair := range [][2]string{{"tap0", "vm0"}, {"br-int", "brpeer"}} {
			if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: pair[0]}, PeerName: pair[1]}); err != nil {
				return err
			}
		}
		// The controller assigns the port a moment later; ovn-controller
		// binds it once plugged.
		go func() {
			time.Sleep(200 * time.Millisecond)
			st := &kube.ExternalPortStatus{IPs: []string{"10.128.250.5/24"}, MAC: "0a:58:0a:80:fa:05", Gateway: "10.128.250.1", IfaceID: "ep_infra_vm1"}
			if err := kube.PatchExternalPortStatus(ctx, dc, "infra", "vm1", st); err != nil {
				t.Error(err)
			}
		}()
		go db.PlayOVNController(ctx)
		res, err := attach(ctx, d, attachRequest{namespace: "infra", name: "vm1", iface: "tap0"})
		if err != nil {
			return err
		}
		var out strings.Builder
		if err := writeAttach(&out, res); err != nil {
			return err
		}
		t.Logf("kovnctl attach infra/vm1 --interface tap0:\n%s", out.String())
		for _, want := range []string{"iface-id:      ep_infra_vm1\n", "ip:            10.128.250.5/24\n", "mac:           0a:58:0a:80:fa:05\n",
			"gateway:       10.128.250.1\n", "chassis:       host-a\n", "interface:     tap0 (system port on br-int)\n", "ovn-installed: after "} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("output lacks %q", want)
			}
		}

		_, err = attach(ctx, d, attachRequest{namespace: "infra", name: "vm2", iface: "tap0"})
		if err == nil || !strings.Contains(err.Error(), `is for chassis "host-b", and this host is chassis "host-a"`) {
			t.Errorf("attach of another chassis' port: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Never assigned: the timeout says what is missing.
	unassigned := &kube.ExternalPort{ObjectMeta: metav1.ObjectMeta{Namespace: "infra", Name: "vm3"}, Spec: kube.ExternalPortSpec{Chassis: "host-a"}}
	d.dc = kovntest.Dynamic(t, unassigned)
	tctx, tcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer tcancel()
	_, err = attach(tctx, d, attachRequest{namespace: "infra", name: "vm3", iface: "tap0"})
	if err == nil || !strings.Contains(err.Error(), "not assigned yet: no status.ifaceID, status.ips") {
		t.Errorf("attach of an unassigned port: %v", err)
	}

	// What detach does.
	if err := extport.Unplug(ctx, o, attachBridge, "tap0"); err != nil {
		t.Fatal(err)
	}
	if plugged(ctx, o, "tap0") {
		t.Error("tap0 still plugged after detach")
	}
}

func attachOVS(t *testing.T, ctx context.Context) (*ovs.Client, *testenv.InMemoryDB) {
	mem := testenv.StartInMemoryOVS(t)
	ops, err := mem.Client.Create(&vswitchd.OpenvSwitch{UUID: "root", ExternalIDs: map[string]string{ovs.KeySystemID: "host-a"}})
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
	if err := o.EnsureBridge(ctx, attachBridge, "", nil); err != nil {
		t.Fatal(err)
	}
	return o, mem
}
