package bench

import (
	"context"
	"fmt"
	"maps"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/kovn-io/kovn/go-controller/pkg/lab"
)

// Costs is what the measured phase of a scenario cost: the leader's NB
// counters, its CPU and memory, every lab process' CPU, the API server's
// requests. Every scenario that programs something reports them alike.
type Costs struct {
	NBTransactions        float64 `json:"nbTransactions"` // leader's counter, phase start → converged
	NBTransactionErrors   float64 `json:"nbTransactionErrors"`
	NBOperations          float64 `json:"nbOperations"`
	NBTransactionsSettled float64 `json:"nbTransactionsSettled"` // same, once the counter stopped moving

	ControllerCPUSeconds     float64            `json:"controllerCpuSeconds"`     // leader utime+stime over the phase
	ControllerPeakRSSBytes   int64              `json:"controllerPeakRssBytes"`   // VmHWM: since the process started
	ControllerRSSBytes       int64              `json:"controllerRssBytes"`       // VmRSS after the phase
	ControllerRSSBeforeBytes int64              `json:"controllerRssBeforeBytes"` // VmRSS before the phase
	ComponentCPUSeconds      map[string]float64 `json:"componentCpuSeconds"`      // every lab process, kovn-bench, machine, other
	CPUWindowSeconds         float64            `json:"cpuWindowSeconds"`         // wall time those cover (× cores = capacity)
	LeaderMetricsDelta       map[string]float64 `json:"leaderMetricsDelta"`       // every kovn_* series that moved
	APIServer                map[string]APIStat `json:"apiServer"`                // API requests and etcd disk syncs over the phase
	Profile                  *CPUProfile        `json:"profile,omitempty"`        // perf's samples over the phase, every process
	Warnings                 []string           `json:"warnings,omitempty"`
}

// phase holds the readings taken when a measured phase starts.
type phase struct {
	l      *lab.Lab
	cs     kubernetes.Interface
	sc     *Scraper
	leader Replica

	metrics         Metrics
	proc            ProcStat
	api, etcd       Metrics
	apiErr, etcdErr error
	cpu             map[string]float64
	start           time.Time
	prof            *perfRecording
}

// beginPhase waits until the leader's NB counter has been still for
// 300 ms (what came before is not the phase's), takes the readings and
// starts perf. Callers defer close, for the paths that never reach end.
func beginPhase(ctx context.Context, l *lab.Lab, cs kubernetes.Interface, sc *Scraper, leader Replica, perf PerfOptions) (*phase, error) {
	m, err := settle(ctx, sc, leader, 300*time.Millisecond, 10*time.Second)
	if err != nil {
		return nil, err
	}
	p, err := ReadProc(leader.Pid)
	if err != nil {
		return nil, err
	}
	ph := &phase{l: l, cs: cs, sc: sc, leader: leader, metrics: m, proc: p}
	// First: the scrapes themselves cost the API server CPU.
	ph.api, ph.apiErr = APIServerMetrics(ctx, cs)
	ph.etcd, ph.etcdErr = EtcdMetrics(ctx, sc)
	// Last: perf's start (a second of reading every process' maps) is
	// not the phase's CPU.
	ph.prof = startProfile(perf)
	ph.cpu, ph.start = CPUSnapshot(l), time.Now()
	return ph, nil
}

// close stops perf if end did not: a phase that failed keeps no profile.
func (ph *phase) close() { ph.prof.close() }

// end takes the readings again, at once: the NB figures and CPU are those
// of the programming, not of whatever the controller does later.
func (ph *phase) end(ctx context.Context, c *Costs) error {
	pAfter, errP := ReadProc(ph.leader.Pid)
	mAfter, errM := ph.sc.Scrape(ctx, ph.leader)
	cpuAfter := CPUSnapshot(ph.l)
	ph.prof.pause()
	c.CPUWindowSeconds = secs(time.Since(ph.start))
	if apiAfter, err := APIServerMetrics(ctx, ph.cs); err == nil && ph.apiErr == nil {
		c.APIServer = APIStats(ph.api, apiAfter)
		c.Warnings = append(c.Warnings, liveLookupWarning(c.APIServer)...)
	}
	if etcdAfter, err := EtcdMetrics(ctx, ph.sc); err == nil && ph.etcdErr == nil {
		if c.APIServer == nil {
			c.APIServer = map[string]APIStat{}
		}
		maps.Copy(c.APIServer, APIStats(ph.etcd, etcdAfter))
	}
	// perf's stop and report take seconds: after every other reading.
	var perr error
	if c.Profile, perr = ph.prof.finish(ctx); perr != nil {
		c.Warnings = append(c.Warnings, perr.Error())
	}
	if errP != nil || errM != nil {
		return fmt.Errorf("leader after the run: proc: %v, metrics: %v", errP, errM)
	}
	c.ControllerCPUSeconds = round(pAfter.CPUSeconds-ph.proc.CPUSeconds, 2)
	c.ControllerPeakRSSBytes, c.ControllerRSSBytes, c.ControllerRSSBeforeBytes = pAfter.HWMBytes, pAfter.RSSBytes, ph.proc.RSSBytes
	c.ComponentCPUSeconds = CPUDelta(ph.cpu, cpuAfter)
	c.nbDelta(ph.metrics, mAfter)
	return nil
}

func (c *Costs) nbDelta(before, after Metrics) {
	c.NBTransactions = after.Sum("kovn_nb_transactions_total") - before.Sum("kovn_nb_transactions_total")
	c.NBTransactionErrors = after[`kovn_nb_transactions_total{result="error"}`] - before[`kovn_nb_transactions_total{result="error"}`]
	c.NBOperations = after.Sum("kovn_nb_operations_total") - before.Sum("kovn_nb_operations_total")
	c.LeaderMetricsDelta = Delta(before, after)
}

// settled waits until the leader's NB counter has been still for a second
// and records the transactions since the phase began; and it warns when
// leadership changed meanwhile, which voids the figures.
func (ph *phase) settled(ctx context.Context, c *Costs) {
	if m, err := settle(ctx, ph.sc, ph.leader, time.Second, 15*time.Second); err == nil {
		c.NBTransactionsSettled = m.Sum("kovn_nb_transactions_total") - ph.metrics.Sum("kovn_nb_transactions_total")
	}
	if now, err := Leader(ctx, ph.l, ph.cs); err != nil || now != ph.leader {
		c.Warnings = append(c.Warnings, fmt.Sprintf("leadership changed during the run (now %+v, %v): figures are not valid", now, err))
	}
}

// rows shows the costs; unit names what the per-item figures divide by
// (n of them), resources the API resources worth showing.
func (c *Costs) rows(unit string, n int, resources ...string) []row {
	return append([]row{
		{fmt.Sprintf("NB transactions (per %s)", unit), fmt.Sprintf("%.0f (%.3f), %.0f errors; %.0f once settled", c.NBTransactions, ratio(c.NBTransactions, float64(n)), c.NBTransactionErrors, c.NBTransactionsSettled)},
		{fmt.Sprintf("NB operations (per %s)", unit), fmt.Sprintf("%.0f (%.2f)", c.NBOperations, ratio(c.NBOperations, float64(n)))},
		{"controller CPU", fmt.Sprintf("%.2f s", c.ControllerCPUSeconds)},
		{"controller RSS", fmt.Sprintf("peak %s (VmHWM, since start), now %s, before %s", mb(c.ControllerPeakRSSBytes), mb(c.ControllerRSSBytes), mb(c.ControllerRSSBeforeBytes))},
		{"CPU seconds, measured phase", fmt.Sprintf("in %.2f s: %s", c.CPUWindowSeconds, busiest(c.ComponentCPUSeconds, 8))},
		{"API server (count, mean)", apiSummary(c.APIServer, resources...)},
	}, c.Profile.rows("")...)
}

func warningRows(ws []string) []row {
	var rows []row
	for _, w := range ws {
		rows = append(rows, row{"WARNING", w})
	}
	return rows
}

// burstTimes is the timing of a burst of creates (item i sent at sent[i],
// answered at answered[i]) and of the NB rows they lead to (done[i]).
type burstTimes struct {
	t0, lastAnswer, lastDone    time.Time
	api, fromCreate, fromAnswer []time.Duration
}

func measureBurst(sent, answered, done []time.Time) burstTimes {
	b := burstTimes{api: make([]time.Duration, len(sent)), fromCreate: make([]time.Duration, len(sent)), fromAnswer: make([]time.Duration, len(sent))}
	b.t0, b.lastAnswer = apiPhase(sent, answered)
	for i := range sent {
		b.api[i] = answered[i].Sub(sent[i])
		b.fromCreate[i] = done[i].Sub(sent[i])
		b.fromAnswer[i] = done[i].Sub(answered[i])
		if done[i].After(b.lastDone) {
			b.lastDone = done[i]
		}
	}
	return b
}

// apiSeconds, allSeconds, afterLast: first create sent → last answered,
// → last row done, and last answered → last row done.
func (b burstTimes) apiSeconds() float64 { return secs(b.lastAnswer.Sub(b.t0)) }
func (b burstTimes) allSeconds() float64 { return secs(b.lastDone.Sub(b.t0)) }
func (b burstTimes) afterLast() float64  { return secs(b.lastDone.Sub(b.lastAnswer)) }

// apiRate and doneRate are items per second through the API and to NB.
func (b burstTimes) apiRate() float64 {
	return round(float64(len(b.api))/b.lastAnswer.Sub(b.t0).Seconds(), 1)
}
func (b burstTimes) doneRate() float64 {
	return round(float64(len(b.api))/b.lastDone.Sub(b.t0).Seconds(), 1)
}
