// kovn-controller turns Kubernetes nodes, namespaces and pods into OVN
// northbound rows. Two replicas run; the one holding the Lease writes.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"

	"github.com/kovn-io/kovn/go-controller/pkg/config"
	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/metrics"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newApp().RunContext(ctx, os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "kovn-controller:", err)
		os.Exit(1)
	}
}

// newApp builds the CLI without running it, so docs/flags.md can be
// rendered from it.
func newApp() *cli.App {
	flags := config.ControllerFlags()
	return &cli.App{
		Name:   "kovn-controller",
		Usage:  "map Kubernetes objects into OVN northbound",
		Flags:  flags,
		Before: altsrc.InitInputSourceWithContext(flags, altsrc.NewYamlSourceFromFlagFunc("config")),
		Action: func(c *cli.Context) error {
			cfg, err := config.ControllerFromCLI(c)
			if err != nil {
				return err
			}
			if err := config.SetLogVerbosity(cfg.LogVerbosity); err != nil {
				return err
			}
			return run(c.Context, cfg)
		},
	}
}

func run(ctx context.Context, cfg *config.Controller) error {
	if cfg.Verify {
		return verify(ctx, cfg, os.Stdout, 2*time.Minute)
	}
	reg := metrics.NewRegistry()
	kc, _, err := kube.NewClientset(kube.ClientConfig{Kubeconfig: cfg.Kubeconfig, QPS: cfg.KubeQPS, Burst: cfg.KubeBurst, UserAgent: "kovn-controller"})
	if err != nil {
		return err
	}
	dc, err := kube.NewDynamic(kube.ClientConfig{Kubeconfig: cfg.Kubeconfig, QPS: cfg.KubeQPS, Burst: cfg.KubeBurst, UserAgent: "kovn-controller"})
	if err != nil {
		return err
	}
	var ready atomic.Bool
	go metrics.Serve(ctx, cfg.MetricsAddr, reg, ready.Load)

	lead := func(ctx context.Context) {
		if err := runControllers(ctx, cfg, kc, dc, reg, &ready); err != nil && ctx.Err() == nil {
			klog.ErrorS(err, "controllers stopped")
			os.Exit(1)
		}
	}
	if !cfg.LeaderElect {
		lead(ctx)
		return nil
	}
	id := cfg.Identity
	if id == "" {
		host, _ := os.Hostname()
		id = fmt.Sprintf("%s_%d", host, os.Getpid())
	}
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, cfg.LeaseNS, cfg.LeaseName,
		kc.CoreV1(), kc.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: id})
	if err != nil {
		return err
	}
	klog.InfoS("waiting for leadership", "lease", cfg.LeaseNS+"/"+cfg.LeaseName, "identity", id)
	leaderelection.RunOrDie(ctx, leaderelection.LeaderElectionConfig{
		Lock: lock, ReleaseOnCancel: true, Name: "kovn-controller",
		LeaseDuration: cfg.LeaseDuration, RenewDeadline: cfg.RenewDeadline, RetryPeriod: cfg.RetryPeriod,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: lead,
			OnStoppedLeading: func() {
				// A leader that lost its lease must not write another
				// moment: exit, and come back as a follower.
				if ctx.Err() == nil {
					klog.InfoS("lost leadership, exiting")
					os.Exit(0)
				}
			},
			OnNewLeader: func(identity string) { klog.InfoS("leader", "identity", identity) },
		},
	})
	return nil
}
