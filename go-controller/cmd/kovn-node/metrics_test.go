package main

import (
	"testing"

	"github.com/kovn-io/kovn/go-controller/pkg/metrics"
	"github.com/kovn-io/kovn/go-controller/pkg/metrics/metricsdoc"
	"github.com/kovn-io/kovn/go-controller/pkg/node/agent"
)

// TestMetricsDocumented registers kovn-node's metrics as main does and
// compares every kovn_* metric with the table in docs/metrics.md.
func TestMetricsDocumented(t *testing.T) {
	rec := metricsdoc.NewRecorder(metrics.NewRegistry())
	m := agent.NewMetrics(rec)
	if m.Ready() {
		t.Error("ready before Run")
	}
	got, err := rec.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	documented, err := metricsdoc.ReadTable("../../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range metricsdoc.Compare("node", got, documented) {
		t.Error(d)
	}
	if len(got) == 0 {
		t.Fatal("no kovn_* metric registered")
	}
}
