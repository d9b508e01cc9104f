package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/kovn-io/kovn/go-controller/pkg/bench"
)

// perfFlag is on the scenarios whose measured phase is profiled.
func perfFlag() cli.Flag {
	return &cli.IntFlag{Name: "perf-hz", Value: bench.DefaultPerfHz,
		Usage: "profile each measured phase with a system-wide perf record -e cpu-clock at this rate per CPU; its perf.data is kept beside --out (0: no profile)"}
}

// perfOptions are --perf-hz and where --out puts the recording.
func perfOptions(c *cli.Context, scenario string) (bench.PerfOptions, error) {
	hz := c.Int("perf-hz")
	if hz < 0 {
		return bench.PerfOptions{}, fmt.Errorf("--perf-hz must not be negative, got %d", hz)
	}
	return bench.PerfOptions{Hz: hz, File: bench.PerfFile(c.String("out"), scenario)}, nil
}
