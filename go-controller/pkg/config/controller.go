// Package config holds one configuration struct per binary, filled from
// flags or a YAML file with the same keys. Nothing here is global: the
// struct is built once in main and passed down.
package config

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"
)

// Controller configures kovn-controller.
type Controller struct {
	Kubeconfig string
	KubeQPS    float32
	KubeBurst  int

	NBAddresses []string // tcp:IP:PORT, ssl:IP:PORT or unix:PATH; several for a RAFT cluster
	NBCert      string
	NBKey       string
	NBCACert    string

	ClusterCIDRs   []netip.Prefix
	HostSubnetBits int // prefix length of each node's subnet, e.g. 24
	JoinSubnet     netip.Prefix
	ServiceCIDRs   []netip.Prefix
	Mode           string // overlay or underlay
	MTU            int
	Underlay       Underlay // with Mode underlay

	LeaderElect   bool
	LeaseName     string
	LeaseNS       string
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration
	Identity      string

	MetricsAddr  string
	LogVerbosity int // klog -v
	PodWorkers   int
	NodeWorkers  int

	// Verify runs the controllers once without writing and reports what
	// they would write, instead of running as a replica.
	Verify bool
}

// Underlay is the physical network pods sit on in underlay mode.
type Underlay struct {
	Subnet  netip.Prefix // the physical subnet, e.g. 192.168.10.0/24
	Gateway netip.Addr   // the physical router, the pods' gateway
	Exclude []netip.Addr // addresses that other hosts hold on that subnet
	VLAN    int          // 0: untagged
}

// ControllerFlags are the flags of kovn-controller; every one can also be
// set in the file given by --config, under the same name.
func ControllerFlags() []cli.Flag {
	fl := []cli.Flag{
		altsrc.NewStringFlag(&cli.StringFlag{Name: "kubeconfig", Usage: "kubeconfig file (default: in-cluster)"}),
		altsrc.NewFloat64Flag(&cli.Float64Flag{Name: "kube-qps", Value: 500, Usage: "API requests per second; every pod costs one write"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "kube-burst", Value: 1000, Usage: "API requests allowed in a burst above --kube-qps"}),
		altsrc.NewStringSliceFlag(&cli.StringSliceFlag{Name: "nb-address", Usage: "OVN NB address: tcp:IP:6641, ssl:IP:6641 or unix:PATH; repeat for every RAFT member", Value: cli.NewStringSlice("unix:/var/run/ovn/ovnnb_db.sock")}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "nb-cert", Usage: "client certificate for ssl: NB addresses"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "nb-key", Usage: "client key for ssl: NB addresses"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "nb-ca-cert", Usage: "CA certificate for ssl: NB addresses"}),
		altsrc.NewStringSliceFlag(&cli.StringSliceFlag{Name: "cluster-cidr", Value: cli.NewStringSlice("10.128.0.0/14"), Usage: "pod address ranges, node subnets are carved from them"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "host-subnet-length", Value: 24, Usage: "prefix length of each node's pod subnet"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "join-subnet", Value: "100.64.0.0/16", Usage: "links the cluster router to the gateway routers"}),
		altsrc.NewStringSliceFlag(&cli.StringSliceFlag{Name: "service-cidr", Value: cli.NewStringSlice("10.96.0.0/16"), Usage: "Service ClusterIP ranges (the API server's --service-cluster-ip-range); external ports get routes to them"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "mode", Value: "overlay", Usage: "overlay or underlay"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "mtu", Value: 1400, Usage: "pod MTU: the underlay MTU minus Geneve overhead (underlay mode: the physical MTU)"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "underlay-subnet", Usage: "underlay mode: the physical subnet pods get addresses from"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "underlay-gateway", Usage: "underlay mode: the physical router, the pods' gateway (default: the subnet's first address)"}),
		altsrc.NewStringSliceFlag(&cli.StringSliceFlag{Name: "underlay-exclude", Usage: "underlay mode: addresses or FIRST-LAST ranges of the subnet that others hold (hosts, routers)"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "underlay-vlan", Usage: "underlay mode: VLAN tag of the pod network (0: untagged)"}),
		altsrc.NewBoolFlag(&cli.BoolFlag{Name: "leader-elect", Value: true, Usage: "write only while holding the Lease --lease-namespace/--lease-name, so one replica writes (false: write at once; run a single replica)"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "lease-name", Value: "kovn-controller", Usage: "the Lease the replicas compete for"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "lease-namespace", Value: "kovn-system", Usage: "namespace of that Lease"}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "lease-duration", Value: 10 * time.Second, Usage: "a crashed leader is replaced within this"}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "renew-deadline", Value: 7 * time.Second, Usage: "a leader that cannot renew the Lease within this exits"}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "retry-period", Value: 2 * time.Second, Usage: "how often the leader renews the Lease and the others try to take it"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "identity", Usage: "leader-election identity (default: hostname + pid)"}),
		logVerbosityFlag(),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "metrics-address", Value: ":9476", Usage: "serves /metrics, /healthz and /readyz"}),
		// A pod sync spends most of its time waiting: for its annotation
		// PATCH (100-250 ms on a busy API server) and for its share of a
		// batched NB transaction. With 16 workers W1's pods piled up behind
		// those waits (the controller finished 3.3-5.5 s after the last
		// create); with 64, 0.9-2.9 s, and bigger batches (docs/benchmarks.md).
		altsrc.NewIntFlag(&cli.IntFlag{Name: "pod-workers", Value: 64, Usage: "parallel syncs in each of the pod, service and network policy controllers"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "node-workers", Value: 4, Usage: "parallel syncs in the node controller"}),
		&cli.BoolFlag{Name: "verify", Usage: "do not run: compute NB and the API writes kovn would make now, print them, exit 1 if there are any (0: converged)"},
	}
	return append(fl, &cli.StringFlag{Name: "config", Usage: "YAML file with the same keys as the flags"})
}

// ControllerFromCLI reads and validates the flags.
func ControllerFromCLI(c *cli.Context) (*Controller, error) {
	cfg := &Controller{
		Kubeconfig: c.String("kubeconfig"), KubeQPS: float32(c.Float64("kube-qps")), KubeBurst: c.Int("kube-burst"),
		NBAddresses: c.StringSlice("nb-address"), NBCert: c.String("nb-cert"), NBKey: c.String("nb-key"), NBCACert: c.String("nb-ca-cert"),
		HostSubnetBits: c.Int("host-subnet-length"), Mode: c.String("mode"), MTU: c.Int("mtu"),
		LeaderElect: c.Bool("leader-elect"), LeaseName: c.String("lease-name"), LeaseNS: c.String("lease-namespace"),
		LeaseDuration: c.Duration("lease-duration"), RenewDeadline: c.Duration("renew-deadline"), RetryPeriod: c.Duration("retry-period"),
		Identity: c.String("identity"), MetricsAddr: c.String("metrics-address"), LogVerbosity: c.Int("v"),
		PodWorkers: c.Int("pod-workers"), NodeWorkers: c.Int("node-workers"), Verify: c.Bool("verify"),
	}
	var err error
	if cfg.ClusterCIDRs, err = parsePrefixes("cluster-cidr", c.StringSlice("cluster-cidr")); err != nil {
		return nil, err
	}
	if cfg.ServiceCIDRs, err = parsePrefixes("service-cidr", c.StringSlice("service-cidr")); err != nil {
		return nil, err
	}
	if cfg.JoinSubnet, err = netip.ParsePrefix(c.String("join-subnet")); err != nil {
		return nil, fmt.Errorf("--join-subnet: %w", err)
	}
	if cfg.Mode == "underlay" {
		if cfg.Underlay, err = underlayFromCLI(c); err != nil {
			return nil, err
		}
	}
	return cfg, cfg.Validate()
}

// Validate checks what flags alone cannot.
func (c *Controller) Validate() error {
	switch c.Mode {
	case "overlay":
	case "underlay":
		if err := c.Underlay.validate(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("--mode must be overlay or underlay, not %q", c.Mode)
	}
	if len(c.NBAddresses) == 0 {
		return fmt.Errorf("--nb-address is required")
	}
	for _, a := range c.NBAddresses {
		scheme, _, ok := strings.Cut(a, ":")
		if !ok || (scheme != "tcp" && scheme != "ssl" && scheme != "unix") {
			return fmt.Errorf("--nb-address %q: want tcp:IP:PORT, ssl:IP:PORT or unix:PATH", a)
		}
		if scheme == "ssl" && (c.NBCert == "" || c.NBKey == "" || c.NBCACert == "") {
			return fmt.Errorf("--nb-address %q needs --nb-cert, --nb-key and --nb-ca-cert", a)
		}
	}
	for _, p := range c.ClusterCIDRs {
		if c.HostSubnetBits < p.Bits() || c.HostSubnetBits > p.Addr().BitLen()-2 {
			return fmt.Errorf("--host-subnet-length %d does not fit cluster CIDR %s", c.HostSubnetBits, p)
		}
	}
	if c.MTU < 1280 || c.MTU > 9000 {
		return fmt.Errorf("--mtu %d out of range 1280..9000", c.MTU)
	}
	if c.LeaderElect && !(c.RetryPeriod < c.RenewDeadline && c.RenewDeadline < c.LeaseDuration) {
		return fmt.Errorf("leader election wants retry-period < renew-deadline < lease-duration")
	}
	if c.PodWorkers < 1 || c.NodeWorkers < 1 {
		return fmt.Errorf("workers must be at least 1")
	}
	return nil
}

func parsePrefixes(flag string, in []string) ([]netip.Prefix, error) {
	if len(in) == 0 {
		return nil, fmt.Errorf("--%s is required", flag)
	}
	out := make([]netip.Prefix, 0, len(in))
	for _, s := range in {
		for _, part := range strings.Split(s, ",") {
			p, err := netip.ParsePrefix(strings.TrimSpace(part))
			if err != nil {
				return nil, fmt.Errorf("--%s %q: %w", flag, part, err)
			}
			if p.Masked() != p {
				return nil, fmt.Errorf("--%s %q has host bits set", flag, part)
			}
			out = append(out, p)
		}
	}
	return out, nil
}

// underlayFromCLI reads the underlay flags.
func underlayFromCLI(c *cli.Context) (Underlay, error) {
	u := Underlay{VLAN: c.Int("underlay-vlan")}
	var err error
	if u.Subnet, err = netip.ParsePrefix(c.String("underlay-subnet")); err != nil {
		return u, fmt.Errorf("--underlay-subnet is required in underlay mode: %w", err)
	}
	if g := c.String("underlay-gateway"); g != "" {
		if u.Gateway, err = netip.ParseAddr(g); err != nil {
			return u, fmt.Errorf("--underlay-gateway: %w", err)
		}
	} else {
		u.Gateway = u.Subnet.Masked().Addr().Next()
	}
	for _, s := range c.StringSlice("underlay-exclude") {
		for _, part := range strings.Split(s, ",") {
			ips, err := parseAddrRange(strings.TrimSpace(part))
			if err != nil {
				return u, fmt.Errorf("--underlay-exclude %q: %w", part, err)
			}
			u.Exclude = append(u.Exclude, ips...)
		}
	}
	return u, nil
}

// parseAddrRange reads "IP" or "FIRST-LAST" (at most 65536 addresses).
func parseAddrRange(s string) ([]netip.Addr, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	first, err := netip.ParseAddr(lo)
	if err != nil {
		return nil, err
	}
	if !isRange {
		return []netip.Addr{first}, nil
	}
	last, err := netip.ParseAddr(hi)
	if err != nil {
		return nil, err
	}
	if last.Less(first) || first.Is4() != last.Is4() {
		return nil, fmt.Errorf("%s is not an address range FIRST-LAST", s)
	}
	var out []netip.Addr
	for a := first; !last.Less(a); a = a.Next() {
		if out = append(out, a); len(out) > 65536 {
			return nil, fmt.Errorf("range %s holds more than 65536 addresses", s)
		}
	}
	return out, nil
}

func (u *Underlay) validate() error {
	if !u.Subnet.IsValid() || !u.Subnet.Addr().Is4() || u.Subnet.Masked() != u.Subnet || u.Subnet.Bits() > 30 {
		return fmt.Errorf("--underlay-subnet %s: want an IPv4 network of /30 or wider", u.Subnet)
	}
	if !u.Subnet.Contains(u.Gateway) {
		return fmt.Errorf("--underlay-gateway %s is not in --underlay-subnet %s", u.Gateway, u.Subnet)
	}
	for _, a := range u.Exclude {
		if !u.Subnet.Contains(a) {
			return fmt.Errorf("--underlay-exclude %s is not in --underlay-subnet %s", a, u.Subnet)
		}
	}
	if u.VLAN < 0 || u.VLAN > 4094 {
		return fmt.Errorf("--underlay-vlan %d out of range 0..4094", u.VLAN)
	}
	return nil
}
