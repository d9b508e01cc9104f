package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"
)

// runController parses args (and --config) the way kovn-controller does.
func runController(t *testing.T, args ...string) (*Controller, error) {
	t.Helper()
	flags := ControllerFlags()
	var got *Controller
	app := &cli.App{
		Flags:  flags,
		Before: altsrc.InitInputSourceWithContext(flags, altsrc.NewYamlSourceFromFlagFunc("config")),
		Action: func(c *cli.Context) error {
			cfg, err := ControllerFromCLI(c)
			got = cfg
			return err
		},
	}
	err := app.Run(append([]string{"kovn-controller"}, args...))
	return got, err
}

// runNode parses args (and --config) the way kovn-node does.
func runNode(t *testing.T, args ...string) (*Node, error) {
	t.Helper()
	flags := NodeFlags()
	var got *Node
	app := &cli.App{
		Flags:  flags,
		Before: altsrc.InitInputSourceWithContext(flags, altsrc.NewYamlSourceFromFlagFunc("config")),
		Action: func(c *cli.Context) error {
			cfg, err := NodeFromCLI(c)
			got = cfg
			return err
		},
	}
	err := app.Run(append([]string{"kovn-node"}, args...))
	return got, err
}

func TestControllerDefaults(t *testing.T) {
	cfg, err := runController(t)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HostSubnetBits != 24 || cfg.ClusterCIDRs[0].String() != "10.128.0.0/14" || cfg.JoinSubnet.String() != "100.64.0.0/16" ||
		cfg.MTU != 1400 || cfg.LeaseDuration != 10*time.Second || !cfg.LeaderElect || cfg.KubeQPS != 500 {
		t.Fatalf("defaults: %+v", cfg)
	}
}

func TestControllerConfigFileSameKeys(t *testing.T) {
	file := filepath.Join(t.TempDir(), "kovn.yaml")
	yaml := `nb-address: ["tcp:10.0.0.1:6641", "tcp:10.0.0.2:6641", "tcp:10.0.0.3:6641"]
cluster-cidr: ["10.200.0.0/16"]
host-subnet-length: 23
lease-duration: 15s
renew-deadline: 10s
mtu: 1450
`
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := runController(t, "--config", file, "--mtu", "1300")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.NBAddresses) != 3 || cfg.ClusterCIDRs[0].String() != "10.200.0.0/16" || cfg.HostSubnetBits != 23 ||
		cfg.LeaseDuration != 15*time.Second || cfg.RenewDeadline != 10*time.Second {
		t.Fatalf("config file not applied: %+v", cfg)
	}
	if cfg.MTU != 1300 {
		t.Fatalf("a flag must win over the file: mtu %d", cfg.MTU)
	}
}

func TestControllerRefusesBadInput(t *testing.T) {
	cases := map[string][]string{
		"mode":          {"--mode", "bridged"},
		"underlay":      {"--mode", "underlay"},
		"nb scheme":     {"--nb-address", "http://x"},
		"ssl no certs":  {"--nb-address", "ssl:10.0.0.1:6641"},
		"cidr":          {"--cluster-cidr", "10.128.0.0/33"},
		"host bits":     {"--cluster-cidr", "10.128.0.1/14"},
		"subnet length": {"--host-subnet-length", "12"},
		"mtu":           {"--mtu", "100"},
		"lease order":   {"--lease-duration", "5s", "--renew-deadline", "7s"},
	}
	for name, args := range cases {
		if _, err := runController(t, args...); err == nil {
			t.Errorf("%s: %v accepted", name, args)
		}
	}
}

func TestNodeFlags(t *testing.T) {
	flags := NodeFlags()
	var got *Node
	app := &cli.App{Flags: flags, Action: func(c *cli.Context) error {
		var err error
		got, err = NodeFromCLI(c)
		return err
	}}
	if err := app.Run([]string{"kovn-node", "--node-name", "n1", "--ovn-remote", "tcp:1.2.3.4:6642", "--datapath-type", "netdev"}); err != nil {
		t.Fatal(err)
	}
	if got.NodeName != "n1" || got.DatapathType != "netdev" || got.SocketPath != "/run/kovn/cni.sock" ||
		got.NodePortMin != 30000 || got.NodePortMax != 32767 {
		t.Fatalf("%+v", got)
	}
	err := app.Run([]string{"kovn-node", "--node-name", "n1", "--ovn-remote", "x", "--datapath-type", "dpdk"})
	if err == nil || !strings.Contains(err.Error(), "datapath-type") {
		t.Fatalf("bad datapath type accepted: %v", err)
	}
	for _, bad := range []string{"30000", "0-10", "200-100", "1-70000", "a-b"} {
		err := app.Run([]string{"kovn-node", "--node-name", "n1", "--ovn-remote", "x", "--service-node-port-range", bad})
		if err == nil || !strings.Contains(err.Error(), "service-node-port-range") {
			t.Errorf("node port range %q accepted: %v", bad, err)
		}
	}
}

// TestNodeConfigFile: the DaemonSet gives kovn-node only --config, so
// every flag, the required --ovn-remote included, must work from the file.
func TestNodeConfigFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "node.yaml")
	if err := os.WriteFile(file, []byte("ovn-remote: tcp:10.0.0.1:6642,tcp:10.0.0.2:6642\ndatapath-type: netdev\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := runNode(t, "--config", file, "--node-name", "n1")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OVNRemote != "tcp:10.0.0.1:6642,tcp:10.0.0.2:6642" || cfg.DatapathType != "netdev" {
		t.Fatalf("config file not applied: %+v", cfg)
	}
	if _, err := runNode(t, "--node-name", "n1"); err == nil || !strings.Contains(err.Error(), "--ovn-remote is required") {
		t.Fatalf("missing --ovn-remote: %v", err)
	}
}

func TestUnderlayFlags(t *testing.T) {
	base := []string{"kovn-controller", "--mode=underlay", "--nb-address=tcp:127.0.0.1:6641"}
	cases := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"--underlay-subnet=172.20.0.0/24", "--underlay-vlan=100", "--underlay-exclude=172.20.0.2-172.20.0.9,172.20.0.254"}, ""},
		{nil, "--underlay-subnet is required"},
		{[]string{"--underlay-subnet=172.20.0.0/24", "--underlay-gateway=172.21.0.1"}, "not in --underlay-subnet"},
		{[]string{"--underlay-subnet=172.20.0.0/24", "--underlay-vlan=4095"}, "out of range"},
		{[]string{"--underlay-subnet=172.20.0.0/24", "--underlay-exclude=172.20.0.9-172.20.0.2"}, "not an address range"},
	}
	for _, tc := range cases {
		var got *Controller
		app := &cli.App{Flags: ControllerFlags(), Action: func(c *cli.Context) error {
			var err error
			got, err = ControllerFromCLI(c)
			return err
		}}
		err := app.Run(append(base, tc.args...))
		if tc.wantErr == "" {
			if err != nil {
				t.Errorf("%v: %v", tc.args, err)
				continue
			}
			if got.Underlay.Gateway.String() != "172.20.0.1" || got.Underlay.VLAN != 100 || len(got.Underlay.Exclude) != 9 {
				t.Errorf("%v: underlay = %+v", tc.args, got.Underlay)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%v: error %v, want %q", tc.args, err, tc.wantErr)
		}
	}
}
