package bench

import (
	"context"
	"fmt"
	"maps"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/kovn-io/kovn/go-controller/pkg/lab"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
)

// RestartResult times a leader's replacement on a converged state.
type RestartResult struct {
	Signal            string  `json:"signal"`
	Old               Replica `json:"old"`
	New               Replica `json:"new"`
	LeaseTakenSeconds float64 `json:"leaseTakenSeconds"` // signal → the Lease names the new leader: failover
	ReadySeconds      float64 `json:"readySeconds"`      // signal → the new leader's /readyz answers 200
	StartupSeconds    float64 `json:"startupSeconds"`    // Lease taken → ready: the restart figure proper
	// What the new leader logged on "ready": its own start-up time (from
	// taking the lease) and NB transactions/operations up to then.
	LoggedReadyAfter     string `json:"loggedReadyAfter"`
	LoggedNBTransactions int    `json:"loggedNbTransactions"`
	LoggedNBOperations   int    `json:"loggedNbOperations"`
	// The new leader's counters at ready, and 3 s later.
	NBTransactions        float64 `json:"nbTransactions"`
	NBOperations          float64 `json:"nbOperations"`
	NBTransactionsSettled float64 `json:"nbTransactionsSettled"`
	// NB as a monitor saw it: row events from the kill until settled (0
	// when the restart changed nothing), and the port count on each side.
	NBRowEvents map[string]int `json:"nbRowEvents"`
	PortsBefore int            `json:"portsBefore"`
	PortsAfter  int            `json:"portsAfter"`
	// Rows of every monitored table (ports, switches, routers, address
	// sets, load balancers, port groups, ACLs) on each side.
	RowsBefore       map[string]int `json:"rowsBefore"`
	RowsAfter        map[string]int `json:"rowsAfter"`
	NewLeaderCPU     float64        `json:"newLeaderCpuSeconds"` // signal → ready
	NewLeaderPeakRSS int64          `json:"newLeaderPeakRssBytes"`
	OldRestartedSecs float64        `json:"oldRestartedSeconds"` // the old replica back as a follower (/healthz)
}

// RestartOptions configure a restart run.
type RestartOptions struct {
	Signal  syscall.Signal // SIGKILL: a crash, the Lease must expire; SIGTERM: the Lease is released
	Timeout time.Duration
}

// RunRestart stops the leader with the signal, measures its replacement,
// then starts the stopped replica again so the lab keeps both.
func RunRestart(ctx context.Context, l *lab.Lab, cs kubernetes.Interface, opts RestartOptions) (*RestartResult, error) {
	sc := NewScraper()
	old, err := Leader(ctx, l, cs)
	if err != nil {
		return nil, err
	}
	if !sc.Ready(ctx, old) {
		return nil, fmt.Errorf("leader %s is not ready: nothing converged to restart from", old.Component)
	}
	nw := ReplicaAt(l, 1-old.Index)
	if nw.Pid == 0 || !alive(nw.Pid) {
		return nil, fmt.Errorf("the follower %s is not running", nw.Component)
	}
	// Every table a scenario programs: the converged state may hold W2's
	// services and W3's policies.
	w, err := NewWatcher(ctx, "unix:"+l.NBSocket(), append(ServiceTables(), PolicyTables()...)...)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	base := stableChanges(ctx, w)
	res := &RestartResult{Signal: signalName(opts.Signal), Old: old, New: nw, PortsBefore: len(w.Names(nbdb.LogicalSwitchPortTable)), RowsBefore: w.RowCounts()}
	mBefore, _ := sc.Scrape(ctx, nw) // a follower has sent nothing; counted anyway
	pBefore, err := ReadProc(nw.Pid)
	if err != nil {
		return nil, err
	}

	start := time.Now()
	// A TERMed leader needs a moment to release the Lease before the
	// supervisor's fallback SIGKILL; a KILLed one gets none.
	grace := time.Duration(0)
	if opts.Signal != syscall.SIGKILL {
		grace = 10 * time.Second
	}
	if err := l.Supervisor().Stop(old.Component, opts.Signal, grace); err != nil {
		return nil, err
	}
	var leaseAt, readyAt time.Time
	for i := 0; readyAt.IsZero(); i++ {
		if time.Since(start) > opts.Timeout {
			return res, fmt.Errorf("%s not ready %v after %s (lease taken: %v)", nw.Component, opts.Timeout, opts.Signal, !leaseAt.IsZero())
		}
		if leaseAt.IsZero() && i%5 == 0 {
			if id, err := LeaseHolder(ctx, cs); err == nil && id == nw.Identity {
				leaseAt = time.Now()
			}
		}
		if sc.Ready(ctx, nw) {
			readyAt = time.Now()
			if leaseAt.IsZero() {
				leaseAt = readyAt
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	pReady, _ := ReadProc(nw.Pid)
	mReady, err := sc.Scrape(ctx, nw)
	if err != nil {
		return res, err
	}
	res.LeaseTakenSeconds, res.ReadySeconds = secs(leaseAt.Sub(start)), secs(readyAt.Sub(start))
	res.StartupSeconds = secs(readyAt.Sub(leaseAt))
	res.NewLeaderCPU = round(pReady.CPUSeconds-pBefore.CPUSeconds, 2)
	res.NewLeaderPeakRSS = pReady.HWMBytes
	res.NBTransactions = mReady.Sum("kovn_nb_transactions_total") - mBefore.Sum("kovn_nb_transactions_total")
	res.NBOperations = mReady.Sum("kovn_nb_operations_total") - mBefore.Sum("kovn_nb_operations_total")
	res.LoggedReadyAfter, res.LoggedNBTransactions, res.LoggedNBOperations = loggedReady(l.Supervisor().LogPath(nw.Component), nw.Pid)

	time.Sleep(3 * time.Second)
	if m, err := sc.Scrape(ctx, nw); err == nil {
		res.NBTransactionsSettled = m.Sum("kovn_nb_transactions_total") - mBefore.Sum("kovn_nb_transactions_total")
	}
	res.NBRowEvents = diffCounts(base, w.Changes())
	res.PortsAfter, res.RowsAfter = len(w.Names(nbdb.LogicalSwitchPortTable)), w.RowCounts()

	restart := time.Now()
	if err := l.Supervisor().Start(old.Component); err != nil {
		return res, fmt.Errorf("start %s again: %w", old.Component, err)
	}
	back := ReplicaAt(l, old.Index)
	for !healthy(ctx, sc, back) {
		if time.Since(restart) > opts.Timeout {
			return res, fmt.Errorf("%s restarted but not healthy after %v", old.Component, opts.Timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	res.OldRestartedSecs = secs(time.Since(restart))
	return res, nil
}

func signalName(s syscall.Signal) string {
	switch s {
	case syscall.SIGKILL:
		return "SIGKILL"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return s.String()
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func healthy(ctx context.Context, sc *Scraper, r Replica) bool {
	code, _, err := sc.get(ctx, r, "/healthz")
	return err == nil && code == 200
}

// stableChanges waits for the monitor's initial population to be
// delivered (events trickle in after Monitor returns) and returns the
// counts then.
func stableChanges(ctx context.Context, w *Watcher) map[string]int {
	prev := w.Changes()
	for i := 0; i < 50 && ctx.Err() == nil; i++ {
		time.Sleep(200 * time.Millisecond)
		cur := w.Changes()
		if maps.Equal(prev, cur) {
			return cur
		}
		prev = cur
	}
	return prev
}

func diffCounts(before, after map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// loggedReady finds the "ready" line pid wrote last in the log (klog:
// the header's third field is the pid).
func loggedReady(path string, pid int) (after string, txns, ops int) {
	readyLine := regexp.MustCompile(`^\w\d{4} \S+\s+(\d+) \S+\] "ready" after="([^"]+)" nbTransactions=(\d+) nbOperations=(\d+)`)
	b, err := os.ReadFile(path)
	if err != nil {
		return "", 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		m := readyLine.FindStringSubmatch(line)
		if m == nil || m[1] != strconv.Itoa(pid) {
			continue
		}
		after = m[2]
		txns, _ = strconv.Atoi(m[3])
		ops, _ = strconv.Atoi(m[4])
	}
	return after, txns, ops
}

func (r *RestartResult) rows() []row {
	return []row{
		{"restart", fmt.Sprintf("%s to %s (pid %d); %s takes over", r.Signal, r.Old.Component, r.Old.Pid, r.New.Component)},
		{"  lease taken (failover)", fs(r.LeaseTakenSeconds)},
		{"  new leader ready (from signal)", fs(r.ReadySeconds)},
		{"  start-up (lease → ready)", fmt.Sprintf("%s; logged after=%s", fs(r.StartupSeconds), r.LoggedReadyAfter)},
		{"  NB transactions / operations at ready", fmt.Sprintf("%.0f / %.0f (logged %d / %d); %.0f transactions 3 s later", r.NBTransactions, r.NBOperations, r.LoggedNBTransactions, r.LoggedNBOperations, r.NBTransactionsSettled)},
		{"  NB row events seen", fmt.Sprintf("%v; ports %d before, %d after", r.NBRowEvents, r.PortsBefore, r.PortsAfter)},
		{"  NB rows before / after", fmt.Sprintf("%v / %v", r.RowsBefore, r.RowsAfter)},
		{"  new leader CPU / peak RSS", fmt.Sprintf("%.2f s / %s", r.NewLeaderCPU, mb(r.NewLeaderPeakRSS))},
		{"  old replica back as follower", fs(r.OldRestartedSecs)},
	}
}
