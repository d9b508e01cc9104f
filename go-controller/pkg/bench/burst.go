package bench

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kovn-io/kovn/go-controller/pkg/lab"
)

// createPods creates the pods with writers in parallel and notes when
// each create was sent and answered.
func createPods(ctx context.Context, cs kubernetes.Interface, refs []PodRef, writers int, obj func(PodRef) *corev1.Pod) (sent, answered []time.Time, err error) {
	sent, answered = make([]time.Time, len(refs)), make([]time.Time, len(refs))
	err = parallel(len(refs), writers, func(i int) error {
		sent[i] = time.Now()
		_, err := cs.CoreV1().Pods(refs[i].Namespace).Create(ctx, obj(refs[i]), metav1.CreateOptions{})
		answered[i] = time.Now()
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("create pods: %w", err)
	}
	return sent, answered, nil
}

// apiPhase is the first create sent and the last one answered.
func apiPhase(sent, answered []time.Time) (t0, last time.Time) {
	t0, last = sent[0], answered[0]
	for i := range sent {
		if sent[i].Before(t0) {
			t0 = sent[i]
		}
		if answered[i].After(last) {
			last = answered[i]
		}
	}
	return t0, last
}

// timeline samples the run in up to ~60 steps of at least 50 ms.
func timeline(t0 time.Time, answered []time.Time, ports map[string]time.Time) []TimelinePoint {
	end := Last(ports)
	for _, a := range answered {
		if a.After(end) {
			end = a
		}
	}
	step := max(50*time.Millisecond, end.Sub(t0)/60).Round(10 * time.Millisecond)
	var out []TimelinePoint
	for at := t0.Add(step); ; at = at.Add(step) {
		p := TimelinePoint{Ms: at.Sub(t0).Milliseconds()}
		for _, a := range answered {
			if !a.After(at) {
				p.Created++
			}
		}
		for _, t := range ports {
			if !t.After(at) {
				p.Ports++
			}
		}
		out = append(out, p)
		if !at.Before(end) {
			return out
		}
	}
}

// BurstSamples are a burst's per-item latencies, each sorted, in ms: the
// distributions whose summaries the result gives (apiCreateLatency,
// latencyFromCreate, latencyFromAnswer), kept whole so that kovn-bench
// plot can draw them. Reports from before they were kept lack them.
type BurstSamples struct {
	APICreateMs         []float64 `json:"apiCreateMs,omitempty"`
	LatencyFromCreateMs []float64 `json:"latencyFromCreateMs,omitempty"`
	LatencyFromAnswerMs []float64 `json:"latencyFromAnswerMs,omitempty"`
}

func (b burstTimes) samples() BurstSamples {
	return BurstSamples{APICreateMs: sortedMs(b.api), LatencyFromCreateMs: sortedMs(b.fromCreate), LatencyFromAnswerMs: sortedMs(b.fromAnswer)}
}

// sortedMs is ds in ms, sorted: the form every kept sample takes.
func sortedMs(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = ms(d)
	}
	slices.Sort(out)
	return out
}

// BaselineResult is the API server's cost of a pod burst on its own.
type BaselineResult struct {
	Workload            Workload           `json:"workload"`
	APICreateSeconds    float64            `json:"apiCreateSeconds"`
	APICreatesPerSecond float64            `json:"apiCreatesPerSecond"`
	APICreateLatency    Dist               `json:"apiCreateLatency"`
	APICreateMs         []float64          `json:"apiCreateMs,omitempty"` // every pod's, sorted
	NBTransactions      float64            `json:"nbTransactions"`        // the leader's, should be 0
	ComponentCPUSeconds map[string]float64 `json:"componentCpuSeconds"`
	CPUWindowSeconds    float64            `json:"cpuWindowSeconds"`
	APIServer           map[string]APIStat `json:"apiServer"`
	Profile             *CPUProfile        `json:"profile,omitempty"` // perf's samples over the creates
	Warnings            []string           `json:"warnings,omitempty"`
}

// RunBaseline creates the workload's pods with hostNetwork, which kovn
// leaves alone (no address to write back, no port): what the same burst
// costs the API server without the controller's work, to tell the two
// apart. Objects are left for the caller to clean up.
func RunBaseline(ctx context.Context, l *lab.Lab, cs kubernetes.Interface, opts PodsOptions) (*BaselineResult, error) {
	wl := opts.Workload
	if err := wl.Validate(); err != nil {
		return nil, err
	}
	if err := Preflight(ctx, cs); err != nil {
		return nil, err
	}
	leader, err := Leader(ctx, l, cs)
	if err != nil {
		return nil, err
	}
	w, err := NewWatcher(ctx, "unix:"+l.NBSocket())
	if err != nil {
		return nil, err
	}
	defer w.Close()
	res := &BaselineResult{Workload: wl}
	if _, err := SetupNodes(ctx, cs, w, wl.Nodes, wl.Writers, opts.Timeout); err != nil {
		return res, err
	}
	if _, err := SetupNamespaces(ctx, cs, w, opts.Timeout); err != nil {
		return res, err
	}
	sc := NewScraper()
	mBefore, err := settle(ctx, sc, leader, 300*time.Millisecond, 10*time.Second)
	if err != nil {
		return res, err
	}
	apiBefore, errA := APIServerMetrics(ctx, cs)
	// The API server's own profile of the burst, beside the pods run's:
	// what it spends without kovn's watches, PATCHes and reads.
	prof := startProfile(opts.Perf)
	defer prof.close()
	cpuBefore, cpuStart := CPUSnapshot(l), time.Now()
	sent, answered, err := createPods(ctx, cs, wl.PodList(), wl.Writers, func(r PodRef) *corev1.Pod {
		p := PodObj(r, l.Images["pause"])
		p.Spec.HostNetwork = true
		return p
	})
	if err != nil {
		return res, err
	}
	res.ComponentCPUSeconds, res.CPUWindowSeconds = CPUDelta(cpuBefore, CPUSnapshot(l)), secs(time.Since(cpuStart))
	prof.pause()
	if apiAfter, err := APIServerMetrics(ctx, cs); err == nil && errA == nil {
		res.APIServer = APIStats(apiBefore, apiAfter)
		res.Warnings = liveLookupWarning(res.APIServer)
	}
	var perr error
	if res.Profile, perr = prof.finish(ctx); perr != nil {
		res.Warnings = append(res.Warnings, perr.Error())
	}
	t0, last := apiPhase(sent, answered)
	res.APICreateSeconds = secs(last.Sub(t0))
	res.APICreatesPerSecond = round(float64(len(sent))/last.Sub(t0).Seconds(), 1)
	api := make([]time.Duration, len(sent))
	for i := range sent {
		api[i] = answered[i].Sub(sent[i])
	}
	res.APICreateLatency, res.APICreateMs = Summarise(api), sortedMs(api)
	if mAfter, err := settle(ctx, sc, leader, time.Second, 10*time.Second); err == nil {
		res.NBTransactions = mAfter.Sum("kovn_nb_transactions_total") - mBefore.Sum("kovn_nb_transactions_total")
	}
	return res, nil
}

func (r *BaselineResult) rows() []row {
	rows := []row{
		{"workload (hostNetwork pods)", fmt.Sprintf("%d nodes, %d pods, %d writers", r.Workload.Nodes, r.Workload.Pods, r.Workload.Writers)},
		{"API create phase", fmt.Sprintf("%s (%.0f creates/s)", fs(r.APICreateSeconds), r.APICreatesPerSecond)},
		{"  create latency", r.APICreateLatency.String()},
		{"CPU seconds", fmt.Sprintf("in %.2f s: %s", r.CPUWindowSeconds, busiest(r.ComponentCPUSeconds, 8))},
		{"API server (count, mean)", apiSummary(r.APIServer)},
		{"NB transactions (leader)", fmt.Sprintf("%.0f", r.NBTransactions)},
	}
	rows = append(rows, r.Profile.rows("")...)
	for _, w := range r.Warnings {
		rows = append(rows, row{"WARNING", w})
	}
	return rows
}
