package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/kovn-io/kovn/go-controller/pkg/lab/conformance"
	"github.com/kovn-io/kovn/go-controller/pkg/lab/k8sbuild"
)

// ConformanceOptions choose what RunConformance runs.
type ConformanceOptions struct {
	Suites []string // names from conformance.Suites(); none means all
	Focus  string   // replaces the suite's focus, if set (one suite only)
	// SubsetFile narrows the one suite to the specs it names, each of
	// which must run (conformance.Subset).
	SubsetFile string
	SkipFile   string
	ReportDir  string
	Timeout    time.Duration
}

// SuiteReport is one suite's outcome, as summary.json holds it.
type SuiteReport struct {
	Suite    string             `json:"suite"`
	Focus    string             `json:"focus"`
	Seconds  float64            `json:"seconds"`
	Counts   conformance.Counts `json:"counts"`
	ExitCode int                `json:"exitCode"`
}

// RunConformance runs each suite's upstream specs from the control plane's
// network namespace, where a real cluster's test runner would sit: on the
// nodes' network, so specs that reach a node or NodePort from the runner
// reach it. It needs the cluster DNS and the upstream images (`up --dns
// --e2e-images`). It returns whether every selected spec passed or was
// skipped.
func (l *Lab) RunConformance(ctx context.Context, opts ConformanceOptions, out io.Writer) (bool, error) {
	if !l.ClusterDNS || !l.E2EImages {
		return false, fmt.Errorf("the lab has no cluster DNS or no upstream test images: `kovn-lab down`, then `kovn-lab up --dns --e2e-images` (up keeps an existing lab's shape)")
	}
	if (opts.Focus != "" || opts.SubsetFile != "") && len(opts.Suites) != 1 {
		return false, fmt.Errorf("--focus and --subset-file narrow one suite: name it with --suite")
	}
	e2eTest, err := k8sbuild.EnsureE2E(l.CacheDir, l.K8sVersion, out)
	if err != nil {
		return false, err
	}
	skips, err := conformance.LoadSkips(opts.SkipFile)
	if err != nil {
		return false, err
	}
	skip := conformance.SkipRegex(skips)
	names := opts.Suites
	if len(names) == 0 {
		for _, s := range conformance.Suites() {
			names = append(names, s.Name)
		}
	}
	ok := true
	var reports []SuiteReport
	for _, name := range names {
		suite, err := conformance.SuiteByName(name)
		if err != nil {
			return false, err
		}
		var subset []string
		switch {
		case opts.Focus != "":
			suite.Focus = opts.Focus
		case opts.SubsetFile != "":
			if subset, suite.Focus, err = conformance.Subset(opts.SubsetFile, suite); err != nil {
				return false, err
			}
		}
		rep, err := l.runSuite(ctx, e2eTest, suite, skip, opts, out)
		if err != nil {
			return false, err
		}
		reports = append(reports, rep)
		c := rep.Counts
		if c.Failed > 0 || rep.ExitCode != 0 {
			ok = false
		}
		if c.Failed == 0 && rep.ExitCode != 0 {
			fmt.Fprintf(out, "%s: e2e.test exited %d with no spec failed; see %s\n", suite.Name, rep.ExitCode, filepath.Join(opts.ReportDir, suite.Name, "e2e.log"))
		}
		if c.Skipped > c.SkippedByList {
			ok = false
			for _, r := range c.Results {
				if r.Status == "skipped" && r.Message != "skip list" {
					fmt.Fprintf(out, "SKIPPED at run time, and not on the skip list: %s\n    %s\n", r.Name, firstLine(r.Message))
				}
			}
		}
		if missing := conformance.Unmatched(subset, c.Results); len(missing) > 0 {
			ok = false
			fmt.Fprintf(out, "%s: no spec matches these lines of %s: %q\n", suite.Name, opts.SubsetFile, missing)
		}
	}
	b, err := json.MarshalIndent(struct {
		Kubernetes string             `json:"kubernetes"`
		Skips      []conformance.Skip `json:"skips"`
		Suites     []SuiteReport      `json:"suites"`
	}{l.K8sVersion, skips, reports}, "", "  ")
	if err != nil {
		return false, err
	}
	if err := os.WriteFile(filepath.Join(opts.ReportDir, "summary.json"), b, 0o644); err != nil {
		return false, err
	}
	fmt.Fprintf(out, "\n%-26s %7s %7s %8s %14s %8s\n", "suite", "passed", "failed", "skipped", "(by the list)", "time")
	for _, r := range reports {
		c := r.Counts
		fmt.Fprintf(out, "%-26s %7d %7d %8d %14d %7.0fs\n", r.Suite, c.Passed, c.Failed, c.Skipped, c.SkippedByList, r.Seconds)
	}
	fmt.Fprintf(out, "JUnit reports and e2e.test logs: %s\n", opts.ReportDir)
	return ok, nil
}

func (l *Lab) runSuite(ctx context.Context, e2eTest string, suite conformance.Suite, skip string, opts ConformanceOptions, out io.Writer) (SuiteReport, error) {
	dir := filepath.Join(opts.ReportDir, suite.Name)
	if err := os.RemoveAll(dir); err != nil {
		return SuiteReport{}, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return SuiteReport{}, err
	}
	args := conformance.Args{
		Kubeconfig: l.path("pki", "admin.kubeconfig"), // the API server's own address, valid in the namespace
		Kubectl:    l.KubectlPath(),
		Focus:      suite.Focus,
		Skip:       skip,
		ReportDir:  dir,
		Nodes:      len(l.NodeNames),
		DNSDomain:  "cluster.local",
		Timeout:    opts.Timeout.String(),
	}
	logPath := filepath.Join(dir, "e2e.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return SuiteReport{}, err
	}
	defer logFile.Close()
	fmt.Fprintf(out, "running %s: e2e.test --ginkgo.focus=%q (log: %s)\n", suite.Name, suite.Focus, logPath)
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", nsPrefix + "cp", e2eTest}, args.List()...)...)
	cmd.Dir = dir
	// The specs' own progress lines ("•" per spec) go to out through the
	// filter; everything goes to the log.
	cmd.Stdout = io.MultiWriter(logFile, &specLines{out: out})
	cmd.Stderr = logFile
	start := time.Now()
	runErr := cmd.Run()
	rep := SuiteReport{Suite: suite.Name, Focus: suite.Focus, Seconds: time.Since(start).Seconds()}
	if ee, isExit := runErr.(*exec.ExitError); isExit {
		rep.ExitCode = ee.ExitCode()
	} else if runErr != nil {
		return rep, fmt.Errorf("e2e.test: %w", runErr)
	}
	f, err := os.Open(filepath.Join(dir, "junit_01.xml"))
	if err != nil {
		return rep, fmt.Errorf("%s (e2e.test exited %d; see %s)", err, rep.ExitCode, logPath)
	}
	defer f.Close()
	if rep.Counts, err = conformance.ParseJUnit(f, suite.Focus, skip); err != nil {
		return rep, err
	}
	for _, r := range rep.Counts.Results {
		if r.Status == "failed" {
			fmt.Fprintf(out, "FAILED %s (%.0fs)\n    %s\n", r.Name, r.Seconds, firstLine(r.Message))
		}
	}
	return rep, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// specLines passes on, for each spec that ends, ginkgo's outcome line
// ("• [FAILED] [5.4 seconds]") with the spec's name, which verbose output
// prints unindented before the spec's steps, so a long run shows progress
// without the verbose output.
type specLines struct {
	out     io.Writer
	partial []byte
	spec    string
}

func (s *specLines) Write(p []byte) (int, error) {
	s.partial = append(s.partial, p...)
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			break
		}
		line := string(s.partial[:i])
		s.partial = s.partial[i+1:]
		switch {
		case strings.HasPrefix(line, "[sig-"):
			s.spec = line
		case strings.HasPrefix(line, "• "):
			fmt.Fprintf(s.out, "%s %s\n", line, s.spec)
		}
	}
	return len(p), nil
}
