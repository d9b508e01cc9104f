package bench

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kovn-io/kovn/go-controller/pkg/lab"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
)

// PodsResult holds every figure of a pods run. Times count from the first
// pod create sent; NB and CPU figures cover the pod phase only (nodes and
// namespaces are set up, and the controller quiet, before it starts).
type PodsResult struct {
	Workload              Workload `json:"workload"`
	Leader                Replica  `json:"leader"`
	NodeSetupSeconds      float64  `json:"nodeSetupSeconds"`      // node creates → subnets recorded, switches and GRs in NB
	NamespaceSetupSeconds float64  `json:"namespaceSetupSeconds"` // namespace creates → address sets in NB

	APICreateSeconds       float64 `json:"apiCreateSeconds"`       // first create sent → last create answered
	APICreatesPerSecond    float64 `json:"apiCreatesPerSecond"`    //
	AllPortsSeconds        float64 `json:"allPortsSeconds"`        // first create sent → last pod LSP in NB: W1's figure
	AfterLastCreateSeconds float64 `json:"afterLastCreateSeconds"` // last create answered → last LSP: the controller's lag
	PodsPerSecond          float64 `json:"podsPerSecond"`          // pods / allPortsSeconds
	APICreateLatency       Dist    `json:"apiCreateLatency"`       // per pod: create sent → answered
	LatencyFromCreate      Dist    `json:"latencyFromCreate"`      // per pod: create sent → its LSP
	LatencyFromAnswer      Dist    `json:"latencyFromAnswer"`      // per pod: create answered → its LSP
	LateDetected           int     `json:"lateDetected"`           // LSPs seen by rescan, not event (should be 0)
	BurstSamples                   // every pod's latencies of the three above
	WatchSplit                     // latencyFromAnswer split at kovn-bench's own watch of the pods

	NBTransactionsPerPod float64 `json:"nbTransactionsPerPod"`
	NBOperationsPerPod   float64 `json:"nbOperationsPerPod"`
	Costs                        // of the pod phase: first create → all LSPs

	Timeline []TimelinePoint `json:"timeline"`
}

// TimelinePoint is how far the API and NB were at a moment of the run.
type TimelinePoint struct {
	Ms      int64 `json:"ms"`
	Created int   `json:"created"` // creates answered
	Ports   int   `json:"ports"`   // LSPs in NB
}

// PodsOptions configure a run.
type PodsOptions struct {
	Workload Workload
	Timeout  time.Duration // for each wait
	Perf     PerfOptions   // profile of the pod phase (RunPods)
}

// RunPods runs the pod programming scenario. The objects it made are left
// for the caller to clean up (or keep), also when it fails.
func RunPods(ctx context.Context, l *lab.Lab, cs kubernetes.Interface, opts PodsOptions) (*PodsResult, error) {
	wl := opts.Workload
	if err := wl.Validate(); err != nil {
		return nil, err
	}
	if err := Preflight(ctx, cs); err != nil {
		return nil, err
	}
	sc := NewScraper()
	leader, err := Leader(ctx, l, cs)
	if err != nil {
		return nil, err
	}
	if !sc.Ready(ctx, leader) {
		return nil, fmt.Errorf("leader %s is not ready (/readyz)", leader.Component)
	}
	w, err := NewWatcher(ctx, "unix:"+l.NBSocket())
	if err != nil {
		return nil, err
	}
	defer w.Close()
	res := &PodsResult{Workload: wl, Leader: leader}
	d, err := SetupNodes(ctx, cs, w, wl.Nodes, wl.Writers, opts.Timeout)
	if err != nil {
		return res, err
	}
	res.NodeSetupSeconds = secs(d)
	if err := CheckCapacity(ctx, cs, wl); err != nil {
		return res, err
	}
	if d, err = SetupNamespaces(ctx, cs, w, opts.Timeout); err != nil {
		return res, err
	}
	res.NamespaceSetupSeconds = secs(d)

	refs := wl.PodList()
	names, keys := make([]string, len(refs)), make([]string, len(refs))
	for i, r := range refs {
		names[i], keys[i] = r.PortName(), r.Key()
	}
	// Started before the phase: its list and sync are not the phase's.
	pw, err := startPodWatch(ctx, cs, namespacesOf(refs), len(refs), opts.Timeout)
	if err != nil {
		return res, err
	}
	defer pw.stop()
	ph, err := beginPhase(ctx, l, cs, sc, leader, opts.Perf)
	if err != nil {
		return res, err
	}
	defer ph.close()
	wait := w.Expect(nbdb.LogicalSwitchPortTable, names, false)
	if at, _ := w.Times(wait); len(at) > 0 {
		return res, fmt.Errorf("%d of the pods' ports were in NB before their pods were created", len(at))
	}
	sent, answered, err := createPods(ctx, cs, refs, wl.Writers, func(r PodRef) *corev1.Pod { return PodObj(r, l.Images["pause"]) })
	if err != nil {
		return res, err
	}
	if err := w.Until(ctx, wait, opts.Timeout); err != nil {
		return res, err
	}
	if err := ph.end(ctx, &res.Costs); err != nil {
		return res, err
	}
	ports, late := w.Times(wait)
	res.fill(names, sent, answered, ports, late)
	// Every pod is in NB, so the watch has seen them all unless it lags
	// or broke; the split then leaves the missing ones out.
	if err := pw.waitSeen(ctx, keys, opts.Timeout); err != nil {
		res.Warnings = append(res.Warnings, err.Error()+": the split answered → watch → LSP leaves them out")
	}
	res.WatchSplit = splitAtWatch(answered, pw.times(keys), timesOf(names, ports))
	res.NBTransactionsPerPod = ratio(res.NBTransactions, float64(wl.Pods))
	res.NBOperationsPerPod = ratio(res.NBOperations, float64(wl.Pods))
	ph.settled(ctx, &res.Costs)
	return res, nil
}

func (r *PodsResult) fill(names []string, sent, answered []time.Time, ports map[string]time.Time, late int) {
	b := measureBurst(sent, answered, timesOf(names, ports))
	r.APICreateSeconds, r.APICreatesPerSecond = b.apiSeconds(), b.apiRate()
	r.AllPortsSeconds, r.AfterLastCreateSeconds, r.PodsPerSecond = b.allSeconds(), b.afterLast(), b.doneRate()
	r.LateDetected = late
	r.APICreateLatency, r.LatencyFromCreate, r.LatencyFromAnswer = Summarise(b.api), Summarise(b.fromCreate), Summarise(b.fromAnswer)
	r.BurstSamples = b.samples()
	r.Timeline = timeline(b.t0, answered, ports)
}

// namespacesOf lists the namespaces of refs, each once, in their order.
func namespacesOf(refs []PodRef) []string {
	var out []string
	for _, r := range refs {
		if !slices.Contains(out, r.Namespace) {
			out = append(out, r.Namespace)
		}
	}
	return out
}

// timesOf lists the times of names, in their order.
func timesOf(names []string, at map[string]time.Time) []time.Time {
	out := make([]time.Time, len(names))
	for i, n := range names {
		out[i] = at[n]
	}
	return out
}

// settle waits until the replica's NB transaction counter has not moved
// for quiet (at most limit), and returns the last scrape.
func settle(ctx context.Context, sc *Scraper, r Replica, quiet, limit time.Duration) (Metrics, error) {
	deadline := time.Now().Add(limit)
	m, err := sc.Scrape(ctx, r)
	if err != nil {
		return nil, err
	}
	since := time.Now()
	for time.Since(since) < quiet && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		next, err := sc.Scrape(ctx, r)
		if err != nil {
			return nil, err
		}
		if next.Sum("kovn_nb_transactions_total") != m.Sum("kovn_nb_transactions_total") {
			since = time.Now()
		}
		m = next
	}
	return m, nil
}

func (r *PodsResult) rows() []row {
	rows := []row{
		{"workload", fmt.Sprintf("%s: %d nodes, %d pods, %d writers", r.Workload.Name, r.Workload.Nodes, r.Workload.Pods, r.Workload.Writers)},
		{"leader", fmt.Sprintf("%s (pid %d)", r.Leader.Component, r.Leader.Pid)},
		{"node setup (subnets, switches, GRs)", fs(r.NodeSetupSeconds)},
		{"namespace setup (address sets)", fs(r.NamespaceSetupSeconds)},
	}
	if r.Timeline != nil { // the pod phase completed
		rows = append(rows, []row{
			{"API create phase", fmt.Sprintf("%s (%.0f creates/s)", fs(r.APICreateSeconds), r.APICreatesPerSecond)},
			{"  create latency", r.APICreateLatency.String()},
			{"all ports in NB (from first create)", fmt.Sprintf("%s (%.0f pods/s)", fs(r.AllPortsSeconds), r.PodsPerSecond)},
			{"  after the last create answered", fs(r.AfterLastCreateSeconds)},
			{"latency create → LSP", r.LatencyFromCreate.String()},
			{"latency answered → LSP", r.LatencyFromAnswer.String()},
		}...)
		rows = append(rows, r.WatchSplit.rows()...)
		rows = append(rows, r.Costs.rows("pod", r.Workload.Pods)...)
	}
	if r.LateDetected > 0 {
		rows = append(rows, row{"late-detected LSPs", fmt.Sprint(r.LateDetected)})
	}
	return append(rows, warningRows(r.Warnings)...)
}
