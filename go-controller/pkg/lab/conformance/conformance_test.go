package conformance

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// A ginkgo v2 JUnit report cut down to the cases that matter: a pass, a
// failure, a runtime skip, a spec the skip list removed, a spec outside
// the focus, and a suite-level node.
const report = `<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="6" disabled="0" errors="0" failures="1" time="50">
  <testsuite name="Kubernetes e2e suite" package="/" tests="6">
    <testcase name="[SynchronizedBeforeSuite]" classname="Kubernetes e2e suite" status="passed" time="1.5"></testcase>
    <testcase name="[SynchronizedAfterSuite]" classname="Kubernetes e2e suite" status="failed" time="0.5">
      <failure message="" type="failed">[FAILED] cleanup failed</failure>
    </testcase>
    <testcase name="[It] [sig-network] Services should serve a basic endpoint from pods [Conformance]" classname="Kubernetes e2e suite" status="passed" time="12.5"></testcase>
    <testcase name="[It] [sig-network] DNS should provide DNS for services [Conformance]" classname="Kubernetes e2e suite" status="failed" time="30">
      <failure message="" type="failed">[FAILED] timed out waiting for dig&#xA;In [It] at: dns.go:1</failure>
    </testcase>
    <testcase name="[It] [sig-network] Services should have session affinity timeout work for service with type clusterIP [LinuxOnly] [Conformance]" classname="Kubernetes e2e suite" status="skipped" time="0.1">
      <skipped message="skipped - Only supported for node OS distro [gci ubuntu] (not )"></skipped>
    </testcase>
    <testcase name="[It] [sig-network] HostPort validates that there is no conflict between pods with same hostPort but different hostIP and protocol [LinuxOnly] [Conformance]" classname="Kubernetes e2e suite" status="skipped" time="0">
      <skipped message="skipped"></skipped>
    </testcase>
    <testcase name="[It] [sig-storage] CSI mock volume should work" classname="Kubernetes e2e suite" status="skipped" time="0">
      <skipped message="skipped"></skipped>
    </testcase>
  </testsuite>
</testsuites>`

func TestParseJUnit(t *testing.T) {
	suite, err := SuiteByName("sig-network-conformance")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseJUnit(strings.NewReader(report), suite.Focus, `(?:HostPort validates)`)
	if err != nil {
		t.Fatal(err)
	}
	if c.Passed != 1 || c.Failed != 2 || c.Skipped != 2 || c.SkippedByList != 1 || len(c.Results) != 5 {
		t.Fatalf("counts %+v", c)
	}
	for _, r := range c.Results {
		switch {
		case strings.Contains(r.Name, "DNS"):
			if r.Status != "failed" || r.Message != "[FAILED] timed out waiting for dig\nIn [It] at: dns.go:1" || r.Seconds != 30 {
				t.Errorf("failure %+v", r)
			}
		case strings.Contains(r.Name, "HostPort"):
			if r.Status != "skipped" || r.Message != "skip list" {
				t.Errorf("listed skip %+v", r)
			}
		case strings.Contains(r.Name, "AfterSuite"):
			if r.Status != "failed" || r.Message != "[FAILED] cleanup failed" {
				t.Errorf("suite-level failure %+v", r)
			}
		case strings.Contains(r.Name, "session affinity"):
			if r.Status != "skipped" || !strings.Contains(r.Message, "node OS distro") {
				t.Errorf("runtime skip %+v", r)
			}
		}
	}
	if _, err := ParseJUnit(strings.NewReader("<testsuites"), suite.Focus, ""); err == nil {
		t.Error("a truncated report parsed")
	}
}

func TestLoadSkips(t *testing.T) {
	dir := t.TempDir()
	write := func(content string) string {
		p := filepath.Join(dir, "skips.yaml")
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	skips, err := LoadSkips(write("- test: 'LoadBalancer'\n  reason: no cloud\n- test: '\\[Feature:SCTP'\n  reason: no sctp module\n"))
	if err != nil || len(skips) != 2 {
		t.Fatalf("skips %v, %v", skips, err)
	}
	re := regexp.MustCompile(SkipRegex(skips))
	if !re.MatchString("[sig-network] Services should create a LoadBalancer") || !re.MatchString("[Feature:SCTPConnectivity]") || re.MatchString("[sig-network] DNS") {
		t.Errorf("skip regex %s", re)
	}
	for content, want := range map[string]string{
		"- test: 'x'\n":                        "needs both",
		"- test: 'x('\n  reason: r\n":          "entry 1",
		"- test: x\n  reason: r\n  why: y\n":   "unknown field",
		"- test: ''\n  reason: nothing here\n": "needs both",
	} {
		if _, err := LoadSkips(write(content)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", content, err, want)
		}
	}
	if SkipRegex(nil) != "" {
		t.Error("no skips gave an expression")
	}
}

// TestRepoSkipFile keeps the repository's skip list loadable.
func TestRepoSkipFile(t *testing.T) {
	skips, err := LoadSkips("../../../../test/conformance/skips.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(skips) == 0 {
		t.Fatal("empty skip list")
	}
}

func TestSubset(t *testing.T) {
	path := filepath.Join(t.TempDir(), "subset.txt")
	content := "# comment\n\nshould deny (even if allowed)\n  API should support creating NetworkPolicy API operations  \n"
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	suite, _ := SuiteByName("netpol")
	lines, focus, err := Subset(path, suite)
	if err != nil || len(lines) != 2 {
		t.Fatalf("lines %q, %v", lines, err)
	}
	re := regexp.MustCompile(focus)
	for name, want := range map[string]bool{
		"[sig-network] Netpol NetworkPolicy between server and client should deny (even if allowed) [Feature:NetworkPolicy]": true,
		"[sig-network] Netpol API should support creating NetworkPolicy API operations":                                      true,
		"[sig-network] Netpol NetworkPolicy between server and client should deny even if allowed":                           false, // literal, not a group
		"[sig-node] Pods should deny (even if allowed)":                                                                      false, // outside the suite
		"[sig-network] Netpol NetworkPolicy should support a 'default-deny-ingress' policy":                                  false,
	} {
		if re.MatchString(name) != want {
			t.Errorf("focus %s on %q: %v, want %v", focus, name, !want, want)
		}
	}
	results := []Result{{Name: "[sig-network] Netpol API should support creating NetworkPolicy API operations"}}
	if got := Unmatched(lines, results); len(got) != 1 || got[0] != "should deny (even if allowed)" {
		t.Errorf("unmatched %q", got)
	}
	for _, empty := range []string{"", "# only a comment\n\n"} {
		if err := os.WriteFile(path, []byte(empty), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, _, err := Subset(path, suite); err == nil {
			t.Errorf("subset %q accepted", empty)
		}
	}
}
