package metricsdoc

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestDocTable: every row of docs/metrics.md names a component that has a
// test comparing it (cmd/kovn-controller, cmd/kovn-node) and a known type.
func TestDocTable(t *testing.T) {
	rows, err := ReadTable("../../../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) < 10 {
		t.Fatalf("only %d rows read from docs/metrics.md", len(rows))
	}
	for name, m := range rows {
		if m.Component != "controller" && m.Component != "node" {
			t.Errorf("%s: component %q, want controller or node", name, m.Component)
		}
		if !slices.Contains([]string{"counter", "gauge", "histogram", "summary"}, m.Type) {
			t.Errorf("%s: type %q", name, m.Type)
		}
	}
}

type constCollector struct{ desc *prometheus.Desc }

func (c constCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }
func (c constCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, 1, "x")
}

type silentCollector struct{ desc *prometheus.Desc }

func (c silentCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }
func (c silentCollector) Collect(chan<- prometheus.Metric)    {}

func TestRecorderAndCompare(t *testing.T) {
	rec := NewRecorder(prometheus.NewRegistry())
	rec.MustRegister(
		prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kovn_a_total", Help: `with "quotes" and {braces}`}, []string{"z", "a"}),
		prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kovn_b_seconds", Help: "b"}),
		constCollector{prometheus.NewDesc("kovn_c", "c", []string{"l"}, prometheus.Labels{"const": "v"})},
		silentCollector{prometheus.NewDesc("kovn_d", "d", nil, nil)},
		prometheus.NewCounter(prometheus.CounterOpts{Name: "other_total", Help: "not kovn's"}),
	)
	gone := prometheus.NewGauge(prometheus.GaugeOpts{Name: "kovn_gone", Help: "unregistered"})
	rec.MustRegister(gone)
	rec.Unregister(gone)
	got, err := rec.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Metric{
		"kovn_a_total":   {Name: "kovn_a_total", Type: "counter", Labels: []string{"a", "z"}},
		"kovn_b_seconds": {Name: "kovn_b_seconds", Type: "histogram"},
		"kovn_c":         {Name: "kovn_c", Type: "gauge", Labels: []string{"l"}},
		"kovn_d":         {Name: "kovn_d"},
	}
	if len(got) != len(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for name, w := range want {
		g := got[name]
		if g.Name != w.Name || g.Type != w.Type || !slices.Equal(g.Labels, w.Labels) {
			t.Errorf("%s: got %+v, want %+v", name, g, w)
		}
	}

	doc := filepath.Join(t.TempDir(), "metrics.md")
	table := "| metric | type | labels | component | meaning |\n|---|---|---|---|---|\n" +
		"| `kovn_a_total` | counter | `a`, `z` | node | a |\n" +
		"| `kovn_b_seconds` | gauge | | node | b, wrong type |\n" +
		"| `kovn_c` | gauge | `l` | controller | wrong component |\n" +
		"| `kovn_e` | gauge | | node | not registered |\n" +
		"| `kovn_f` | gauge | | controller | another component's |\n" +
		"`kovn_x` in prose is not a row\n"
	if err := os.WriteFile(doc, []byte(table), 0o644); err != nil {
		t.Fatal(err)
	}
	documented, err := ReadTable(doc)
	if err != nil {
		t.Fatal(err)
	}
	diffs := strings.Join(Compare("node", got, documented), "\n")
	for _, w := range []string{
		"kovn_b_seconds: type histogram registered, gauge documented",
		`kovn_c: docs/metrics.md says component "controller"`,
		"kovn_d (registered by node) is not in docs/metrics.md",
		"kovn_e is documented for node but not registered",
	} {
		if !strings.Contains(diffs, w) {
			t.Errorf("differences lack %q:\n%s", w, diffs)
		}
	}
	for _, no := range []string{"kovn_a_total", "kovn_f", "kovn_x", "other_total"} {
		if strings.Contains(diffs, no) {
			t.Errorf("differences mention %s:\n%s", no, diffs)
		}
	}
}
