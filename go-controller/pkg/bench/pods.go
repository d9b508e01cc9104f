package bench

import (
	"context"
	"fmt"
	"maps"
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

	NBTransactions        float64 `json:"nbTransactions"` // leader's counter, first create → all LSPs
	NBTransactionErrors   float64 `json:"nbTransactionErrors"`
	NBOperations          float64 `json:"nbOperations"`
	NBTransactionsPerPod  float64 `json:"nbTransactionsPerPod"`
	NBOperationsPerPod    float64 `json:"nbOperationsPerPod"`
	NBTransactionsSettled float64 `json:"nbTransactionsSettled"` // same, once the counter stopped moving

	ControllerCPUSeconds     float64            `json:"controllerCpuSeconds"`     // leader utime+stime, first create → all LSPs
	ControllerPeakRSSBytes   int64              `json:"controllerPeakRssBytes"`   // VmHWM: since the process started
	ControllerRSSBytes       int64              `json:"controllerRssBytes"`       // VmRSS after the run
	ControllerRSSBeforeBytes int64              `json:"controllerRssBeforeBytes"` // VmRSS before the pod phase
	ComponentCPUSeconds      map[string]float64 `json:"componentCpuSeconds"`      // every lab process, kovn-bench, machine, other
	CPUWindowSeconds         float64            `json:"cpuWindowSeconds"`         // wall time those cover (× cores = capacity)
	LeaderMetricsDelta       map[string]float64 `json:"leaderMetricsDelta"`       // every kovn_* series that moved
	APIServer                map[string]APIStat `json:"apiServer"`                // API requests and etcd disk syncs, pod phase
	Timeline                 []TimelinePoint    `json:"timeline"`
	Warnings                 []string           `json:"warnings,omitempty"`
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

	mBefore, err := settle(ctx, sc, leader, 300*time.Millisecond, 10*time.Second)
	if err != nil {
		return res, err
	}
	pBefore, err := ReadProc(leader.Pid)
	if err != nil {
		return res, err
	}
	// First: the scrapes themselves cost the API server CPU.
	apiBefore, errA := APIServerMetrics(ctx, cs)
	etcdBefore, errE := EtcdMetrics(ctx, sc)
	cpuBefore, cpuStart := CPUSnapshot(l), time.Now()

	refs := wl.PodList()
	names := make([]string, len(refs))
	for i, r := range refs {
		names[i] = r.PortName()
	}
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
	// Read the costs at once: the NB figures and CPU are those of the
	// programming, not of whatever the controller does later.
	pAfter, errP := ReadProc(leader.Pid)
	mAfter, errM := sc.Scrape(ctx, leader)
	cpuAfter := CPUSnapshot(l)
	res.CPUWindowSeconds = secs(time.Since(cpuStart))
	if apiAfter, err := APIServerMetrics(ctx, cs); err == nil && errA == nil {
		res.APIServer = APIStats(apiBefore, apiAfter)
		res.Warnings = append(res.Warnings, liveLookupWarning(res.APIServer)...)
	}
	if etcdAfter, err := EtcdMetrics(ctx, sc); err == nil && errE == nil {
		if res.APIServer == nil {
			res.APIServer = map[string]APIStat{}
		}
		maps.Copy(res.APIServer, APIStats(etcdBefore, etcdAfter))
	}
	if errP != nil || errM != nil {
		return res, fmt.Errorf("leader after the run: proc: %v, metrics: %v", errP, errM)
	}
	ports, late := w.Times(wait)
	res.fill(refs, sent, answered, ports, late)
	res.ControllerCPUSeconds = round(pAfter.CPUSeconds-pBefore.CPUSeconds, 2)
	res.ControllerPeakRSSBytes, res.ControllerRSSBytes, res.ControllerRSSBeforeBytes = pAfter.HWMBytes, pAfter.RSSBytes, pBefore.RSSBytes
	res.ComponentCPUSeconds = CPUDelta(cpuBefore, cpuAfter)
	res.fillNB(mBefore, mAfter)
	if mSettled, err := settle(ctx, sc, leader, time.Second, 15*time.Second); err == nil {
		res.NBTransactionsSettled = mSettled.Sum("kovn_nb_transactions_total") - mBefore.Sum("kovn_nb_transactions_total")
	}
	if now, err := Leader(ctx, l, cs); err != nil || now != leader {
		res.Warnings = append(res.Warnings, fmt.Sprintf("leadership changed during the run (now %+v, %v): figures are not valid", now, err))
	}
	return res, nil
}

func (r *PodsResult) fill(refs []PodRef, sent, answered []time.Time, ports map[string]time.Time, late int) {
	t0, lastAnswer := apiPhase(sent, answered)
	lastPort := Last(ports)
	n := float64(len(refs))
	r.APICreateSeconds = secs(lastAnswer.Sub(t0))
	r.APICreatesPerSecond = round(n/lastAnswer.Sub(t0).Seconds(), 1)
	r.AllPortsSeconds = secs(lastPort.Sub(t0))
	r.AfterLastCreateSeconds = secs(lastPort.Sub(lastAnswer))
	r.PodsPerSecond = round(n/lastPort.Sub(t0).Seconds(), 1)
	r.LateDetected = late
	api, fromCreate, fromAnswer := make([]time.Duration, len(refs)), make([]time.Duration, len(refs)), make([]time.Duration, len(refs))
	for i, ref := range refs {
		api[i] = answered[i].Sub(sent[i])
		fromCreate[i] = ports[ref.PortName()].Sub(sent[i])
		fromAnswer[i] = ports[ref.PortName()].Sub(answered[i])
	}
	r.APICreateLatency, r.LatencyFromCreate, r.LatencyFromAnswer = Summarise(api), Summarise(fromCreate), Summarise(fromAnswer)
	r.Timeline = timeline(t0, answered, ports)
}

func (r *PodsResult) fillNB(before, after Metrics) {
	pods := float64(r.Workload.Pods)
	r.NBTransactions = after.Sum("kovn_nb_transactions_total") - before.Sum("kovn_nb_transactions_total")
	r.NBTransactionErrors = after[`kovn_nb_transactions_total{result="error"}`] - before[`kovn_nb_transactions_total{result="error"}`]
	r.NBOperations = after.Sum("kovn_nb_operations_total") - before.Sum("kovn_nb_operations_total")
	r.NBTransactionsPerPod = ratio(r.NBTransactions, pods)
	r.NBOperationsPerPod = ratio(r.NBOperations, pods)
	r.LeaderMetricsDelta = Delta(before, after)
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
			{"NB transactions (per pod)", fmt.Sprintf("%.0f (%.3f), %.0f errors; %.0f once settled", r.NBTransactions, r.NBTransactionsPerPod, r.NBTransactionErrors, r.NBTransactionsSettled)},
			{"NB operations (per pod)", fmt.Sprintf("%.0f (%.2f)", r.NBOperations, r.NBOperationsPerPod)},
			{"controller CPU", fmt.Sprintf("%.2f s", r.ControllerCPUSeconds)},
			{"controller RSS", fmt.Sprintf("peak %s (VmHWM, since start), now %s, before %s", mb(r.ControllerPeakRSSBytes), mb(r.ControllerRSSBytes), mb(r.ControllerRSSBeforeBytes))},
			{"CPU seconds, pod phase", fmt.Sprintf("in %.2f s: %s", r.CPUWindowSeconds, busiest(r.ComponentCPUSeconds, 8))},
			{"API server (count, mean)", apiSummary(r.APIServer)},
		}...)
	}
	if r.LateDetected > 0 {
		rows = append(rows, row{"late-detected LSPs", fmt.Sprint(r.LateDetected)})
	}
	for _, w := range r.Warnings {
		rows = append(rows, row{"WARNING", w})
	}
	return rows
}
