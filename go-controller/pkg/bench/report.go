package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is what one kovn-bench invocation writes.
type Report struct {
	Scenario string          `json:"scenario"`
	Env      Environment     `json:"environment"`
	Pods     *PodsResult     `json:"pods,omitempty"`
	Baseline *BaselineResult `json:"baseline,omitempty"`
	Services *ServicesResult `json:"services,omitempty"`
	Policies *PoliciesResult `json:"policies,omitempty"`
	Restart  *RestartResult  `json:"restart,omitempty"`
	Enforce  *EnforceResult  `json:"enforce,omitempty"`
	PodReady *PodReadyResult `json:"podReady,omitempty"`
	Cleanup  *CleanupResult  `json:"cleanup,omitempty"`
	Error    string          `json:"error,omitempty"`
}

// Results is several reports, in the order they ran (run.sh merges).
type Results struct {
	Runs []Report `json:"runs"`
}

// Dist summarises latencies, in milliseconds.
type Dist struct {
	N     int     `json:"n"`
	P50Ms float64 `json:"p50Ms"`
	P90Ms float64 `json:"p90Ms"`
	P99Ms float64 `json:"p99Ms"`
	MaxMs float64 `json:"maxMs"`
}

// Summarise takes nearest-rank percentiles of ds.
func Summarise(ds []time.Duration) Dist {
	if len(ds) == 0 {
		return Dist{}
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	pct := func(p float64) float64 {
		i := int(math.Ceil(p/100*float64(len(s)))) - 1
		i = max(0, min(i, len(s)-1))
		return ms(s[i])
	}
	return Dist{N: len(s), P50Ms: pct(50), P90Ms: pct(90), P99Ms: pct(99), MaxMs: ms(s[len(s)-1])}
}

func (d Dist) String() string {
	return fmt.Sprintf("p50 %.0f ms, p90 %.0f ms, p99 %.0f ms, max %.0f ms", d.P50Ms, d.P90Ms, d.P99Ms, d.MaxMs)
}

func ms(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 1) }

func secs(d time.Duration) float64 { return round(d.Seconds(), 3) }

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return round(a/b, 3)
}

// WriteJSON writes v indented to path, making its directory.
func WriteJSON(path string, v any) error {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Merge reads reports (files holding a Report or a Results) into one.
func Merge(paths []string) (Results, error) {
	var res Results
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return res, err
		}
		var many Results
		if err := json.Unmarshal(b, &many); err == nil && len(many.Runs) > 0 {
			res.Runs = append(res.Runs, many.Runs...)
			continue
		}
		var one Report
		if err := json.Unmarshal(b, &one); err != nil {
			return res, fmt.Errorf("%s: %w", p, err)
		}
		res.Runs = append(res.Runs, one)
	}
	return res, nil
}

// row is one line of the human table.
type row struct{ k, v string }

// PrintTable writes the report as FIGURE / VALUE lines.
func (r *Report) PrintTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "== %s\t%d cores, %s, Kubernetes %s\n", r.Scenario, r.Env.Cores, r.Env.OVN, r.Env.Kubernetes)
	var rows []row
	if r.Pods != nil {
		rows = append(rows, r.Pods.rows()...)
	}
	if r.Baseline != nil {
		rows = append(rows, r.Baseline.rows()...)
	}
	if r.Services != nil {
		rows = append(rows, r.Services.rows()...)
	}
	if r.Policies != nil {
		rows = append(rows, r.Policies.rows()...)
	}
	if r.Restart != nil {
		rows = append(rows, r.Restart.rows()...)
	}
	if r.Enforce != nil {
		rows = append(rows, r.Enforce.rows()...)
	}
	if r.PodReady != nil {
		rows = append(rows, r.PodReady.rows()...)
	}
	if r.Cleanup != nil {
		rows = append(rows, r.Cleanup.rows()...)
	}
	if len(r.Env.OtherNamespaces) > 0 {
		rows = append(rows, row{"note", fmt.Sprintf("lab shared with %d other namespaces (%v)", len(r.Env.OtherNamespaces), r.Env.OtherNamespaces)})
	}
	if r.Error != "" {
		rows = append(rows, row{"ERROR", r.Error})
	}
	for _, x := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", x.k, x.v)
	}
	tw.Flush()
}

func fs(v float64) string { return fmt.Sprintf("%.3f s", v) }

func mb(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/1e6) }

// busiest lists the n largest CPU figures, biggest first.
func busiest(cpu map[string]float64, n int) string {
	keys := make([]string, 0, len(cpu))
	for k := range cpu {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return cpu[keys[i]] > cpu[keys[j]] })
	var parts []string
	for _, k := range keys[:min(n, len(keys))] {
		parts = append(parts, fmt.Sprintf("%s %.2f", k, cpu[k]))
	}
	return strings.Join(parts, ", ")
}

// apiSummary shows the requests on the resources a run creates (pods
// when none are named), where its API cost lies, with queueing and disk.
func apiSummary(stats map[string]APIStat, resources ...string) string {
	if len(resources) == 0 {
		resources = []string{"pods"}
	}
	var parts []string
	for k, s := range stats {
		ours := strings.HasPrefix(k, "APF") || strings.HasPrefix(k, "etcd")
		for _, r := range resources {
			ours = ours || strings.HasSuffix(k, " "+r)
		}
		if ours {
			parts = append(parts, fmt.Sprintf("%s %.0f × %.1f ms", k, s.Count, s.MeanMs))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}
