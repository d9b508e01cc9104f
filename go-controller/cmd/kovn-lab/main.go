// kovn-lab runs a whole Kubernetes + OVN cluster on one Linux machine, as
// root and without containers, for kovn's demos, end-to-end tests and
// benchmarks. See docs/lab.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/kovn-io/kovn/go-controller/pkg/lab"
	"github.com/kovn-io/kovn/go-controller/pkg/lab/k8sbuild"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app().RunContext(ctx, os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "kovn-lab:", err)
		os.Exit(1)
	}
}

func app() *cli.App {
	return &cli.App{
		Name:  "kovn-lab",
		Usage: "a real multi-node Kubernetes + OVN cluster on one machine",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "state-dir", Value: "/var/lib/kovn-lab", EnvVars: []string{"KOVN_LAB_STATE"}, Usage: "where the lab keeps everything it makes"},
			&cli.StringFlag{Name: "cache-dir", Value: "/var/cache/kovn", EnvVars: []string{"KOVN_CACHE"}, Usage: "build outputs kept across labs (Kubernetes binaries, images)"},
		},
		Commands: []*cli.Command{
			upCommand(),
			{Name: "down", Usage: "stop everything and remove every trace of the lab", Action: func(c *cli.Context) error {
				return lab.Down(c.String("state-dir"), os.Stdout)
			}},
			{Name: "status", Usage: "components, chassis and node readiness; exit 1 when unhealthy", Action: func(c *cli.Context) error {
				l, err := lab.Load(c.String("state-dir"))
				if err != nil {
					return err
				}
				return l.WriteStatus(c.Context, os.Stdout)
			}},
			envCommand(),
			kubectlCommand(),
			execCommand(),
			probeCommand(),
			componentCommand("stop"),
			componentCommand("start"),
			componentCommand("restart"),
			verifyCommand(),
			conformanceCommand(),
			{Name: "deps", Usage: "install the Debian packages the lab and tests need (idempotent)", Action: func(c *cli.Context) error {
				return lab.InstallPackages(lab.Packages(), os.Stdout)
			}},
			imageCommand(),
			{Name: "build-k8s", Usage: "build and cache the Kubernetes binaries; prints their directory", Action: func(c *cli.Context) error {
				v, err := k8sbuild.VersionFromClientGo()
				if err != nil {
					return err
				}
				dir, err := k8sbuild.Ensure(c.String("cache-dir"), v, os.Stderr)
				if err == nil {
					fmt.Println(dir)
				}
				return err
			}},
			{
				Name: "portal", Hidden: true, Usage: "forward a loopback port to an address inside a network namespace",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "listen", Required: true, Usage: "HOST:PORT or unix:PATH"},
					&cli.StringFlag{Name: "netns", Required: true},
					&cli.StringFlag{Name: "target", Required: true},
				},
				Action: func(c *cli.Context) error {
					return lab.RunPortal(c.Context, c.String("listen"), c.String("netns"), c.String("target"))
				},
			},
		},
	}
}

func upCommand() *cli.Command {
	return &cli.Command{
		Name:  "up",
		Usage: "bring the lab up (or start what is not running in an existing one)",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "nodes", Value: 3, Usage: "worker hosts"},
			&cli.StringFlag{Name: "mode", Value: "overlay", Usage: "overlay or underlay (pods on " + lab.UnderlayPodCIDR + ", gateway " + lab.UnderlayPodGateway + " on the lab router)"},
			&cli.IntFlag{Name: "underlay-vlan", Usage: "underlay mode: tag the pod network with this VLAN (1-4094; default untagged)"},
			&cli.IntFlag{Name: "external-hosts", Usage: "bare-metal hosts bm1..bmN (172.18.0.51…): OVS, ovn-controller and kovn-node --external-host, no kubelet"},
			&cli.StringFlag{Name: "portal", Value: "127.0.0.1:16443", Usage: "loopback address that forwards to the API server"},
			&cli.StringFlag{Name: "bin-dir", Usage: "kovn binaries (default: the directory of kovn-lab)"},
			&cli.BoolFlag{Name: "skip-deps", Usage: "do not check or install Debian packages"},
			&cli.IntFlag{Name: "host-subnet-length", Usage: "node subnet prefix length for kovn-controller (default: its own, /24)"},
			&cli.StringFlag{Name: "manifests", Usage: "kovn's dist/manifests (default: found from the binary's location in a checkout)"},
			&cli.BoolFlag{Name: "ovn-ha", Usage: "run OVN NB and SB as 3-member RAFT clusters (members nb, nb2, nb3 and sb, sb2, sb3)"},
			&cli.BoolFlag{Name: "ovn-plain-tcp", Usage: "connect hosts and the controller to OVN central over plain TCP instead of SSL"},
			&cli.StringFlag{Name: "deploy", Value: lab.DeployProcesses, Usage: "how kovn and OVN run: processes (supervised, on the hosts) or manifests (the kovn image built from dist/images, OVN central, kovn-controller and kovn-node as pods from dist/; overlay mode with --ovn-plain-tcp only)"},
			&cli.BoolFlag{Name: "dns", Usage: "deploy CoreDNS (built from the module proxy) as the cluster DNS add-on on " + lab.ClusterDNSIP + "; it answers only for the cluster's zones"},
			&cli.BoolFlag{Name: "e2e-images", Usage: "build Kubernetes' e2e.test and import the upstream images its sig-network specs run (for kovn-lab conformance)"},
			&cli.StringFlag{Name: "crds", Usage: "kovn's CRDs, applied before the controllers start (default: crds next to the manifests directory, if there)"},
		},
		Action: func(c *cli.Context) error {
			version, err := k8sbuild.VersionFromClientGo()
			if err != nil {
				return err
			}
			binDir := c.String("bin-dir")
			if binDir == "" {
				self, err := os.Executable()
				if err != nil {
					return err
				}
				binDir = filepath.Dir(self)
			}
			manifests := c.String("manifests")
			if manifests == "" {
				manifests = filepath.Join(binDir, "..", "..", "dist", "manifests")
			}
			if _, err := os.Stat(manifests); err != nil {
				return fmt.Errorf("kovn manifests not found at %s (--manifests)", manifests)
			}
			manifests, _ = filepath.Abs(manifests)
			crds, err := crdDir(c.String("crds"), manifests)
			if err != nil {
				return err
			}
			_, err = lab.Up(c.Context, lab.Config{
				StateDir: c.String("state-dir"), CacheDir: c.String("cache-dir"), BinDir: binDir, ManifestDir: manifests, CRDDir: crds,
				HostSubnetLength: c.Int("host-subnet-length"), Nodes: c.Int("nodes"), ExternalHosts: c.Int("external-hosts"),
				Mode: c.String("mode"), UnderlayVLAN: c.Int("underlay-vlan"), K8sVersion: version, PortalAddr: c.String("portal"),
				OVNHA: c.Bool("ovn-ha"), OVNPlainTCP: c.Bool("ovn-plain-tcp"), Deploy: c.String("deploy"),
				ClusterDNS: c.Bool("dns"), E2EImages: c.Bool("e2e-images"),
			}, lab.UpOptions{SkipDeps: c.Bool("skip-deps"), Out: os.Stdout})
			return err
		},
	}
}

// crdDir is --crds, or dist/crds beside dist/manifests when that exists: a
// checkout from before kovn had CRDs simply applies none.
func crdDir(flag, manifests string) (string, error) {
	dir := flag
	if dir == "" {
		dir = filepath.Join(filepath.Dir(manifests), "crds")
		if _, err := os.Stat(dir); err != nil {
			return "", nil
		}
	} else if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("kovn CRDs not found at %s (--crds)", dir)
	}
	return filepath.Abs(dir)
}
