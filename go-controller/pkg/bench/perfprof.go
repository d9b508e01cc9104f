package bench

import (
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// PerfOptions say whether a measured phase is profiled with `perf record`
// and where the recording is kept.
type PerfOptions struct {
	Hz   int    // samples per second on each CPU; 0: no profile
	File string // perf.data path, kept for `perf report -i`
}

// DefaultPerfHz is a prime, so that sampling does not beat with timers of
// round periods, and low enough that perf costs well under 1% of a core.
const DefaultPerfHz = 499

// PerfFile is where the recording of a run whose report goes to out is
// kept: beside it, or under _output/bench/perf when there is no report.
func PerfFile(out, scenario string) string {
	if out == "" {
		return filepath.Join("_output", "bench", "perf", scenario+".perf.data")
	}
	return strings.TrimSuffix(out, ".json") + ".perf.data"
}

// Phase names the recording of one of a run's several phases.
func (o PerfOptions) Phase(name string) PerfOptions {
	o.File = strings.TrimSuffix(o.File, ".perf.data") + "." + name + ".perf.data"
	return o
}

// CPUProfile is where a phase's CPU went by the samples of a system-wide
// `perf record -e cpu-clock`: every process, short-lived ones too, which
// /proc snapshots cannot see once they have exited.
type CPUProfile struct {
	File    string `json:"file"` // perf report -i <file> --sort comm,sym
	Hz      int    `json:"hz"`   // per CPU
	Samples int64  `json:"samples"`
	// CPUSeconds is all samples' time. It falls short of window × cores
	// by idle time perf did not sample (cpu-clock's timer does not fire
	// on every idle tick), so idle is that product minus BusyCPUSeconds,
	// better than swapper's own samples.
	CPUSeconds     float64 `json:"cpuSeconds"`
	BusyCPUSeconds float64 `json:"busyCpuSeconds"` // every command but swapper
	WindowSeconds  float64 `json:"windowSeconds"`  // events enabled → disabled
	// ByCommand is every command (process or thread name, 15 characters
	// at most) by samples; "swapper" is the idle CPU, and the interrupts
	// taken while idle. The busiest few carry their top symbols.
	ByCommand []CommandCPU `json:"byCommand"`
	// TopSymbols are the busiest symbols of any command but swapper.
	TopSymbols []SymbolCPU `json:"topSymbols"`
	// GoSymbolsFrom are stripped Go binaries whose symbols kovn-bench read
	// from their .gopclntab: perf report -i shows addresses for them.
	GoSymbolsFrom []string `json:"goSymbolsFrom,omitempty"`
}

// CommandCPU is one command's samples.
type CommandCPU struct {
	Comm       string      `json:"comm"`
	Samples    int64       `json:"samples"`
	Share      float64     `json:"share"` // of all samples
	CPUSeconds float64     `json:"cpuSeconds"`
	Symbols    []SymbolCPU `json:"topSymbols,omitempty"`
}

// SymbolCPU is one symbol's samples in one command and object.
type SymbolCPU struct {
	Comm       string  `json:"comm"`
	DSO        string  `json:"dso"`
	Symbol     string  `json:"symbol"` // an address when perf could not resolve it
	Samples    int64   `json:"samples"`
	Share      float64 `json:"share"`
	CPUSeconds float64 `json:"cpuSeconds"`
}

// How much of a profile the report keeps: the file has the rest.
const (
	profileCommands       = 40 // the rest are summed into one line
	profileTopSymbols     = 20
	profileCommandsDeep   = 5 // busiest commands that list their own symbols
	profileCommandSymbols = 8
)

// idleComm is the idle task's name in perf's samples.
const idleComm = "swapper"

// perfSample is one line of `perf report -F sample,period,comm,dso,sym`.
type perfSample struct {
	samples, period int64 // period: nanoseconds, for cpu-clock
	comm, dso, sym  string
}

// perfReportArgs make perf print one tab-separated line per command,
// object and symbol, with no header and no percent limit, so that the
// lines add up to every sample.
func perfReportArgs(file string) []string {
	return []string{"report", "-i", file, "--stdio", "--quiet", "--sort", "comm,dso,sym",
		"-F", "sample,period,comm,dso,sym", "--field-separator", "\t"}
}

// parsePerfReport reads what perfReportArgs make perf print. perf pads
// the fields with blanks and marks a symbol kernel ("[k] ") or user
// ("[.] "); both are dropped.
func parsePerfReport(out string) ([]perfSample, error) {
	var rows []perfSample
	for i, line := range strings.Split(out, "\n") {
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.SplitN(line, "\t", 5)
		if len(f) != 5 {
			return nil, fmt.Errorf("perf report line %d: %d fields, want 5: %q", i+1, len(f), line)
		}
		n, err1 := strconv.ParseInt(strings.TrimSpace(f[0]), 10, 64)
		p, err2 := strconv.ParseInt(strings.TrimSpace(f[1]), 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("perf report line %d: samples and period not numbers: %q", i+1, line)
		}
		sym := strings.TrimSpace(f[4])
		for _, mark := range []string{"[k] ", "[.] ", "[g] ", "[u] "} {
			sym = strings.TrimPrefix(sym, mark)
		}
		rows = append(rows, perfSample{samples: n, period: p,
			comm: strings.TrimSpace(f[2]), dso: strings.TrimSpace(f[3]), sym: strings.TrimSpace(sym)})
	}
	return rows, nil
}

// summariseProfile adds the lines up by command and picks the busiest
// symbols. CPU seconds come from the period (cpu-clock counts
// nanoseconds), or from samples / hz when perf gave none.
func summariseProfile(rows []perfSample, hz int) *CPUProfile {
	p := &CPUProfile{Hz: hz, ByCommand: []CommandCPU{}, TopSymbols: []SymbolCPU{}}
	var period, busyPeriod, busySamples int64
	for _, r := range rows {
		p.Samples += r.samples
		period += r.period
		if r.comm != idleComm {
			busySamples += r.samples
			busyPeriod += r.period
		}
	}
	seconds := func(samples, per int64) float64 {
		if period > 0 {
			return round(float64(per)/1e9, 2)
		}
		if hz > 0 {
			return round(float64(samples)/float64(hz), 2)
		}
		return 0
	}
	share := func(n int64) float64 {
		if p.Samples == 0 {
			return 0
		}
		return round(float64(n)/float64(p.Samples), 4)
	}
	p.CPUSeconds, p.BusyCPUSeconds = seconds(p.Samples, period), seconds(busySamples, busyPeriod)

	byComm := map[string]*CommandCPU{}
	commPeriod := map[string]int64{}
	syms := make([]SymbolCPU, 0, len(rows))
	symsOf := map[string][]SymbolCPU{}
	for _, r := range rows {
		c := byComm[r.comm]
		if c == nil {
			c = &CommandCPU{Comm: r.comm}
			byComm[r.comm] = c
		}
		c.Samples += r.samples
		commPeriod[r.comm] += r.period
		s := SymbolCPU{Comm: r.comm, DSO: r.dso, Symbol: r.sym, Samples: r.samples, Share: share(r.samples), CPUSeconds: seconds(r.samples, r.period)}
		symsOf[r.comm] = append(symsOf[r.comm], s)
		if r.comm != idleComm {
			syms = append(syms, s)
		}
	}
	for _, c := range byComm {
		c.Share, c.CPUSeconds = share(c.Samples), seconds(c.Samples, commPeriod[c.Comm])
		p.ByCommand = append(p.ByCommand, *c)
	}
	sort.Slice(p.ByCommand, func(i, j int) bool {
		a, b := p.ByCommand[i], p.ByCommand[j]
		return a.Samples > b.Samples || a.Samples == b.Samples && a.Comm < b.Comm
	})
	p.ByCommand = foldCommands(p.ByCommand, profileCommands)
	deep := 0
	for i := range p.ByCommand {
		c := &p.ByCommand[i]
		if deep == profileCommandsDeep || c.Comm == idleComm || symsOf[c.Comm] == nil {
			continue
		}
		c.Symbols = busiestSymbols(symsOf[c.Comm], profileCommandSymbols)
		deep++
	}
	p.TopSymbols = busiestSymbols(syms, profileTopSymbols)
	return p
}

// foldCommands keeps the first n commands and sums the rest into one.
func foldCommands(cs []CommandCPU, n int) []CommandCPU {
	if len(cs) <= n {
		return cs
	}
	rest := CommandCPU{Comm: fmt.Sprintf("(%d other commands)", len(cs)-n)}
	for _, c := range cs[n:] {
		rest.Samples += c.Samples
		rest.Share += c.Share
		rest.CPUSeconds += c.CPUSeconds
	}
	rest.Share, rest.CPUSeconds = round(rest.Share, 4), round(rest.CPUSeconds, 2)
	return append(cs[:n:n], rest)
}

// busiestSymbols sorts a copy by samples (ties by name, so that the
// order does not depend on perf's) and keeps n.
func busiestSymbols(s []SymbolCPU, n int) []SymbolCPU {
	s = append([]SymbolCPU{}, s...)
	sort.Slice(s, func(i, j int) bool {
		if s[i].Samples != s[j].Samples {
			return s[i].Samples > s[j].Samples
		}
		return s[i].Comm+s[i].Symbol < s[j].Comm+s[j].Symbol
	})
	return s[:min(n, len(s))]
}

// rows are two lines for the table: the busiest commands in CPU seconds
// and the busiest symbols by share of all samples.
func (p *CPUProfile) rows(prefix string) []row {
	if p == nil {
		return nil
	}
	var cmds, syms []string
	for _, c := range p.ByCommand[:min(8, len(p.ByCommand))] {
		name := c.Comm
		if name == idleComm {
			name = "swapper (idle)"
		}
		cmds = append(cmds, fmt.Sprintf("%s %.2f", name, c.CPUSeconds))
	}
	for _, s := range p.TopSymbols[:min(5, len(p.TopSymbols))] {
		syms = append(syms, fmt.Sprintf("%s %s %.1f%%", s.Comm, s.Symbol, 100*s.Share))
	}
	return []row{
		{prefix + "perf CPU s by command", fmt.Sprintf("%d samples at %d Hz in %.1f s, %.2f CPU s busy: %s",
			p.Samples, p.Hz, p.WindowSeconds, p.BusyCPUSeconds, strings.Join(cmds, ", "))},
		{prefix + "perf top symbols", fmt.Sprintf("%s (perf report -i %s)", strings.Join(syms, ", "), p.File)},
	}
}
