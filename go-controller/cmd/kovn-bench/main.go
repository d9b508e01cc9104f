// kovn-bench runs kovn's benchmark scenarios against a running lab and
// writes their figures as JSON and as a table. See docs/benchmarks.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"k8s.io/client-go/kubernetes"

	"github.com/kovn-io/kovn/go-controller/pkg/bench"
	"github.com/kovn-io/kovn/go-controller/pkg/lab"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app().RunContext(ctx, os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "kovn-bench:", err)
		os.Exit(1)
	}
}

func app() *cli.App {
	return &cli.App{
		Name:  "kovn-bench",
		Usage: "benchmark kovn in the lab (see docs/benchmarks.md)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "state-dir", Value: "/var/lib/kovn-lab", EnvVars: []string{"KOVN_LAB_STATE"}, Usage: "the lab to run against"},
			&cli.DurationFlag{Name: "timeout", Value: 5 * time.Minute, Usage: "longest wait for any one step"},
		},
		Commands: []*cli.Command{podsCommand(), baselineCommand(), servicesCommand(), policiesCommand(), restartCommand(), enforceCommand(), podReadyCommand(), cleanupCommand(), mergeCommand(), plotCommand()},
	}
}

func outFlag(def string) cli.Flag {
	return &cli.StringFlag{Name: "out", Value: def, Usage: "JSON report file"}
}

// connect loads the lab and an unthrottled API client.
func connect(c *cli.Context) (*lab.Lab, *kubernetes.Clientset, error) {
	l, err := lab.Load(c.String("state-dir"))
	if err != nil {
		return nil, nil, err
	}
	cs, err := bench.Client(l)
	return l, cs, err
}

// finish prints and writes the report; the run's error wins over the
// write's, but both are reported.
func finish(c *cli.Context, r *bench.Report, runErr error) error {
	if runErr != nil {
		r.Error = runErr.Error()
	}
	r.PrintTable(os.Stdout)
	if out := c.String("out"); out != "" {
		if err := bench.WriteJSON(out, r); err != nil {
			return fmt.Errorf("%v; writing %s: %w", runErr, out, err)
		}
		fmt.Println("report:", out)
	}
	return runErr
}

func workloadFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "workload", Usage: "a preset: w1 (3 nodes, 1000 pods, 32 writers, as BENCH-WORKLOADS)"},
		&cli.IntFlag{Name: "nodes", Value: 50, Usage: "simulated nodes sim-0…"},
		&cli.IntFlag{Name: "pods", Value: 1000, Usage: "pods, spread over ns0…ns9"},
		&cli.IntFlag{Name: "writers", Value: 32, Usage: "parallel API writers"},
		&cli.BoolFlag{Name: "keep", Usage: "leave the objects (for restart); kovn-bench cleanup removes them"},
	}
}

func podsCommand() *cli.Command {
	return &cli.Command{
		Name:  "pods",
		Usage: "pod programming: simulated nodes, pods created as fast as the API takes them, until every port is in NB",
		Flags: append(workloadFlags(), outFlag("_output/bench/pods.json"), perfFlag()),
		Action: func(c *cli.Context) error {
			return burst(c, "pods", func(r *bench.Report, l *lab.Lab, cs *kubernetes.Clientset, o bench.PodsOptions) (bool, error) {
				res, err := bench.RunPods(c.Context, l, cs, o)
				r.Pods = res
				return res != nil, err
			})
		},
	}
}

func baselineCommand() *cli.Command {
	return &cli.Command{
		Name:  "baseline",
		Usage: "the pods burst with hostNetwork pods, which kovn leaves alone: the API server's share of a pods run",
		Flags: append(workloadFlags(), outFlag("_output/bench/baseline.json"), perfFlag()),
		Action: func(c *cli.Context) error {
			return burst(c, "baseline", func(r *bench.Report, l *lab.Lab, cs *kubernetes.Clientset, o bench.PodsOptions) (bool, error) {
				res, err := bench.RunBaseline(c.Context, l, cs, o)
				r.Baseline = res
				return res != nil, err
			})
		},
	}
}

// burst runs a scenario that creates a workload, then cleans up after it.
// run reports whether it created anything.
func burst(c *cli.Context, scenario string, run func(*bench.Report, *lab.Lab, *kubernetes.Clientset, bench.PodsOptions) (bool, error)) error {
	wl, err := workload(c)
	if err != nil {
		return err
	}
	perf, err := perfOptions(c, scenario)
	if err != nil {
		return err
	}
	l, cs, err := connect(c)
	if err != nil {
		return err
	}
	r := &bench.Report{Scenario: scenario, Env: bench.Describe(c.Context, l, cs)}
	made, runErr := run(r, l, cs, bench.PodsOptions{Workload: wl, Timeout: c.Duration("timeout"), Perf: perf})
	// After a failure or an interrupt too (then even with --keep: nothing
	// converged to keep): the lab is shared.
	if made && (!c.Bool("keep") || runErr != nil) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Context), c.Duration("timeout"))
		defer cancel()
		cl, err := bench.Cleanup(ctx, l, cs, c.Duration("timeout"))
		r.Cleanup = cl
		if err != nil && runErr == nil {
			runErr = fmt.Errorf("cleanup: %w", err)
		}
	}
	return finish(c, r, runErr)
}

func workload(c *cli.Context) (bench.Workload, error) {
	switch c.String("workload") {
	case "":
		return bench.Workload{Name: "custom", Nodes: c.Int("nodes"), Pods: c.Int("pods"), Writers: c.Int("writers")}, nil
	case "w1":
		for _, f := range []string{"nodes", "pods", "writers"} {
			if c.IsSet(f) {
				return bench.Workload{}, fmt.Errorf("--workload w1 fixes --%s; drop one of them", f)
			}
		}
		return bench.W1(), nil
	}
	return bench.Workload{}, fmt.Errorf("unknown --workload %q (known: w1)", c.String("workload"))
}

func servicesCommand() *cli.Command {
	w2 := bench.W2()
	return &cli.Command{
		Name:  "services",
		Usage: "W2 on a kept pods run: ClusterIP services with hand-made EndpointSlices, until every load balancer carries its backends; then endpoint updates one at a time",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "services", Value: w2.Services, Usage: "services, spread over ns0…ns9 (W2: 200)"},
			&cli.IntFlag{Name: "endpoints", Value: w2.Endpoints, Usage: "ready endpoints per service (W2: 5)"},
			&cli.IntFlag{Name: "writers", Value: w2.Writers, Usage: "parallel API writers"},
			&cli.IntFlag{Name: "updates", Value: w2.Updates, Usage: "EndpointSlice updates timed one at a time after convergence (0: none)"},
			&cli.BoolFlag{Name: "selector", Usage: "give the services W2's selector app=s<m> (kube-controller-manager then adds slices of its own)"},
			outFlag("_output/bench/services.json"), perfFlag(),
		},
		Action: func(c *cli.Context) error {
			shape := bench.ServiceShape{Name: "w2", Services: c.Int("services"), Endpoints: c.Int("endpoints"),
				Writers: c.Int("writers"), Updates: c.Int("updates"), Selector: c.Bool("selector")}
			if shape.Services != w2.Services || shape.Endpoints != w2.Endpoints {
				shape.Name = "custom"
			}
			perf, err := perfOptions(c, "services")
			if err != nil {
				return err
			}
			return single(c, "services", func(r *bench.Report, l *lab.Lab, cs *kubernetes.Clientset) error {
				res, err := bench.RunServices(c.Context, l, cs, bench.ServicesOptions{Shape: shape, Timeout: c.Duration("timeout"), Perf: perf})
				r.Services = res
				return err
			})
		},
	}
}

func policiesCommand() *cli.Command {
	return &cli.Command{
		Name:  "policies",
		Usage: "W3 on a kept pods run and W2: 200 NetworkPolicies of four shapes, until every port group, ACL and selector set is in NB",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "writers", Value: 32, Usage: "parallel API writers"},
			outFlag("_output/bench/policies.json"), perfFlag(),
		},
		Action: func(c *cli.Context) error {
			perf, err := perfOptions(c, "policies")
			if err != nil {
				return err
			}
			return single(c, "policies", func(r *bench.Report, l *lab.Lab, cs *kubernetes.Clientset) error {
				res, err := bench.RunPolicies(c.Context, l, cs, bench.PoliciesOptions{Writers: c.Int("writers"), Timeout: c.Duration("timeout"), Perf: perf})
				r.Policies = res
				return err
			})
		},
	}
}

// single runs a scenario that works on what is there (the layers on a
// kept pods run, restart, cleanup) or brings and removes its own
// (enforce), and reports it.
func single(c *cli.Context, scenario string, run func(*bench.Report, *lab.Lab, *kubernetes.Clientset) error) error {
	l, cs, err := connect(c)
	if err != nil {
		return err
	}
	r := &bench.Report{Scenario: scenario, Env: bench.Describe(c.Context, l, cs)}
	return finish(c, r, run(r, l, cs))
}

func restartCommand() *cli.Command {
	return &cli.Command{
		Name:  "restart",
		Usage: "on a converged state (pods --keep, services, policies), stop the leader and time its replacement",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "signal", Value: "KILL", Usage: "KILL (crash: the Lease must expire) or TERM (the Lease is released)"},
			outFlag("_output/bench/restart.json"),
		},
		Action: func(c *cli.Context) error {
			sig := map[string]syscall.Signal{"KILL": syscall.SIGKILL, "TERM": syscall.SIGTERM}[strings.TrimPrefix(strings.ToUpper(c.String("signal")), "SIG")]
			if sig == 0 {
				return fmt.Errorf("--signal must be KILL or TERM, got %q", c.String("signal"))
			}
			return single(c, "restart", func(r *bench.Report, l *lab.Lab, cs *kubernetes.Clientset) error {
				res, err := bench.RunRestart(c.Context, l, cs, bench.RestartOptions{Signal: sig, Timeout: c.Duration("timeout")})
				r.Restart = res
				return err
			})
		},
	}
}

func enforceCommand() *cli.Command {
	d := bench.DefaultEnforce()
	return &cli.Command{
		Name:  "enforce",
		Usage: "policy enforcement with real pods: deny NetworkPolicy created → first refused probe, deleted → first answered probe",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "rounds", Value: d.Rounds, Usage: "policy create/delete rounds"},
			&cli.DurationFlag{Name: "interval", Value: d.Interval, Usage: "each client starts a TCP probe this often"},
			&cli.DurationFlag{Name: "probe-timeout", Value: d.ProbeTimeout, Usage: "a probe not answered within this counts as refused"},
			&cli.DurationFlag{Name: "settle", Value: d.Settle, Usage: "how long the new state must hold before it counts"},
			&cli.StringFlag{Name: "server-node", Value: d.ServerNode, Usage: "lab node of the server pod"},
			&cli.StringFlag{Name: "same-node", Value: d.SameNodeClient, Usage: "lab node of client-same (the server's; defaults to --server-node)"},
			&cli.StringFlag{Name: "other-node", Value: d.OtherNodeClient, Usage: "lab node of client-other (not the server's)"},
			outFlag("_output/bench/enforce.json"),
		},
		Action: func(c *cli.Context) error {
			o := bench.EnforceOptions{Rounds: c.Int("rounds"), Interval: c.Duration("interval"), ProbeTimeout: c.Duration("probe-timeout"),
				Settle: c.Duration("settle"), Timeout: c.Duration("timeout"),
				ServerNode: c.String("server-node"), SameNodeClient: c.String("same-node"), OtherNodeClient: c.String("other-node")}
			if !c.IsSet("same-node") {
				o.SameNodeClient = o.ServerNode
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return single(c, "enforce", func(r *bench.Report, l *lab.Lab, cs *kubernetes.Clientset) error {
				res, err := bench.RunEnforce(c.Context, l, cs, o)
				r.Enforce = res
				return err
			})
		},
	}
}

func cleanupCommand() *cli.Command {
	return &cli.Command{
		Name:  "cleanup",
		Usage: "delete every namespace and node a run made (label kovn.io/bench) and wait until NB forgot them",
		Flags: []cli.Flag{outFlag("")},
		Action: func(c *cli.Context) error {
			return single(c, "cleanup", func(r *bench.Report, l *lab.Lab, cs *kubernetes.Clientset) error {
				res, err := bench.Cleanup(c.Context, l, cs, c.Duration("timeout"))
				r.Cleanup = res
				return err
			})
		},
	}
}

func mergeCommand() *cli.Command {
	return &cli.Command{
		Name:      "merge",
		Usage:     "combine reports into one results file",
		ArgsUsage: "REPORT.json…",
		Flags:     []cli.Flag{outFlag("_output/bench/results.json")},
		Action: func(c *cli.Context) error {
			res, err := bench.Merge(c.Args().Slice())
			if err != nil {
				return err
			}
			return bench.WriteJSON(c.String("out"), res)
		},
	}
}
