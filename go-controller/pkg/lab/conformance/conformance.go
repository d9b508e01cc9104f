// Package conformance runs Kubernetes' own sig-network e2e specs (the
// e2e.test binary of the lab's Kubernetes version) against a lab, and
// counts what passed, failed and was skipped, from ginkgo's JUnit report.
//
// The selection is fixed here; what is left out of it is not: every spec
// skipped on purpose is in a skip file with its reason, so a reader of the
// counts can check each exclusion.
package conformance

import (
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// Suite is one selection of upstream specs, run as one e2e.test process.
type Suite struct {
	Name  string
	Focus string // ginkgo --focus regular expression
}

// Suites are what the issue asks of a network plugin: sig-network's
// conformance specs, and the NetworkPolicy specs (the "Netpol" framework
// and the API spec).
func Suites() []Suite {
	return []Suite{
		{Name: "sig-network-conformance", Focus: `\[sig-network\].*\[Conformance\]`},
		{Name: "netpol", Focus: `\[sig-network\] (Netpol|NetworkPolicy API)`},
	}
}

// SuiteByName finds a suite.
func SuiteByName(name string) (Suite, error) {
	var names []string
	for _, s := range Suites() {
		if s.Name == name {
			return s, nil
		}
		names = append(names, s.Name)
	}
	return Suite{}, fmt.Errorf("no suite %q (have %s)", name, strings.Join(names, ", "))
}

// Skip is one spec, or family of specs, left out on purpose.
type Skip struct {
	Test   string `json:"test"`   // regular expression on the spec's full text
	Reason string `json:"reason"` // why it cannot apply to this lab, with evidence
}

// LoadSkips reads a skip file: a YAML list of Skip. An entry without a
// reason, or whose test is not a valid expression, is refused: an
// unexplained skip is how failures hide.
func LoadSkips(path string) ([]Skip, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var skips []Skip
	if err := yaml.UnmarshalStrict(b, &skips); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for i, s := range skips {
		if strings.TrimSpace(s.Test) == "" || strings.TrimSpace(s.Reason) == "" {
			return nil, fmt.Errorf("%s: entry %d needs both test and reason", path, i+1)
		}
		if _, err := regexp.Compile(s.Test); err != nil {
			return nil, fmt.Errorf("%s: entry %d: %w", path, i+1, err)
		}
	}
	return skips, nil
}

// SkipRegex joins the skips into one ginkgo --skip expression; "" for none.
func SkipRegex(skips []Skip) string {
	parts := make([]string, len(skips))
	for i, s := range skips {
		parts[i] = "(?:" + s.Test + ")"
	}
	return strings.Join(parts, "|")
}

// Subset reads a subset file: one spec name, or part of one, per line,
// taken literally (names hold parentheses and dots); blank lines and lines
// starting with # are left out. It returns the lines and the focus
// expression that keeps suite's selection and adds one of the lines.
func Subset(path string, suite Suite) ([]string, string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	var lines, quoted []string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		lines = append(lines, l)
		quoted = append(quoted, regexp.QuoteMeta(l))
	}
	if len(lines) == 0 {
		return nil, "", fmt.Errorf("%s: no spec names", path)
	}
	return lines, "(?:" + suite.Focus + ").*(?:" + strings.Join(quoted, "|") + ")", nil
}

// Unmatched lists the subset lines no result's name contains: a spec
// renamed upstream must fail the run, not silently drop out of it.
func Unmatched(lines []string, results []Result) []string {
	var out []string
	for _, l := range lines {
		if !slices.ContainsFunc(results, func(r Result) bool { return strings.Contains(r.Name, l) }) {
			out = append(out, l)
		}
	}
	return out
}

// Args are e2e.test's arguments for one suite run.
type Args struct {
	Kubeconfig, Kubectl string
	Focus, Skip         string
	ReportDir           string
	Nodes               int
	DNSDomain           string
	Timeout             string // ginkgo --timeout, e.g. "2h"
}

// List returns the command line.
func (a Args) List() []string {
	args := []string{
		"--kubeconfig=" + a.Kubeconfig,
		"--kubectl-path=" + a.Kubectl,
		// The lab is a set of machines with no cloud behind them.
		"--provider=local",
		"--num-nodes=" + fmt.Sprint(a.Nodes),
		"--dns-domain=" + a.DNSDomain,
		"--report-dir=" + a.ReportDir,
		"--ginkgo.focus=" + a.Focus,
		"--ginkgo.timeout=" + a.Timeout,
		"--ginkgo.no-color",
		// A focus that matches nothing is a mistake, not a pass.
		"--ginkgo.fail-on-empty",
		"--ginkgo.v",
		// Log dumps ssh into nodes, which the lab has not got.
		"--disable-log-dump",
	}
	if a.Skip != "" {
		args = append(args, "--ginkgo.skip="+a.Skip)
	}
	return args
}

// Result is one spec of a run.
type Result struct {
	Name    string  // full text, without ginkgo's "[It] "
	Status  string  // passed, failed, skipped
	Seconds float64 // run time
	Message string  // the skip reason or the failure
}

// Counts sums a run.
type Counts struct {
	Passed, Failed, Skipped int
	// SkippedByList are the skips the skip file made; the others skipped
	// themselves at run time (a missing feature, a node count), with the
	// spec's own message, and fail the run: an exclusion nobody explained.
	SkippedByList int
	Results       []Result
}

type junitReport struct {
	Suites []struct {
		Cases []struct {
			Name    string  `xml:"name,attr"`
			Status  string  `xml:"status,attr"`
			Time    float64 `xml:"time,attr"`
			Skipped *struct {
				Message string `xml:"message,attr"`
			} `xml:"skipped"`
			Failure *junitProblem `xml:"failure"`
			Error   *junitProblem `xml:"error"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// junitProblem is a failure or error; ginkgo leaves the message attribute
// empty and writes the failure as the element's text.
type junitProblem struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

func (p *junitProblem) String() string {
	if strings.TrimSpace(p.Message) != "" {
		return p.Message
	}
	return strings.TrimSpace(p.Text)
}

// ParseJUnit counts the specs of a ginkgo JUnit report that match focus.
// Ginkgo also reports every spec the focus filtered out, as skipped, and
// its suite-level nodes; both are left out. A spec matching skip counts as
// skipped by the list whatever its status says.
func ParseJUnit(r io.Reader, focus, skip string) (Counts, error) {
	var rep junitReport
	if err := xml.NewDecoder(r).Decode(&rep); err != nil {
		return Counts{}, fmt.Errorf("JUnit report: %w", err)
	}
	focusRE, err := regexp.Compile(focus)
	if err != nil {
		return Counts{}, err
	}
	var skipRE *regexp.Regexp
	if skip != "" {
		if skipRE, err = regexp.Compile(skip); err != nil {
			return Counts{}, err
		}
	}
	var c Counts
	for _, s := range rep.Suites {
		for _, tc := range s.Cases {
			name, ok := strings.CutPrefix(tc.Name, "[It] ")
			if !ok {
				// A suite-level node ([SynchronizedBeforeSuite], …) that
				// failed failed every spec after it: say so.
				if tc.Failure != nil || tc.Error != nil {
					res := Result{Name: tc.Name, Status: "failed", Seconds: tc.Time}
					if tc.Failure != nil {
						res.Message = tc.Failure.String()
					} else {
						res.Message = tc.Error.String()
					}
					c.Failed++
					c.Results = append(c.Results, res)
				}
				continue
			}
			if !focusRE.MatchString(name) {
				continue
			}
			res := Result{Name: name, Seconds: tc.Time}
			switch {
			case skipRE != nil && skipRE.MatchString(name):
				res.Status, res.Message = "skipped", "skip list"
				c.Skipped++
				c.SkippedByList++
			case tc.Failure != nil || tc.Error != nil || tc.Status == "failed" || tc.Status == "panicked" || tc.Status == "timedout" || tc.Status == "interrupted":
				res.Status = "failed"
				if tc.Failure != nil {
					res.Message = tc.Failure.String()
				} else if tc.Error != nil {
					res.Message = tc.Error.String()
				} else {
					res.Message = tc.Status
				}
				c.Failed++
			case tc.Status == "passed":
				res.Status = "passed"
				c.Passed++
			default:
				res.Status = "skipped"
				if tc.Skipped != nil {
					res.Message = tc.Skipped.Message
				}
				c.Skipped++
			}
			c.Results = append(c.Results, res)
		}
	}
	sort.Slice(c.Results, func(i, j int) bool { return c.Results[i].Name < c.Results[j].Name })
	return c, nil
}
