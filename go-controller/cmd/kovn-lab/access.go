package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/urfave/cli/v2"

	"github.com/kovn-io/kovn/go-controller/pkg/lab"
	"github.com/kovn-io/kovn/go-controller/pkg/lab/probe"
)

func load(c *cli.Context) (*lab.Lab, error) { return lab.Load(c.String("state-dir")) }

func envCommand() *cli.Command {
	return &cli.Command{Name: "env", Usage: "print KEY=value lines describing the lab (eval-able)", Action: func(c *cli.Context) error {
		l, err := load(c)
		if err != nil {
			return err
		}
		for _, kv := range l.Env() {
			fmt.Println(kv)
		}
		return nil
	}}
}

func kubectlCommand() *cli.Command {
	return &cli.Command{Name: "kubectl", Usage: "run kubectl against the lab", ArgsUsage: "ARGS...", SkipFlagParsing: true, Action: func(c *cli.Context) error {
		l, err := load(c)
		if err != nil {
			return err
		}
		bin := l.KubectlPath()
		env := append(os.Environ(), "KUBECONFIG="+l.KubeconfigPath())
		return syscall.Exec(bin, append([]string{"kubectl"}, c.Args().Slice()...), env)
	}}
}

func execCommand() *cli.Command {
	return &cli.Command{
		Name: "exec", Usage: "run a host command inside NS/POD's network namespace, in host:NODE, host:BM (bare-metal host), host:cp or external",
		ArgsUsage: "TARGET -- CMD...", SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			args := c.Args().Slice()
			if len(args) < 2 {
				return fmt.Errorf("usage: kovn-lab exec TARGET -- CMD...")
			}
			target, cmdArgs := args[0], args[1:]
			if cmdArgs[0] == "--" {
				cmdArgs = cmdArgs[1:]
			}
			if len(cmdArgs) == 0 {
				return fmt.Errorf("no command given")
			}
			l, err := load(c)
			if err != nil {
				return err
			}
			t, err := l.ResolveTarget(c.Context, target)
			if err != nil {
				return err
			}
			argv := append(append([]string(nil), t.Enter...), cmdArgs...)
			path, err := exec.LookPath(argv[0])
			if err != nil {
				return err
			}
			return syscall.Exec(path, argv, os.Environ())
		},
	}
}

func probeCommand() *cli.Command {
	return &cli.Command{
		Name: "probe", Usage: "connect to a test server from a lab place; exit 0 only if it answered (or, with --batch, probe many targets)",
		Description: "With --batch, targets are read from stdin as JSON lines {\"proto\":\"tcp\",\"addr\":\"IP:PORT\"},\n" +
			"probed concurrently from --from with --timeout each (default 1.5s in batch mode), and one JSON\n" +
			"line per target is printed in input order: {\"proto\",\"addr\",\"answered\",\"reply\",\"error\",\"kind\",\"ms\"}.\n" +
			"The exit status is 0 once every target was probed, answered or not.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "from", Required: true, Usage: "NS/POD, host:NODE, host:BM, host:cp or external"},
			&cli.StringFlag{Name: "to", Usage: "ADDR:PORT (required without --batch)"},
			&cli.StringFlag{Name: "proto", Value: "tcp", Usage: "tcp or udp"},
			&cli.DurationFlag{Name: "timeout", Value: 2 * time.Second, Usage: "per probe (batch mode default: 1.5s)"},
			&cli.BoolFlag{Name: "batch", Usage: "read targets as JSON lines on stdin, print one JSON result line each"},
			&cli.IntFlag{Name: "parallel", Value: 64, Usage: "batch mode: probes in flight at once"},
		},
		Action: func(c *cli.Context) error {
			if c.Bool("batch") {
				if c.IsSet("to") || c.IsSet("proto") {
					return fmt.Errorf("--batch reads targets from stdin; --to and --proto do not apply")
				}
				return probeBatch(c)
			}
			if c.String("to") == "" {
				return fmt.Errorf("required flag \"to\" not set (or use --batch)")
			}
			l, err := load(c)
			if err != nil {
				return err
			}
			t, err := l.ResolveTarget(c.Context, c.String("from"))
			if err != nil {
				return err
			}
			var raw string
			err = ns.WithNetNSPath(t.NetNS, func(ns.NetNS) error {
				var perr error
				_, raw, perr = probe.Probe(context.Background(), c.String("proto"), c.String("to"), c.Duration("timeout"))
				return perr
			})
			if err != nil {
				return fmt.Errorf("probe %s %s from %s: %w", c.String("proto"), c.String("to"), t.Desc, err)
			}
			fmt.Println(strings.TrimSpace(raw))
			return nil
		},
	}
}

// probeBatch is `kovn-lab probe --batch`: every worker enters the source's
// network namespace on its own locked thread and probes from there.
func probeBatch(c *cli.Context) error {
	timeout := c.Duration("timeout")
	if !c.IsSet("timeout") {
		timeout = 1500 * time.Millisecond
	}
	if timeout <= 0 {
		return fmt.Errorf("--timeout must be positive")
	}
	targets, err := probe.ReadTargets(os.Stdin)
	if err != nil {
		return fmt.Errorf("targets on stdin: %w", err)
	}
	l, err := load(c)
	if err != nil {
		return err
	}
	t, err := l.ResolveTarget(c.Context, c.String("from"))
	if err != nil {
		return err
	}
	within := func(f func()) error {
		return ns.WithNetNSPath(t.NetNS, func(ns.NetNS) error { f(); return nil })
	}
	results := probe.ProbeAll(c.Context, targets, timeout, c.Int("parallel"), within)
	return probe.WriteResults(os.Stdout, results)
}

func componentCommand(verb string) *cli.Command {
	return &cli.Command{
		Name: verb, ArgsUsage: "COMPONENT...",
		Usage: verb + " lab components: controller, controller:N, node:NODE (also node:bmN), kubelet:NODE, ovn-controller:NODE, ovs:NODE, containerd:NODE, nb, sb (nb2, nb3, sb2, sb3, nb-leader, sb-leader with --ovn-ha), northd, apiserver, etcd, …",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "signal", Value: "TERM", Usage: "TERM or KILL (stop and restart)"},
			&cli.DurationFlag{Name: "grace", Value: 10 * time.Second, Usage: "how long to wait before SIGKILL"},
		},
		Action: func(c *cli.Context) error {
			l, err := load(c)
			if err != nil {
				return err
			}
			sig := syscall.SIGTERM
			switch strings.ToUpper(c.String("signal")) {
			case "TERM", "SIGTERM":
			case "KILL", "SIGKILL", "9":
				sig = syscall.SIGKILL
			default:
				return fmt.Errorf("--signal must be TERM or KILL")
			}
			if c.NArg() == 0 {
				return fmt.Errorf("name a component; known: %s", strings.Join(l.Supervisor().Names(), ", "))
			}
			sup := l.Supervisor()
			for _, arg := range c.Args().Slice() {
				if strings.HasPrefix(arg, "-") {
					return fmt.Errorf("flags go before the components: kovn-lab %s %s COMPONENT…", verb, arg)
				}
			}
			for _, arg := range c.Args().Slice() {
				names, err := l.ExpandComponent(arg)
				if err != nil {
					return err
				}
				for _, n := range names {
					if verb != "start" {
						if err := sup.Stop(n, sig, c.Duration("grace")); err != nil {
							return err
						}
					}
					if verb != "stop" {
						if err := sup.Start(n); err != nil {
							return err
						}
					}
					fmt.Printf("%s: %s\n", n, verb)
				}
			}
			return nil
		},
	}
}

// verifyCommand runs kovn-controller --verify with the lab's controller
// flags, in the control-plane host: what kovn would still write now.
func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:  "verify",
		Usage: "run kovn-controller --verify as the lab's controllers are configured; exit 0 only when NB and the API need no write",
		Action: func(c *cli.Context) error {
			l, err := load(c)
			if err != nil {
				return err
			}
			var argv []string
			if l.FromManifests() {
				// As an operator would: in a controller pod, with its
				// configuration and credentials.
				argv = []string{l.KubectlPath(), "--kubeconfig=" + l.KubeconfigPath(), "-n", "kovn-system",
					"exec", "deploy/kovn-controller", "-c", "kovn-controller", "--",
					"kovn-controller", "--config=/etc/kovn/controller.yaml"}
			} else {
				spec, err := l.Supervisor().Spec("kovn-controller:0")
				if err != nil {
					return fmt.Errorf("the lab runs no kovn-controller: %w", err)
				}
				argv = []string{"nsenter", "--net=" + spec.NetNS}
				for _, a := range spec.Argv {
					// Verify takes no lease and serves no metrics.
					if !strings.HasPrefix(a, "--identity=") && !strings.HasPrefix(a, "--metrics-address=") {
						argv = append(argv, a)
					}
				}
			}
			cmd := exec.CommandContext(c.Context, argv[0], append(argv[1:], "--verify")...)
			cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
			if err := cmd.Run(); err != nil {
				return cli.Exit("", 1)
			}
			return nil
		},
	}
}
