package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/kovn-io/kovn/go-controller/pkg/bench"
)

// plotCommand draws the latency distributions a results file holds; it
// needs no lab, so it runs on results copied from elsewhere too.
func plotCommand() *cli.Command {
	return &cli.Command{
		Name:  "plot",
		Usage: "draw the latency samples of a results file (or of one report) as PNG CDFs",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "in", Value: "_output/bench/results.json", Usage: "results of kovn-bench merge, or one report"},
			&cli.StringFlag{Name: "out-dir", Value: "_output/bench/plots", Usage: "directory of the PNG files"},
		},
		Action: func(c *cli.Context) error {
			b, err := os.ReadFile(c.String("in"))
			if err != nil {
				return err
			}
			files, err := bench.Plot(b, c.String("out-dir"))
			for _, f := range files {
				fmt.Println("plot:", f)
			}
			if err == nil && len(files) == 0 {
				// Not an error: reports from before the samples were kept
				// have none.
				fmt.Println("no latency samples in", c.String("in"))
			}
			return err
		},
	}
}
