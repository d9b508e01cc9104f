package lab

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kovn-io/kovn/go-controller/pkg/lab/supervise"
)

func TestStartOrder(t *testing.T) {
	in := []string{"kubelet:node1", "apiserver", "ovn-controller:node1", "etcd", "containerd:node1", "ovsdb-server:node1", "nb", "test-server:external", "portal", "ovs-vswitchd:node1"}
	want := []string{"etcd", "apiserver", "portal", "nb", "ovsdb-server:node1", "ovs-vswitchd:node1", "ovn-controller:node1", "containerd:node1", "kubelet:node1", "test-server:external"}
	if got := startOrder(in); !reflect.DeepEqual(got, want) {
		t.Fatalf("startOrder:\n got %v\nwant %v", got, want)
	}
}

func TestExpandComponent(t *testing.T) {
	l, err := New(Config{StateDir: t.TempDir(), Nodes: 2, Mode: "overlay", PortalAddr: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"kubelet:node1", "ovsdb-server:node2", "ovs-vswitchd:node2", "nb", "kovn-controller:0", "kovn-controller:1", "kovn-node:node1"} {
		if err := l.Supervisor().Register(supervise.Spec{Name: n, Argv: []string{"true"}}); err != nil {
			t.Fatal(err)
		}
	}
	cases := map[string][]string{
		"ovs:node2":    {"ovsdb-server:node2", "ovs-vswitchd:node2"},
		"controller":   {"kovn-controller:0", "kovn-controller:1"},
		"controller:1": {"kovn-controller:1"},
		"node:node1":   {"kovn-node:node1"},
		"nb":           {"nb"},
	}
	for in, want := range cases {
		got, err := l.ExpandComponent(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ExpandComponent(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"ovs:node9", "sb", "node:node3"} {
		if _, err := l.ExpandComponent(bad); err == nil {
			t.Errorf("ExpandComponent(%q) should fail", bad)
		}
	}
}

func TestNewValidates(t *testing.T) {
	for _, cfg := range []Config{
		{Nodes: 0, Mode: "overlay", PortalAddr: "127.0.0.1:1"},
		{Nodes: 3, Mode: "bridged", PortalAddr: "127.0.0.1:1"},
		{Nodes: 3, Mode: "overlay", PortalAddr: "nope"},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) should fail", cfg)
		}
	}
	l, err := New(Config{StateDir: "/x", Nodes: 3, Mode: "underlay", PortalAddr: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(l.NodeNames, []string{"node1", "node2", "node3"}) || l.NodeIPs["node3"] != "172.18.0.13" {
		t.Fatalf("nodes %v ips %v", l.NodeNames, l.NodeIPs)
	}
	env := strings.Join(l.Env(), "\n")
	for _, want := range []string{"LAB_NODES='node1 node2 node3'", "LAB_NODE_IPS='172.18.0.11 172.18.0.12 172.18.0.13'", "LAB_MODE=underlay", "OVN_NB_DB=unix:/x/ovn/nb.sock", "EXTERNAL_IP=172.19.0.10"} {
		if !strings.Contains(env, want) {
			t.Errorf("env lacks %s:\n%s", want, env)
		}
	}
}

func TestUnescapeMount(t *testing.T) {
	if got := unescapeMount(`/a\040b/c`); got != "/a b/c" {
		t.Fatalf("got %q", got)
	}
	if got := unescapeMount("/plain"); got != "/plain" {
		t.Fatalf("got %q", got)
	}
}

func TestBindDirName(t *testing.T) {
	if got := bindDirName("/var/lib/kubelet"); got != "var-lib-kubelet" {
		t.Fatalf("got %q", got)
	}
}

func TestExternalHostsAndUnderlay(t *testing.T) {
	for _, cfg := range []Config{
		{Nodes: 3, Mode: "overlay", ExternalHosts: -1, PortalAddr: "127.0.0.1:1"},
		{Nodes: 41, Mode: "overlay", ExternalHosts: 1, PortalAddr: "127.0.0.1:1"},
		{Nodes: 3, Mode: "overlay", UnderlayVLAN: 10, PortalAddr: "127.0.0.1:1"},
		{Nodes: 3, Mode: "underlay", UnderlayVLAN: 4095, PortalAddr: "127.0.0.1:1"},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) should fail", cfg)
		}
	}
	l, err := New(Config{StateDir: "/x", Nodes: 2, ExternalHosts: 2, Mode: "underlay", UnderlayVLAN: 100, PortalAddr: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(l.hosts(), []string{"node1", "node2", "bm1", "bm2"}) || l.hostIP("bm2") != "172.18.0.52" || l.HasNode("bm1") || !l.HasExternalHost("bm1") {
		t.Fatalf("hosts %v ips %v", l.hosts(), l.ExternalHostIPs)
	}
	env := strings.Join(l.Env(), "\n")
	for _, want := range []string{"LAB_EXTERNAL_HOSTS='bm1 bm2'", "LAB_EXTERNAL_HOST_IPS='172.18.0.51 172.18.0.52'",
		"LAB_UNDERLAY_POD_CIDR=172.20.0.0/24", "LAB_UNDERLAY_GATEWAY=172.20.0.1", "LAB_UNDERLAY_VLAN=100"} {
		if !strings.Contains(env, want) {
			t.Errorf("env lacks %s:\n%s", want, env)
		}
	}
	want := []string{"--underlay-subnet=172.20.0.0/24", "--underlay-gateway=172.20.0.1", "--underlay-vlan=100"}
	if got := l.underlayControllerFlags(); !reflect.DeepEqual(got, want) || l.underlayRouterDev() != "br-ul.100" {
		t.Errorf("controller flags %v, router dev %s", got, l.underlayRouterDev())
	}
	overlay, _ := New(Config{StateDir: "/x", Nodes: 1, Mode: "overlay", PortalAddr: "127.0.0.1:1"})
	if f := append(overlay.underlayControllerFlags(), overlay.nodeModeFlags()...); len(f) != 0 || strings.Contains(strings.Join(overlay.Env(), "\n"), "UNDERLAY") {
		t.Errorf("overlay lab has underlay flags or env: %v", f)
	}
}

func TestLogTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	if err := os.WriteFile(path, []byte("a\nb\nc\nd\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := logTail(path, 2); got != "c\nd" {
		t.Errorf("logTail(2) = %q, want %q", got, "c\nd")
	}
	if got := logTail(path, 10); got != "a\nb\nc\nd" {
		t.Errorf("logTail(10) = %q", got)
	}
	if got := logTail(filepath.Join(t.TempDir(), "none"), 2); !strings.Contains(got, "no such file") {
		t.Errorf("logTail(missing) = %q, want the read error", got)
	}
}

func TestValidateDeploy(t *testing.T) {
	ok := Config{Mode: "overlay", OVNPlainTCP: true, ManifestDir: "/x/dist/manifests", Deploy: DeployManifests}
	if err := validateDeploy(ok); err != nil {
		t.Errorf("overlay, plain TCP: %v", err)
	}
	for _, c := range []struct {
		change func(*Config)
		want   string
	}{
		{func(c *Config) { c.Deploy = "helm" }, "--deploy must be"},
		{func(c *Config) { c.Mode = "underlay" }, "--mode underlay"},
		{func(c *Config) { c.OVNHA = true }, "--ovn-ha"},
		{func(c *Config) { c.ExternalHosts = 1 }, "--external-hosts"},
		{func(c *Config) { c.OVNPlainTCP = false }, "SSL to OVN"},
	} {
		cfg := ok
		c.change(&cfg)
		if err := validateDeploy(cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error naming %q", cfg, err, c.want)
		}
	}
	if err := validateDeploy(Config{Mode: "underlay"}); err != nil {
		t.Errorf("processes mode has no such limits: %v", err)
	}
}

func TestKovnKustomization(t *testing.T) {
	l := &Lab{State: State{Config: Config{StateDir: "/var/lib/kovn-lab", ManifestDir: "/src/kovn/dist/manifests",
		Deploy: DeployManifests, OVNPlainTCP: true}, NodeNames: []string{"node1"},
		NodeIPs: map[string]string{"node1": "172.18.0.11"}, Images: map[string]string{"kovn": "kovn.local/kovn:864fb4e95083"}}}
	files, err := l.kovnKustomization("/var/lib/kovn-lab/deploy")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"- ../../../../src/kovn/dist\n", "newName: kovn.local/kovn\n", "newTag: 864fb4e95083\n"} {
		if !strings.Contains(files["kustomization.yaml"], want) {
			t.Errorf("kustomization.yaml lacks %q:\n%s", want, files["kustomization.yaml"])
		}
	}
	for _, want := range []string{`ovn-central-members: "172.18.0.11"`, "nb-address: [tcp:172.18.0.11:6641]",
		"ovn-remote: tcp:172.18.0.11:6642", "datapath-type: netdev", `api-server-host: "172.18.0.2"`, "host-subnet-length: 24"} {
		if !strings.Contains(files["config.yaml"], want) {
			t.Errorf("config.yaml lacks %q:\n%s", want, files["config.yaml"])
		}
	}
	l.Images["kovn"] = "kovn.local/kovn"
	if _, err := l.kovnKustomization("/var/lib/kovn-lab/deploy"); err == nil {
		t.Error("an image reference without a tag was accepted")
	}
}

func TestSpecLines(t *testing.T) {
	var out strings.Builder
	w := &specLines{out: &out}
	log := "noise\n[sig-network] Proxy should proxy\n  STEP: x\n• [FAILED] [5.437 seconds]\n[sig-network] Proxy [It] should proxy\n" +
		"----\n[sig-network] DNS should resolve\n  STEP: y\n• [4.6 seconds]\n-----\n"
	for _, chunk := range []string{log[:7], log[7:30], log[30:]} { // split mid-line
		if _, err := w.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	want := "• [FAILED] [5.437 seconds] [sig-network] Proxy should proxy\n• [4.6 seconds] [sig-network] DNS should resolve\n"
	if out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
}
