package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/kovn-io/kovn/go-controller/pkg/lab"
)

func conformanceCommand() *cli.Command {
	return &cli.Command{
		Name:  "conformance",
		Usage: "run Kubernetes' upstream sig-network conformance and NetworkPolicy e2e specs against the lab (up --dns --e2e-images); exit 1 if any fails or skips itself off the skip list",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "suite", Usage: "sig-network-conformance or netpol (repeatable; default both)"},
			&cli.StringFlag{Name: "focus", Usage: "run only the specs this regular expression matches, instead of the suite's selection (needs one --suite)"},
			&cli.StringFlag{Name: "subset-file", Usage: "run only the suite's specs named, literally, by a line of this file (# comments); each line must match a spec (needs one --suite)"},
			&cli.StringFlag{Name: "skip-file", Usage: "YAML list of {test, reason} left out on purpose (default: test/conformance/skips.yaml of the checkout)"},
			&cli.StringFlag{Name: "report-dir", Value: "_output/conformance", Usage: "JUnit reports, e2e.test logs and summary.json"},
			&cli.DurationFlag{Name: "timeout", Value: 3 * time.Hour, Usage: "ginkgo's timeout for each suite"},
		},
		Action: func(c *cli.Context) error {
			l, err := load(c)
			if err != nil {
				return err
			}
			skipFile := c.String("skip-file")
			if skipFile == "" {
				skipFile = filepath.Join(l.BinDir, "..", "..", "test", "conformance", "skips.yaml")
			}
			reportDir, err := filepath.Abs(c.String("report-dir"))
			if err != nil {
				return err
			}
			ok, err := l.RunConformance(c.Context, lab.ConformanceOptions{
				Suites: c.StringSlice("suite"), Focus: c.String("focus"), SubsetFile: c.String("subset-file"), SkipFile: skipFile,
				ReportDir: reportDir, Timeout: c.Duration("timeout"),
			}, os.Stdout)
			if err != nil {
				return err
			}
			if !ok {
				return cli.Exit(fmt.Sprintf("conformance: specs failed (see %s)", reportDir), 1)
			}
			return nil
		},
	}
}
