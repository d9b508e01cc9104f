package main

import (
	"strings"

	"github.com/urfave/cli/v2"
	"k8s.io/client-go/kubernetes"

	"github.com/kovn-io/kovn/go-controller/pkg/bench"
	"github.com/kovn-io/kovn/go-controller/pkg/lab"
)

func podReadyCommand() *cli.Command {
	d := bench.DefaultPodReady()
	return &cli.Command{
		Name:  "podready",
		Usage: "real pause pods on the lab nodes: creation → Ready through kubelet, containerd and kovn's CNI, in a burst and at a steady rate, with CNI ADD by phase",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "burst", Value: d.Burst, Usage: "pods created at once (0: no burst)"},
			&cli.IntFlag{Name: "writers", Value: d.Writers, Usage: "parallel creates in the burst"},
			&cli.Float64Flag{Name: "rate", Value: d.Rate, Usage: "steady phase: pods created per second (0: no steady phase)"},
			&cli.DurationFlag{Name: "duration", Value: d.Duration, Usage: "steady phase: how long pods are created"},
			&cli.DurationFlag{Name: "age", Value: d.Age, Usage: "steady phase: a pod is deleted this long after it became Ready"},
			&cli.StringFlag{Name: "nodes", Usage: "comma-separated lab nodes the pods are bound to, round-robin (default: all)"},
			outFlag("_output/bench/podready.json"), perfFlag(),
		},
		Action: func(c *cli.Context) error {
			o := bench.PodReadyOptions{Burst: c.Int("burst"), Writers: c.Int("writers"), Rate: c.Float64("rate"),
				Duration: c.Duration("duration"), Age: c.Duration("age"), Timeout: c.Duration("timeout")}
			if n := c.String("nodes"); n != "" {
				for _, s := range strings.Split(n, ",") {
					if s = strings.TrimSpace(s); s != "" {
						o.Nodes = append(o.Nodes, s)
					}
				}
			}
			if err := o.Validate(); err != nil {
				return err
			}
			var err error
			if o.Perf, err = perfOptions(c, "podready"); err != nil {
				return err
			}
			return single(c, "podready", func(r *bench.Report, l *lab.Lab, cs *kubernetes.Clientset) error {
				res, err := bench.RunPodReady(c.Context, l, cs, o)
				r.PodReady = res
				return err
			})
		},
	}
}
