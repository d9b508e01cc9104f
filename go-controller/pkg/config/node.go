package config

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"
)

// Node configures kovn-node.
type Node struct {
	NodeName   string
	Kubeconfig string
	KubeQPS    float32
	KubeBurst  int

	OVSDB             string // local Open_vSwitch database
	OVNRemote         string // SB address(es) for ovn-controller
	SystemID          string // chassis name; default: the existing one, else the node name
	EncapIP           string // default: the gateway interface's address
	DatapathType      string // netdev (userspace) or system (kernel)
	GatewayInterface  string // NIC moved into br-ex
	ClusterCIDRs      []netip.Prefix
	ServiceCIDRs      []netip.Prefix
	NodePortMin       uint16 // Kubernetes' --service-node-port-range
	NodePortMax       uint16
	MTU               int
	CNIBinDir         string
	CNIConfDir        string
	CNIPlugin         string // the kovn-cni binary to install
	SocketPath        string
	AnnotationTimeout time.Duration
	InstallTimeout    time.Duration
	MetricsAddr       string
	LogVerbosity      int // klog -v
	// FlowPurgeInterval bounds the life of a stale userspace-datapath flow
	// (netdev only; see ovs.FlowPurger); 0 purges only after changes.
	FlowPurgeInterval time.Duration
	// Mode is overlay (node switch, management port, gateway router) or
	// underlay (pods bridged onto the physical network through br-ex).
	Mode string
	// ExternalHost: this host is a chassis but not a Kubernetes Node
	// (a bare-metal host or a VM hypervisor): no br-ex, management port,
	// CNI, Node object or heartbeat.
	ExternalHost bool
	// HostPort is NAMESPACE/NAME of the ExternalPort that carries this
	// host's own address on kovn's network ("" for none; external hosts
	// only), plugged as the internal port HostPortInterface.
	HostPort          string
	HostPortInterface string
}

// NodeFlags are the flags of kovn-node (also settable in --config).
func NodeFlags() []cli.Flag {
	host, _ := os.Hostname()
	fl := []cli.Flag{
		altsrc.NewStringFlag(&cli.StringFlag{Name: "node-name", Value: host, DefaultText: "$(hostname)", EnvVars: []string{"NODE_NAME"}, Usage: "this node's Kubernetes name"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "kubeconfig", Usage: "kubeconfig file (default: in-cluster)"}),
		altsrc.NewFloat64Flag(&cli.Float64Flag{Name: "kube-qps", Value: 50, Usage: "API requests per second"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "kube-burst", Value: 100, Usage: "API requests allowed in a burst above --kube-qps"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "ovs-db", Value: "unix:/var/run/openvswitch/db.sock", Usage: "the host's Open_vSwitch database"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "ovn-remote", Usage: "required, as a flag or in --config: OVN SB address(es) for ovn-controller, e.g. tcp:10.0.0.1:6642"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "system-id", Usage: "chassis name (default: the one set, else the node name)"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "encap-ip", Usage: "Geneve endpoint (default: the gateway interface's IPv4 address)"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "datapath-type", Value: "system", Usage: "system (kernel module) or netdev (userspace)"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "gateway-interface", Value: "eth0", Usage: "NIC holding the node IP; moved into br-ex"}),
		altsrc.NewStringSliceFlag(&cli.StringSliceFlag{Name: "cluster-cidr", Value: cli.NewStringSlice("10.128.0.0/14"), Usage: "pod address ranges, as the controller's; overlay mode: the host routes them through the management port"}),
		altsrc.NewStringSliceFlag(&cli.StringSliceFlag{Name: "service-cidr", Value: cli.NewStringSlice("10.96.0.0/16"), Usage: "Service ClusterIP ranges, as the controller's; overlay mode: the host routes them through the management port, reaching Services without kube-proxy"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "service-node-port-range", Value: "30000-32767", Usage: "the API server's NodePort range; steered to OVN on the node IP"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "mtu", Value: 1400, Usage: "pod MTU (the controller's value wins when it writes one)"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "cni-bin-dir", Value: "/opt/cni/bin", Usage: "where kovn-cni is installed; hostPort also needs the portmap plugin there"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "cni-conf-dir", Value: "/etc/cni/net.d", Usage: "where 10-kovn.conflist is written"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "cni-plugin", Value: "/usr/libexec/kovn/kovn-cni", Usage: "kovn-cni binary to install into --cni-bin-dir"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "cni-socket", Value: "/run/kovn/cni.sock", Usage: "unix socket of the CNI server; written into the conflist for kovn-cni"}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "annotation-timeout", Value: 30 * time.Second, Usage: "how long CNI ADD waits for the controller's pod annotation"}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "install-timeout", Value: 20 * time.Second, Usage: "how long CNI ADD waits for ovn-controller to install the port"}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "datapath-flow-purge-interval", Value: 10 * time.Second, Usage: "netdev only: also purge the datapath's flow cache this often, bounding how long a stale flow of OVS 3.1's userspace datapath lives (0: only after OpenFlow changes)"}),
		logVerbosityFlag(),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "metrics-address", Value: "127.0.0.1:9478", Usage: "serves /metrics, /healthz and /readyz"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "mode", Value: "overlay", Usage: "overlay or underlay; must match the controller's"}),
		altsrc.NewBoolFlag(&cli.BoolFlag{Name: "external-host", Usage: "this host is not a Kubernetes node: configure the OVN chassis only (no br-ex, management port, CNI or Node)"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "host-port", Usage: "with --external-host: NAMESPACE/NAME of the ExternalPort that gives this host an address on kovn's network"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "host-port-interface", Value: "kovn-host0", Usage: "the OVS internal port that carries --host-port"}),
	}
	return append(fl, &cli.StringFlag{Name: "config", Usage: "YAML file with the same keys as the flags"})
}

// NodeFromCLI reads and validates the flags.
func NodeFromCLI(c *cli.Context) (*Node, error) {
	cfg := &Node{
		NodeName: c.String("node-name"), Kubeconfig: c.String("kubeconfig"),
		KubeQPS: float32(c.Float64("kube-qps")), KubeBurst: c.Int("kube-burst"),
		OVSDB: c.String("ovs-db"), OVNRemote: c.String("ovn-remote"), SystemID: c.String("system-id"),
		EncapIP: c.String("encap-ip"), DatapathType: c.String("datapath-type"), GatewayInterface: c.String("gateway-interface"),
		MTU: c.Int("mtu"), CNIBinDir: c.String("cni-bin-dir"), CNIConfDir: c.String("cni-conf-dir"),
		CNIPlugin: c.String("cni-plugin"), SocketPath: c.String("cni-socket"),
		AnnotationTimeout: c.Duration("annotation-timeout"), InstallTimeout: c.Duration("install-timeout"),
		MetricsAddr: c.String("metrics-address"), LogVerbosity: c.Int("v"), FlowPurgeInterval: c.Duration("datapath-flow-purge-interval"),
		Mode:         c.String("mode"),
		ExternalHost: c.Bool("external-host"), HostPort: c.String("host-port"), HostPortInterface: c.String("host-port-interface"),
	}
	var err error
	if cfg.ClusterCIDRs, err = parsePrefixes("cluster-cidr", c.StringSlice("cluster-cidr")); err != nil {
		return nil, err
	}
	if cfg.ServiceCIDRs, err = parsePrefixes("service-cidr", c.StringSlice("service-cidr")); err != nil {
		return nil, err
	}
	if cfg.NodePortMin, cfg.NodePortMax, err = parsePortRange(c.String("service-node-port-range")); err != nil {
		return nil, fmt.Errorf("--service-node-port-range: %w", err)
	}
	if cfg.NodeName == "" {
		return nil, fmt.Errorf("--node-name is required")
	}
	// Checked here, not by cli's Required, which runs before --config is
	// read and so refused a value given only in the file.
	if cfg.OVNRemote == "" {
		return nil, fmt.Errorf("--ovn-remote is required")
	}
	if cfg.DatapathType != "system" && cfg.DatapathType != "netdev" {
		return nil, fmt.Errorf("--datapath-type must be system or netdev")
	}
	if cfg.Mode != "overlay" && cfg.Mode != "underlay" {
		return nil, fmt.Errorf("--mode must be overlay or underlay, not %q", cfg.Mode)
	}
	if cfg.FlowPurgeInterval < 0 {
		return nil, fmt.Errorf("--datapath-flow-purge-interval must not be negative")
	}
	if cfg.EncapIP != "" {
		if _, err := netip.ParseAddr(cfg.EncapIP); err != nil {
			return nil, fmt.Errorf("--encap-ip: %w", err)
		}
	}
	if err := cfg.validateHostPort(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// validateHostPort checks --host-port and --host-port-interface.
func (cfg *Node) validateHostPort() error {
	if cfg.HostPort == "" {
		return nil
	}
	if !cfg.ExternalHost {
		return fmt.Errorf("--host-port needs --external-host: a Kubernetes node reaches kovn's network through its management port")
	}
	ns, name, ok := strings.Cut(cfg.HostPort, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return fmt.Errorf("--host-port must be NAMESPACE/NAME, not %q", cfg.HostPort)
	}
	// IFNAMSIZ is 16 with the terminating NUL.
	if n := len(cfg.HostPortInterface); n == 0 || n > 15 || strings.ContainsAny(cfg.HostPortInterface, "/ ") {
		return fmt.Errorf("--host-port-interface %q is not a valid interface name (1-15 characters, no '/' or space)", cfg.HostPortInterface)
	}
	return nil
}

// parsePortRange reads "MIN-MAX" (both 1-65535, MIN <= MAX).
func parsePortRange(s string) (uint16, uint16, error) {
	lo, hi, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, fmt.Errorf("%q is not MIN-MAX", s)
	}
	min, err1 := strconv.ParseUint(strings.TrimSpace(lo), 10, 16)
	max, err2 := strconv.ParseUint(strings.TrimSpace(hi), 10, 16)
	if err1 != nil || err2 != nil || min == 0 || min > max {
		return 0, 0, fmt.Errorf("%q is not a port range MIN-MAX with 1 <= MIN <= MAX <= 65535", s)
	}
	return uint16(min), uint16(max), nil
}
