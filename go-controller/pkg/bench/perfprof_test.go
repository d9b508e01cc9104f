package bench

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// testdata/perf-report.txt is what perfReportArgs made perf 6.1 print
// for 1 s of this project's 2-core machine at 499 Hz (a Go build, a lab
// and a kovn-bench run busy on it): 899 samples in 284 lines.
func TestParsePerfReport(t *testing.T) {
	b, err := os.ReadFile("testdata/perf-report.txt")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := parsePerfReport(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 284 {
		t.Fatalf("%d rows, want 284", len(rows))
	}
	var idle perfSample
	for _, r := range rows {
		if r.comm == "swapper" && r.sym == "pv_native_safe_halt" {
			idle = r
		}
	}
	if idle != (perfSample{samples: 181, period: 362725448, comm: "swapper", dso: "[kernel.kallsyms]", sym: "pv_native_safe_halt"}) {
		t.Errorf("idle row %+v: want blanks and the [k] mark trimmed", idle)
	}

	p := summariseProfile(rows, 499)
	if p.Samples != 899 || p.CPUSeconds != 1.8 || p.BusyCPUSeconds != 1.43 {
		t.Errorf("samples %d, CPU s %v, busy %v: want 899, 1.8, 1.43", p.Samples, p.CPUSeconds, p.BusyCPUSeconds)
	}
	want := []struct {
		comm    string
		samples int64
	}{{"link", 454}, {"swapper", 187}, {"kovn-bench", 101}, {"vet", 27}, {"ovs-vsctl", 24}, {"kube-apiserver", 22}}
	var sum int64
	for _, c := range p.ByCommand {
		sum += c.Samples
	}
	if sum != p.Samples {
		t.Errorf("commands add up to %d samples, not %d", sum, p.Samples)
	}
	for i, w := range want {
		if c := p.ByCommand[i]; c.Comm != w.comm || c.Samples != w.samples {
			t.Errorf("command %d: %s %d, want %s %d", i, c.Comm, c.Samples, w.comm, w.samples)
		}
	}
	if c := p.ByCommand[0]; c.Share != 0.505 || c.CPUSeconds != 0.91 || len(c.Symbols) != profileCommandSymbols ||
		c.Symbols[0].Symbol != "runtime.mapaccess2" || c.Symbols[0].Samples != 109 {
		t.Errorf("link: %+v", c)
	}
	deep := 0
	for _, c := range p.ByCommand {
		if len(c.Symbols) > 0 {
			deep++
		}
		if c.Comm == "swapper" && c.Symbols != nil {
			t.Error("swapper lists symbols: idle is not what a reader looks for")
		}
	}
	if deep != profileCommandsDeep {
		t.Errorf("%d commands list their symbols, want %d", deep, profileCommandsDeep)
	}
	if len(p.TopSymbols) != profileTopSymbols || p.TopSymbols[0].Comm != "link" || p.TopSymbols[0].Symbol != "runtime.mapaccess2" {
		t.Errorf("top symbols start %+v", p.TopSymbols[:2])
	}
	for _, s := range p.TopSymbols {
		if s.Comm == "swapper" {
			t.Errorf("idle in the top symbols: %+v", s)
		}
	}
	p.File, p.WindowSeconds = "x.perf.data", 1
	rows2 := p.rows("burst: ")
	if len(rows2) != 2 || !strings.Contains(rows2[0].v, "link 0.91, swapper (idle) 0.37, kovn-bench") ||
		!strings.Contains(rows2[1].v, "link runtime.mapaccess2 12.1%") || !strings.Contains(rows2[1].v, "perf report -i x.perf.data") {
		t.Errorf("table rows %q", rows2)
	}
	c := Costs{Profile: p}
	ph := PodReadyPhase{Pods: 1, Profile: p}
	for _, rs := range [][]row{c.rows("pod", 1), ph.rows("burst of 1", "burst", "")} {
		if last := rs[len(rs)-1]; !strings.HasSuffix(last.k, "perf top symbols") {
			t.Errorf("the scenario's table ends with %q, not the profile", last)
		}
	}
}

func TestParsePerfReportErrors(t *testing.T) {
	for _, in := range []string{"12\t100\tcomm\tdso\n", "x\t100\tcomm\tdso\t[.] f\n", "1\t\tcomm\tdso\t[.] f\n"} {
		if _, err := parsePerfReport(in); err == nil {
			t.Errorf("%q parsed", in)
		}
	}
	// No samples: perf prints nothing on stdout.
	rows, err := parsePerfReport("")
	if err != nil || len(rows) != 0 {
		t.Errorf("empty report: %v, %v", rows, err)
	}
	if p := summariseProfile(nil, 499); p.Samples != 0 || p.ByCommand == nil || p.TopSymbols == nil {
		t.Errorf("empty profile %+v: want zero samples and empty (not null) lists", p)
	}
	var none *CPUProfile
	if none.rows("x") != nil {
		t.Error("no profile has table rows")
	}
}

func TestFoldCommands(t *testing.T) {
	cs := []CommandCPU{{Comm: "a", Samples: 5, Share: 0.5, CPUSeconds: 1}, {Comm: "b", Samples: 3, Share: 0.3, CPUSeconds: 0.6}, {Comm: "c", Samples: 2, Share: 0.2, CPUSeconds: 0.4}}
	got := foldCommands(cs, 1)
	if len(got) != 2 || !reflect.DeepEqual(got[1], CommandCPU{Comm: "(2 other commands)", Samples: 5, Share: 0.5, CPUSeconds: 1}) {
		t.Errorf("folded %+v", got)
	}
	if len(foldCommands(cs, 3)) != 3 {
		t.Error("folded what fits")
	}
}

func TestPerfFile(t *testing.T) {
	for _, c := range []struct{ out, scenario, phase, want string }{
		{"_output/bench/run-03-podready.json", "podready", "burst", "_output/bench/run-03-podready.burst.perf.data"},
		{"_output/bench/pods.json", "pods", "", "_output/bench/pods.perf.data"},
		{"", "cleanup", "", "_output/bench/perf/cleanup.perf.data"},
	} {
		o := PerfOptions{Hz: 1, File: PerfFile(c.out, c.scenario)}
		if c.phase != "" {
			o = o.Phase(c.phase)
		}
		if o.File != c.want {
			t.Errorf("PerfFile(%q, %q).Phase(%q) = %s, want %s", c.out, c.scenario, c.phase, o.File, c.want)
		}
	}
}
