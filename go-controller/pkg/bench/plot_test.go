package bench

import (
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// samplesJSON is a Results with every kind of sample: enforce, pods,
// services and policies from their Go types (so that the plots' JSON names are checked
// against theirs), pod-ready as raw JSON (its types live elsewhere).
func samplesJSON(t *testing.T) []byte {
	t.Helper()
	res := Results{Runs: []Report{
		{Scenario: "enforce", Enforce: &EnforceResult{Clients: []EnforceClient{
			{Kind: "same-node", DenyMs: []float64{31, 25, 42, 53}, RestoreMs: []float64{26, 331, 1970}},
			{Kind: "other-node", DenyMs: []float64{23, 33}, RestoreMs: []float64{22, 131}},
		}}},
		{Scenario: "pods", Pods: &PodsResult{Workload: Workload{Nodes: 5, Pods: 100},
			BurstSamples: BurstSamples{LatencyFromCreateMs: []float64{40, 55, 90}},
			WatchSplit:   WatchSplit{WatchFromAnswerMs: []float64{-0.4, 1.2, 3}, PortFromWatchMs: []float64{30, 52, 88}}}},
		{Scenario: "pods", Pods: &PodsResult{Workload: W1(), BurstSamples: BurstSamples{LatencyFromCreateMs: []float64{2120, 2640}}}},
		{Scenario: "services", Services: &ServicesResult{Shape: W2(), BurstSamples: BurstSamples{LatencyFromCreateMs: []float64{390, 680}},
			Updates: &UpdatesResult{LatencyFromAnswerMs: []float64{3.2, 0, 11.5, 20.2}}}},
		{Scenario: "services", Services: &ServicesResult{Shape: ServiceShape{Services: 500, Endpoints: 5}, Updates: &UpdatesResult{LatencyFromAnswerMs: []float64{3}}}},
		{Scenario: "policies", Policies: &PoliciesResult{Policies: 200, BurstSamples: BurstSamples{LatencyFromCreateMs: []float64{20, 50, 487}}}},
	}}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var generic map[string][]json.RawMessage
	if err := json.Unmarshal(b, &generic); err != nil {
		t.Fatal(err)
	}
	generic["runs"] = append(generic["runs"], json.RawMessage(`{"scenario":"podready","podReady":{"burst":{"readyMs":[800,1200,950]},"steady":{"readyMs":[400]}}}`))
	if b, err = json.Marshal(generic); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPlotWritesPNGs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "plots")
	files, err := Plot(samplesJSON(t), dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
		r, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(r)
		r.Close()
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if b := img.Bounds(); b.Dx() < 400 || b.Dy() < 250 || b.Dx() > 4000 || b.Dy() > 4000 {
			t.Errorf("%s: %v", f, b)
		}
	}
	if want := []string{"enforce.png", "podready.png", "pods.png", "pods-split.png", "services.png", "services-endpoint-update.png", "policies.png"}; !slices.Equal(names, want) {
		t.Errorf("wrote %v, want %v", names, want)
	}
}

func TestPlotSeries(t *testing.T) {
	runs, err := decodeRuns(samplesJSON(t))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range figures(runs) {
		for _, s := range f.series {
			got = append(got, f.file+": "+s.label)
		}
	}
	want := []string{
		"enforce.png: same-node deny", "enforce.png: same-node restore",
		"enforce.png: other-node deny", "enforce.png: other-node restore",
		"podready.png: burst", "podready.png: steady",
		"pods.png: 100 pods / 5 nodes", "pods.png: 1000 pods / 3 nodes",
		"pods-split.png: 100 pods / 5 nodes: answered → watch", "pods-split.png: 100 pods / 5 nodes: watch → port",
		"services.png: 200 services × 5 endpoints",
		"services-endpoint-update.png: 200 services × 5 endpoints",
		"services-endpoint-update.png: 500 services × 5 endpoints",
		"policies.png: 200 policies",
	}
	if !slices.Equal(got, want) {
		t.Errorf("series %q, want %q", got, want)
	}
	// A post-step line from 0 at the smallest sample, 1/n up per sample.
	if pts := ecdf([]float64{30, 10, 20}); len(pts) != 4 || pts[0].X != 10 || pts[0].Y != 0 || pts[3].X != 30 || pts[3].Y != 1 || pts[1].Y != 1.0/3 {
		t.Errorf("ecdf %v", pts)
	}
}

func TestPlotNoSamples(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "plots")
	// Summaries without samples (reports from before they were kept), a
	// single Report, and no runs at all.
	res, err := json.Marshal(Results{Runs: []Report{
		{Scenario: "enforce", Enforce: &EnforceResult{Clients: []EnforceClient{{Kind: "same-node", Deny: Dist{N: 3}}}}},
		{Scenario: "services", Services: &ServicesResult{Updates: &UpdatesResult{Updates: 100}}},
		{Scenario: "pods", Pods: &PodsResult{LatencyFromCreate: Dist{N: 1000}}},
		{Scenario: "policies", Policies: &PoliciesResult{LatencyFromCreate: Dist{N: 200}}},
		{Scenario: "services", Services: &ServicesResult{LatencyFromCreate: Dist{N: 200}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{string(res), `{"scenario":"enforce","enforce":{"clients":[]}}`, `{"runs":[]}`, `{"runs":[{"podReady":{"burst":{}}}]}`} {
		files, err := Plot([]byte(in), dir)
		if err != nil || len(files) != 0 {
			t.Errorf("%s: wrote %v, %v", in, files, err)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s made: %v", dir, err)
	}
	if _, err := Plot([]byte("not json"), dir); err == nil {
		t.Error("bad JSON accepted")
	}
}
