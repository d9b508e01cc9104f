// kovn-node is kovn's node agent: it prepares the host's OVS for OVN,
// holds the shared gateway and the management port, and serves CNI. With
// --external-host it runs on a host that is not a Kubernetes node: an OVN
// chassis for ExternalPorts, optionally with the host's own address on
// kovn's network (--host-port).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"

	"github.com/kovn-io/kovn/go-controller/pkg/config"
	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/metrics"
	"github.com/kovn-io/kovn/go-controller/pkg/node/agent"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newApp().RunContext(ctx, os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "kovn-node:", err)
		os.Exit(1)
	}
}

// newApp builds the CLI without running it, so docs/flags.md can be
// rendered from it.
func newApp() *cli.App {
	flags := config.NodeFlags()
	return &cli.App{
		Name:   "kovn-node",
		Usage:  "kovn's node agent and CNI server",
		Flags:  flags,
		Before: altsrc.InitInputSourceWithContext(flags, altsrc.NewYamlSourceFromFlagFunc("config")),
		Action: func(c *cli.Context) error {
			cfg, err := config.NodeFromCLI(c)
			if err != nil {
				return err
			}
			if err := config.SetLogVerbosity(cfg.LogVerbosity); err != nil {
				return err
			}
			kc, _, err := kube.NewClientset(kube.ClientConfig{Kubeconfig: cfg.Kubeconfig, QPS: cfg.KubeQPS, Burst: cfg.KubeBurst, UserAgent: "kovn-node"})
			if err != nil {
				return err
			}
			reg := metrics.NewRegistry()
			m := agent.NewMetrics(reg)
			go metrics.Serve(c.Context, cfg.MetricsAddr, reg, m.Ready)
			if cfg.ExternalHost {
				// ExternalPorts are custom resources: read as JSON.
				dc, err := kube.NewDynamic(kube.ClientConfig{Kubeconfig: cfg.Kubeconfig, QPS: cfg.KubeQPS, Burst: cfg.KubeBurst, UserAgent: "kovn-node"})
				if err != nil {
					return err
				}
				return agent.RunExternalHost(c.Context, cfg, dc, m)
			}
			return agent.Run(c.Context, cfg, kc, m)
		},
	}
}
