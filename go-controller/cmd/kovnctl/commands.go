package main

import (
	"context"
	"fmt"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/urfave/cli/v2"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/nbview"
	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/sbview"
	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/show"
	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/status"
	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/trace"
)

func showCommand() *cli.Command {
	return &cli.Command{
		Name:      "show",
		Usage:     "show what a pod, service, policy, node or external port became in OVN, as a tree",
		ArgsUsage: "[-n NAMESPACE] pod|service|policy|node|externalport NAME   (NAME may be NAMESPACE/NAME)",
		Flags:     []cli.Flag{&cli.StringFlag{Name: "namespace", Aliases: []string{"n"}, Value: "default", Usage: "namespace of a pod, service, policy or external port NAME given without NAMESPACE/"}},
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return cli.Exit("usage: kovnctl show pod|service|policy|node|externalport NAME", 2)
			}
			e, err := newEnv(c)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(c.Context, e.timeout)
			defer cancel()
			s := &show.Shower{}
			if s.Kube, err = e.kube(); err != nil {
				return err
			}
			if s.Dyn, err = e.dynamic(); err != nil {
				return err
			}
			nb, err := e.connectNB(ctx, nbview.Tables()...)
			if err != nil {
				return err
			}
			defer nb.Close()
			s.NB = nbview.FromClient(nb)
			// SB only adds bindings and chassis: show what NB has
			// without it rather than nothing.
			if c.String("sb") != "" {
				sb, err := e.connectSB(ctx, sbview.Tables()...)
				if err != nil {
					return err
				}
				defer sb.Close()
				s.SB = sbview.FromClient(sb)
			}
			n, err := s.Show(ctx, c.Args().Get(0), c.Args().Get(1), c.String("namespace"))
			if err != nil {
				return cli.Exit(err.Error(), 2)
			}
			if e.json {
				return e.printJSON(n)
			}
			return n.WriteText(e.out)
		},
	}
}

func traceCommand() *cli.Command {
	return &cli.Command{
		Name:  "trace",
		Usage: "trace a packet from a pod with ovn-trace and say who allows or drops it",
		Description: "Runs ovn-trace against SB (it needs no chassis), starting at the source pod's port with\n" +
			"its MAC and IP; the destination MAC is the destination pod's on the same switch, else the\n" +
			"switch's router port. Without --port the packet is an ICMP echo request.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "from", Required: true, Usage: "NS/POD"},
			&cli.StringFlag{Name: "to", Required: true, Usage: "NS/POD or an IPv4 address"},
			&cli.IntFlag{Name: "port", Usage: "destination port (tcp or udp)"},
			&cli.StringFlag{Name: "proto", Usage: "tcp, udp or icmp (default: tcp with --port, else icmp)"},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "also print the ovn-trace command and its output"},
			&cli.StringFlag{Name: "ovn-trace", Value: "ovn-trace", Usage: "ovn-trace binary"},
		},
		Action: runTrace,
	}
}

func runTrace(c *cli.Context) error {
	e, err := newEnv(c)
	if err != nil {
		return err
	}
	if c.String("sb") == "" {
		return cli.Exit("trace needs the SB database: pass --sb or set KOVN_SB (or OVN_SB_DB)", 2)
	}
	ctx, cancel := context.WithTimeout(c.Context, e.timeout)
	defer cancel()
	nb, err := e.connectNB(ctx, nbview.Tables()...)
	if err != nil {
		return err
	}
	defer nb.Close()
	sb, err := e.connectSB(ctx)
	if err != nil {
		return err
	}
	defer sb.Close()
	t := &trace.Tracer{View: nbview.FromClient(nb), SB: c.String("sb"), SSLArgs: e.tlsFiles().CtlArgs(), Run: trace.ExecRunner(c.String("ovn-trace")), Hints: trace.SBHints(sb)}
	if kc, err := e.kube(); err == nil && kc != nil {
		t.PolicyTypes = policyTypes(ctx, kc)
	}
	res, err := t.Trace(ctx, trace.Request{From: c.String("from"), To: c.String("to"), Proto: c.String("proto"), Port: c.Int("port")})
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	if e.json {
		if !c.Bool("verbose") {
			res.Parsed = nil
		}
		return e.printJSON(res)
	}
	return res.WriteText(e.out, c.Bool("verbose"))
}

// policyTypes reads a policy's types from the API (which defaults them on
// create), for naming exactly the policies that isolate a pod.
func policyTypes(ctx context.Context, kc kubernetes.Interface) trace.PolicyTypes {
	return func(ns, name string) (bool, bool, bool) {
		np, err := kc.NetworkingV1().NetworkPolicies(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, false, false
		}
		var in, eg bool
		for _, t := range np.Spec.PolicyTypes {
			in = in || t == networkingv1.PolicyTypeIngress
			eg = eg || t == networkingv1.PolicyTypeEgress
		}
		return in, eg, len(np.Spec.PolicyTypes) > 0
	}
}

func statusCommand() *cli.Command {
	def := status.DefaultConfig()
	return &cli.Command{
		Name:  "status",
		Usage: "check leader, databases, nodes, pod ports and stale rows; exit 1 when a problem is found",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "lease-namespace", Value: def.LeaseNamespace, Usage: "kovn-controller's --lease-namespace"},
			&cli.StringFlag{Name: "lease-name", Value: def.LeaseName, Usage: "kovn-controller's --lease-name"},
			&cli.DurationFlag{Name: "grace", Value: def.Grace, Usage: "how long a new pod's port and a chassis' nb_cfg may lag before it is a problem"},
		},
		Action: func(c *cli.Context) error {
			e, err := newEnv(c)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(c.Context, 3*e.timeout)
			defer cancel()
			cfg := status.DefaultConfig()
			cfg.LeaseNamespace, cfg.LeaseName, cfg.Grace = c.String("lease-namespace"), c.String("lease-name"), c.Duration("grace")
			in := status.Inputs{NBAddr: c.String("nb"), SBAddr: c.String("sb")}
			kc, kerr := e.kube()
			if kerr == nil && kc != nil {
				in.Kube = kc // an interface holding a nil *Clientset would not be nil
			}
			var nb, sb client.Client
			if in.NBAddr != "" {
				if nb, in.NBErr = e.connectNB(ctx, nbview.Tables()...); in.NBErr == nil {
					defer nb.Close()
					in.NB = nbview.FromClient(nb)
				}
			}
			if in.SBAddr != "" {
				if sb, in.SBErr = e.connectSB(ctx, sbview.Tables()...); in.SBErr == nil {
					defer sb.Close()
					in.SB = sbview.FromClient(sb)
				}
			}
			r := status.Run(ctx, cfg, in)
			if kerr != nil {
				r.Notes = append(r.Notes, fmt.Sprintf("kubeconfig: %v", kerr))
			}
			if e.json {
				err = e.printJSON(r)
			} else {
				err = r.WriteText(e.out)
			}
			if err != nil {
				return err
			}
			if n := len(r.Problems()); n > 0 {
				return cli.Exit("", 1)
			}
			return nil
		},
	}
}
