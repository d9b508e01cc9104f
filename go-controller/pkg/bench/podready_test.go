package bench

import (
	"maps"
	"math"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"
)

// nodeExposition is kovn-node's /metrics after three ADDs, trimmed to
// the families around the one read, as client_golang writes them.
const nodeExposition = `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 42
# HELP kovn_cni_add_phase_seconds CNI ADD split into waiting for the pod annotation, plumbing, and waiting for ovn-installed
# TYPE kovn_cni_add_phase_seconds histogram
kovn_cni_add_phase_seconds_bucket{phase="annotation",le="0.001"} 3
kovn_cni_add_phase_seconds_bucket{phase="annotation",le="0.002"} 3
kovn_cni_add_phase_seconds_bucket{phase="annotation",le="0.004"} 3
kovn_cni_add_phase_seconds_bucket{phase="annotation",le="0.008"} 3
kovn_cni_add_phase_seconds_bucket{phase="annotation",le="0.016"} 3
kovn_cni_add_phase_seconds_bucket{phase="annotation",le="0.032"} 3
kovn_cni_add_phase_seconds_bucket{phase="annotation",le="0.064"} 3
kovn_cni_add_phase_seconds_bucket{phase="annotation",le="0.128"} 3
kovn_cni_add_phase_seconds_bucket{phase="annotation",le="0.256"} 3
kovn_cni_add_phase_seconds_bucket{phase="annotation",le="0.512"} 3
kovn_cni_add_phase_seconds_bucket{phase="annotation",le="1.024"} 3
kovn_cni_add_phase_seconds_bucket{phase="annotation",le="2.048"} 3
kovn_cni_add_phase_seconds_bucket{phase="annotation",le="4.096"} 3
kovn_cni_add_phase_seconds_bucket{phase="annotation",le="8.192"} 3
kovn_cni_add_phase_seconds_bucket{phase="annotation",le="16.384"} 3
kovn_cni_add_phase_seconds_bucket{phase="annotation",le="+Inf"} 3
kovn_cni_add_phase_seconds_sum{phase="annotation"} 0.00021
kovn_cni_add_phase_seconds_count{phase="annotation"} 3
kovn_cni_add_phase_seconds_bucket{phase="ovn-installed",le="0.001"} 0
kovn_cni_add_phase_seconds_bucket{phase="ovn-installed",le="0.002"} 0
kovn_cni_add_phase_seconds_bucket{phase="ovn-installed",le="0.004"} 1
kovn_cni_add_phase_seconds_bucket{phase="ovn-installed",le="0.008"} 1
kovn_cni_add_phase_seconds_bucket{phase="ovn-installed",le="0.016"} 1
kovn_cni_add_phase_seconds_bucket{phase="ovn-installed",le="0.032"} 3
kovn_cni_add_phase_seconds_bucket{phase="ovn-installed",le="+Inf"} 3
kovn_cni_add_phase_seconds_sum{phase="ovn-installed"} 0.054
kovn_cni_add_phase_seconds_count{phase="ovn-installed"} 3
kovn_cni_add_phase_seconds_bucket{phase="plumbing",le="0.004"} 0
kovn_cni_add_phase_seconds_bucket{phase="plumbing",le="0.008"} 2
kovn_cni_add_phase_seconds_bucket{phase="plumbing",le="0.016"} 2
kovn_cni_add_phase_seconds_bucket{phase="plumbing",le="0.032"} 2
kovn_cni_add_phase_seconds_bucket{phase="plumbing",le="0.064"} 2
kovn_cni_add_phase_seconds_bucket{phase="plumbing",le="0.128"} 3
kovn_cni_add_phase_seconds_bucket{phase="plumbing",le="+Inf"} 3
kovn_cni_add_phase_seconds_sum{phase="plumbing"} 0.122
kovn_cni_add_phase_seconds_count{phase="plumbing"} 3
# HELP kovn_cni_del_phase_seconds CNI DEL split into deleting the OVS port and deleting the veth
# TYPE kovn_cni_del_phase_seconds histogram
kovn_cni_del_phase_seconds_bucket{phase="ovs-port",le="0.001"} 1
kovn_cni_del_phase_seconds_bucket{phase="ovs-port",le="+Inf"} 2
kovn_cni_del_phase_seconds_sum{phase="ovs-port"} 0.003
kovn_cni_del_phase_seconds_count{phase="ovs-port"} 2
# HELP kovn_node_pod_ports pod ports on br-int, by state (installed, pending, error)
# TYPE kovn_node_pod_ports gauge
kovn_node_pod_ports{state="error"} 0
kovn_node_pod_ports{state="installed"} 3
kovn_node_pod_ports{state="pending"} 1
`

func TestParseHistograms(t *testing.T) {
	hs, err := parseHistograms(nodeExposition, cniAddMetric, "phase")
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(hs)); !slices.Equal(got, []string{"annotation", "ovn-installed", "plumbing"}) {
		t.Fatalf("phases %v", got)
	}
	p := hs["plumbing"]
	if p.count != 3 || p.sum != 0.122 || p.total() != 3 || p.buckets[0.008] != 2 || p.buckets[0.064] != 2 || len(p.buckets) != 7 {
		t.Errorf("plumbing: %+v", p)
	}
	if a := hs["annotation"]; len(a.buckets) != 16 || a.total() != 3 || a.sum != 0.00021 {
		t.Errorf("annotation: %+v", a)
	}
	if ports := parseMetrics(nodeExposition, "kovn_node_pod_ports").Sum("kovn_node_pod_ports"); ports != 4 {
		t.Errorf("pod ports %v, want 4", ports)
	}

	const typ = "# TYPE x histogram\n"
	for _, tc := range []struct{ name, text string }{
		{"bad le", typ + "x_bucket{phase=\"a\",le=\"fast\"} 1\n"},
		{"unterminated label", typ + "x_bucket{phase=\"a} 1\n"},
		{"bad value", typ + "x_count{phase=\"a\"} many\n"},
		{"not a histogram", "# TYPE x counter\nx{phase=\"a\"} 1\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := parseHistograms(tc.text, "x", "phase"); err == nil {
				t.Error("no error")
			}
		})
	}
}

func hist(sum float64, buckets map[float64]float64) histogram {
	return histogram{buckets: buckets, sum: sum, count: buckets[math.Inf(1)]}
}

func TestHistogramQuantile(t *testing.T) {
	inf := math.Inf(1)
	for _, tc := range []struct {
		name string
		h    histogram
		q    float64
		want float64 // NaN: none
	}{
		{"inside a bucket", hist(0, map[float64]float64{0.001: 2, 0.002: 6, 0.004: 10, inf: 10}), 0.5, 0.00175},
		{"p99", hist(0, map[float64]float64{0.001: 2, 0.002: 6, 0.004: 10, inf: 10}), 0.99, 0.00395},
		{"first bucket from 0", hist(0, map[float64]float64{0.001: 10, 0.002: 10, inf: 10}), 0.5, 0.0005},
		{"rank in +Inf: largest finite bound", hist(0, map[float64]float64{0.001: 1, 0.002: 1, inf: 10}), 0.5, 0.002},
		{"rank on a bound", hist(0, map[float64]float64{0.001: 5, 0.002: 10, inf: 10}), 0.5, 0.001},
		{"empty", hist(0, map[float64]float64{0.001: 0, inf: 0}), 0.5, math.NaN()},
		{"no +Inf", histogram{buckets: map[float64]float64{0.001: 3}}, 0.5, math.NaN()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.h.quantile(tc.q)
			if math.IsNaN(tc.want) != math.IsNaN(got) || (!math.IsNaN(got) && math.Abs(got-tc.want) > 1e-12) {
				t.Errorf("quantile(%v) = %v, want %v", tc.q, got, tc.want)
			}
		})
	}
}

func TestCNIDelta(t *testing.T) {
	inf := math.Inf(1)
	base, err := parseHistograms(nodeExposition, cniAddMetric, "phase")
	if err != nil {
		t.Fatal(err)
	}
	// node1 went from nothing to the fixture's three ADDs; node2 had the
	// fixture's and added one more plumbing of 100 ms and nothing else.
	node2After := map[string]histogram{"annotation": base["annotation"], "ovn-installed": base["ovn-installed"],
		"plumbing": hist(0.222, map[float64]float64{0.004: 0, 0.008: 2, 0.016: 2, 0.032: 2, 0.064: 2, 0.128: 4, inf: 4})}
	before := cniSnapshot{hists: map[string]map[string]histogram{"node1": {}, "node2": base}}
	after := cniSnapshot{hists: map[string]map[string]histogram{"node1": base, "node2": node2After}}
	got, err := cniDelta(before, after)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]CNIPhase{
		"annotation":    {Count: 3, MeanMs: 0.07, P50Ms: 0.5, P99Ms: 0.99},
		"ovn-installed": {Count: 3, MeanMs: 18, P50Ms: 20, P99Ms: 31.76},
		// 0.122 + 0.1 s over 4: 5, 7, 110 and 100 ms
		"plumbing": {Count: 4, MeanMs: 55.5, P50Ms: 8, P99Ms: 126.72},
	}
	for ph, w := range want {
		if got[ph] != w {
			t.Errorf("%s: got %+v, want %+v", ph, got[ph], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("phases %v", got)
	}

	// A restarted kovn-node: counters lower than before.
	if _, err := cniDelta(after, before); err == nil || !strings.Contains(err.Error(), "restarted") {
		t.Errorf("restart not detected: %v", err)
	}
	if _, err := cniDelta(cniSnapshot{}, after); err == nil {
		t.Error("a node missing from the first scrape must fail")
	}
}

// TestCNIFromClientGolang reads a histogram as kovn-node's registry
// serves it, with kovn-node's buckets.
func TestCNIFromClientGolang(t *testing.T) {
	reg := prometheus.NewRegistry()
	hv := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: cniAddMetric, Help: "CNI ADD by phase",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 15)}, []string{"phase"})
	reg.MustRegister(hv)
	// 0.5, 1.5, …, 99.5 ms: none on a bucket bound.
	for i := range 100 {
		hv.WithLabelValues("plumbing").Observe((float64(i) + 0.5) / 1000)
	}
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	hs, err := parseHistograms(rec.Body.String(), cniAddMetric, "phase")
	if err != nil {
		t.Fatal(err)
	}
	// p50: rank 50 of the 32 < 50 ≤ 64 in (32, 64] ms; p99: rank 99 of
	// the 64 < 99 ≤ 100 in (64, 128] ms.
	want := CNIPhase{Count: 100, MeanMs: 50, P50Ms: 50, P99Ms: 126.222}
	if got := hs["plumbing"].summary(); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestSummarisePodReady(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	pods := podReadyPods("burst", 5, []string{"node1", "node2"}, "pause")
	if pods[3].Name != "burst-003" || pods[3].Spec.NodeName != "node2" || pods[4].Spec.NodeName != "node1" {
		t.Fatalf("naming or round-robin: %s on %s", pods[3].Name, pods[3].Spec.NodeName)
	}
	created := map[string]time.Time{"burst-000": at(0), "burst-001": at(10), "burst-002": at(20), "burst-003": at(30)}
	ready := map[string]time.Time{"burst-000": at(900), "burst-001": at(510), "burst-002": at(1520)}
	ph, err := summarisePodReady(pods[:3], created, ready, nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if ph.Pods != 3 || ph.Failed != 0 || !slices.Equal(ph.ReadyMs, []float64{500, 900, 1500}) ||
		ph.Ready.P50Ms != 900 || ph.Ready.MaxMs != 1500 || ph.FirstToLastSeconds != 1.52 {
		t.Errorf("got %+v", ph)
	}

	// burst-003 never Ready, burst-004's create refused.
	ph, err = summarisePodReady(pods, created, ready, map[string]error{"burst-004": errString("quota")}, time.Minute)
	if ph.Pods != 5 || ph.Failed != 2 || len(ph.ReadyMs) != 3 {
		t.Errorf("got %+v", ph)
	}
	if err == nil || !strings.Contains(err.Error(), "1 of 5 pods not Ready within 1m0s: burst-003 on node2") ||
		!strings.Contains(err.Error(), "1 of 5 creates failed: burst-004: quota") {
		t.Errorf("error %v", err)
	}
	if got := someOf([]string{"a", "b", "c"}, 2); got != "a, b and 1 more" {
		t.Errorf("someOf: %q", got)
	}
}

type errString string

func (e errString) Error() string { return string(e) }

func TestPodIsReady(t *testing.T) {
	pod := func(conds ...corev1.PodCondition) *corev1.Pod {
		return &corev1.Pod{Status: corev1.PodStatus{Conditions: conds}}
	}
	for _, tc := range []struct {
		p    *corev1.Pod
		want bool
	}{
		{pod(), false},
		{pod(corev1.PodCondition{Type: corev1.ContainersReady, Status: corev1.ConditionTrue}), false},
		{pod(corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}, corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionFalse}), false},
		{pod(corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue}), true},
	} {
		if got := podIsReady(tc.p); got != tc.want {
			t.Errorf("%v: got %v", tc.p.Status.Conditions, got)
		}
	}
}

func TestPodReadyOptions(t *testing.T) {
	d := DefaultPodReady()
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	if n := d.steadyPods(); n != 300 {
		t.Errorf("steady pods %d, want 300 (5/s for 60 s)", n)
	}
	if got := steadyOffset(7, d.Rate); got != 1400*time.Millisecond {
		t.Errorf("offset of the 8th create %v, want 1.4s", got)
	}
	for name, mod := range map[string]func(*PodReadyOptions){
		"nothing":         func(o *PodReadyOptions) { o.Burst, o.Rate = 0, 0 },
		"no writers":      func(o *PodReadyOptions) { o.Writers = 0 },
		"no pod at rate":  func(o *PodReadyOptions) { o.Duration = 50 * time.Millisecond },
		"negative age":    func(o *PodReadyOptions) { o.Age = -time.Second },
		"no timeout":      func(o *PodReadyOptions) { o.Timeout = 0 },
		"negative burst":  func(o *PodReadyOptions) { o.Burst = -1 },
		"negative rate":   func(o *PodReadyOptions) { o.Rate = -1 },
		"negative length": func(o *PodReadyOptions) { o.Duration = -time.Second },
	} {
		o := DefaultPodReady()
		mod(&o)
		if o.Validate() == nil {
			t.Errorf("%s: accepted %+v", name, o)
		}
	}
}

func TestPodReadyRows(t *testing.T) {
	r := &PodReadyResult{Nodes: []string{"node1", "node2"}, Writers: 32, Rate: 5, DurationSeconds: 60, AgeSeconds: 10,
		Burst: PodReadyPhase{Pods: 100, Ready: Dist{N: 100, P50Ms: 800, P90Ms: 1100, P99Ms: 1900, MaxMs: 2000}, FirstToLastSeconds: 2.5,
			CNI: map[string]CNIPhase{"annotation": {Count: 100, MeanMs: 0.07, P50Ms: 0.5, P99Ms: 0.99}, "plumbing": {Count: 100, MeanMs: 12, P50Ms: 7, P99Ms: 108}}}}
	var b strings.Builder
	(&Report{Scenario: "podready", PodReady: r}).PrintTable(&b)
	out := b.String()
	for _, want := range []string{
		"pod ready, burst of 100: creation → Ready",
		"p50 800 ms, p90 1100 ms, p99 1900 ms, max 2000 ms",
		"burst: pods / failed / first create → last Ready",
		"100 / 0 / 2.500 s (32 writers)",
		"burst: CNI ADD annotation wait",
		"n=100, mean 0.07 ms, p50 ≈0.50 ms, p99 ≈0.99 ms (from histogram buckets)",
		"p99 ≈108 ms",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "steady") || strings.Contains(out, "ovn-installed") {
		t.Errorf("table shows a phase not run:\n%s", out)
	}
}
