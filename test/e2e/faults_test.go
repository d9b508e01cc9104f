package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/ovn-kubernetes/libovsdb/client"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/lab/probe"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// A fault kills one component with SIGKILL and starts it again at once.
type fault struct {
	name string
	// component returns the kovn-lab component to kill (the leader is
	// only known when its turn comes).
	component func(t *testing.T, e *env) string
	// dataPath: the component carries the probed pods' packets, so an
	// outage is expected and measured rather than required to be zero.
	dataPath bool
}

// faultResult is one row of the table in docs/reliability.md.
type faultResult struct {
	fault      fault
	component  string
	converged  time.Duration // from the restart until every check passed
	lost       [2]int        // probes lost pod→pod, pod→service
	sent       [2]int
	outage     time.Duration // longest run of failed probes
	duplicates int
	leaked     int
	pending    int // NB transactions + API writes kovn-controller --verify still saw at the end
}

func faults() []fault {
	fixed := func(c string) func(*testing.T, *env) string { return func(*testing.T, *env) string { return c } }
	return []fault{
		// The noise floor: the same churn and probes with nothing killed,
		// so a loss in a fault's row can be told from the lab's own.
		{name: "none (baseline)", component: fixed("")},
		{name: "kovn-controller leader", component: func(t *testing.T, e *env) string { return fmt.Sprintf("controller:%d", e.leader(t)) }},
		{name: "kovn-node on the client's node", component: fixed("node:node1")},
		{name: "kovn-node on the churn's node", component: fixed("node:node3")},
		{name: "ovn-controller on the server's node", component: fixed("ovn-controller:node2"), dataPath: true},
		{name: "ovsdb-server + ovs-vswitchd on the server's node", component: fixed("ovs:node2"), dataPath: true},
		{name: "OVN NB ovsdb-server (the RAFT leader when clustered)", component: ovnLeaderOr("nb")},
		{name: "OVN SB ovsdb-server (the RAFT leader when clustered)", component: ovnLeaderOr("sb")},
		{name: "ovn-northd", component: fixed("northd")},
		{name: "kube-apiserver", component: fixed("apiserver")},
	}
}

// ovnLeaderOr picks the RAFT leader of db in a clustered lab, the member
// whose death forces every client to reconnect elsewhere, and the only
// ovsdb-server of db otherwise.
func ovnLeaderOr(db string) func(*testing.T, *env) string {
	return func(t *testing.T, e *env) string {
		if !e.lab.OVNHA {
			return db
		}
		leader, err := e.lab.OVNLeader(db)
		if err != nil {
			t.Fatal(err)
		}
		return leader
	}
}

// TestFaults kills one component at a time while pods, services and
// policies churn and two probe streams run between long-lived pods on
// different nodes; after each restart the lab must converge: every pod
// Ready, `kovn-lab verify` finding nothing to write, `kovnctl status`
// clean (no stale row), and no address held twice. It writes the table to
// _output/faults.md. Run by make test-faults, and by make test last on its
// clustered lab (test/e2e/run.sh).
func TestFaults(t *testing.T) {
	if os.Getenv("KOVN_FAULTS") != "1" {
		t.Skip("KOVN_FAULTS=1 runs the fault suite (make test-faults)")
	}
	e := setup(t)
	requireController(t, e)
	if len(e.lab.NodeNames) < 3 {
		t.Skip("needs three nodes: client, server and churn")
	}
	nb := e.nb(t)
	ctx := context.Background()
	fns := e.namespace(t, "faults")
	t.Cleanup(func() { waitPodsGone(e, fns, time.Minute) })
	// Two clients on the same node, one per stream: one client probing a
	// backend both directly and through its VIP reuses source ports
	// across the two, and the userspace datapath's conntrack then mixes
	// up the two connections (docs/reliability.md, "Open"), a loss no
	// fault caused.
	pods := e.createRunning(t, 2*time.Minute, e.testServerPod(fns, "client", "node1"),
		e.testServerPod(fns, "client-svc", "node1"), e.testServerPod(fns, "server", "node2"))
	server := pods[2] // testServerPod labels it app=server
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: fns, Name: "server"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "server"},
			Ports:    []corev1.ServicePort{{Name: "tcp", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(80)}},
		},
	}
	svc, err := e.cs.CoreV1().Services(fns).Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var streams []probeStream
	for _, s := range []struct{ from, to string }{
		{"client", server.Status.PodIP + ":80"},
		{"client-svc", svc.Spec.ClusterIP + ":80"},
	} {
		target, err := e.lab.ResolveTarget(ctx, fns+"/"+s.from)
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, probeStream{netns: target.NetNS, addr: s.to})
	}
	if err := poll(60*time.Second, func() error {
		for _, s := range streams {
			if err := probeOnce(s.netns, s.addr); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatalf("probes never answered before the faults: %v", err)
	}

	cns := e.namespace(t, "churn")
	t.Cleanup(func() { waitPodsGone(e, cns, time.Minute) })
	// The churn runs on node3 only: a pod port plugged or unplugged on
	// the client's or the server's node was seen to drop a probe once
	// (docs/reliability.md, "Open"), which would be blamed on the fault.
	ch := startChurn(t, e, cns, []string{"node1", "node2"})
	defer ch.stop()
	pr := startProbes(streams)
	defer pr.stop()

	var results []faultResult
	for _, f := range faults() {
		// A fault that loses probes fails its subtest, and the next one
		// still runs, so the table is whole; one that does not converge
		// stops the suite, since the next would start from a broken lab.
		converged := true
		t.Run(f.name, func(t *testing.T) {
			r, ok := runFault(t, e, nb, f, pr, ch, []string{fns, cns})
			results, converged = append(results, r), ok
		})
		if !converged {
			break
		}
	}
	writeFaultTable(t, results)
}

// runFault kills and restarts one component, lets the churn run on for a
// while, then pauses it and waits for the lab to converge.
func runFault(t *testing.T, e *env, nb client.Client, f fault, pr *prober, ch *churn, nss []string) (faultResult, bool) {
	comp := f.component(t, e)
	r := faultResult{fault: f, component: comp}
	pr.reset()
	churnFor := 2 * time.Second // churn on the recovering component
	if comp == "" {
		churnFor = baselineDuration(t)
		t.Logf("%s: nothing killed, churn for %s from %s", f.name, churnFor, time.Now().Format("15:04:05.000"))
	} else {
		t.Logf("%s: kill -9 %s at %s", f.name, comp, time.Now().Format("15:04:05.000"))
		if _, err := e.labCmd(t, nil, "restart", "--signal", "KILL", comp); err != nil {
			t.Errorf("kill and restart %s: %v", comp, err)
			return r, false
		}
	}
	restarted := time.Now()
	time.Sleep(churnFor)
	ch.pause()
	defer ch.resume()
	var last string
	logged := time.Now()
	err := poll(3*time.Minute, func() error {
		problems := convergenceProblems(t, e, nb, nss, &r)
		if len(problems) > 0 {
			last = strings.Join(problems, "; ")
			// A slow convergence should say what it waited for.
			if time.Since(logged) > 15*time.Second {
				t.Logf("after %.0fs still: %s", time.Since(restarted).Seconds(), last)
				logged = time.Now()
			}
			return fmt.Errorf("%s", last)
		}
		return nil
	})
	r.converged = time.Since(restarted)
	var errs []string
	var failedAt []time.Time
	r.lost, r.sent, r.outage, errs, failedAt = pr.snapshot()
	for _, e := range errs {
		t.Logf("probe failed: %s", e)
	}
	if len(failedAt) > 0 {
		t.Logf("the probed nodes' data-path logs around the first failure:\n  %s",
			strings.Join(logContext(e.lab.Supervisor().LogDir, failedAt[0], 40), "\n  "))
	}
	t.Logf("%s (%s): converged in %.1fs; probes lost %d/%d pod→pod, %d/%d pod→service, longest outage %.1fs; churn: %d objects created, %d errors",
		f.name, comp, r.converged.Seconds(), r.lost[0], r.sent[0], r.lost[1], r.sent[1], r.outage.Seconds(), ch.created.Load(), ch.errors.Load())
	if err != nil {
		t.Errorf("%s: not converged after %.0fs: %s", f.name, r.converged.Seconds(), last)
		return r, false
	}
	if r.duplicates != 0 || r.leaked != 0 {
		t.Errorf("%s: %d addresses held twice, %d leaked rows", f.name, r.duplicates, r.leaked)
	}
	if !f.dataPath && (r.lost[0] != 0 || r.lost[1] != 0) {
		t.Errorf("%s: lost %d pod→pod and %d pod→service probes, want 0 for a fault off the data path", f.name, r.lost[0], r.lost[1])
	}
	return r, true
}

// baselineDuration is how long the no-fault row churns: 10 s by default,
// longer (KOVN_FAULTS_BASELINE, a Go duration) to measure the lab's noise
// floor.
func baselineDuration(t *testing.T) time.Duration {
	v := os.Getenv("KOVN_FAULTS_BASELINE")
	if v == "" {
		return 10 * time.Second
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("KOVN_FAULTS_BASELINE: %v", err)
	}
	return d
}

// convergenceProblems lists what still differs from a converged lab, and
// records the duplicate, leak and pending counts in r.
func convergenceProblems(t *testing.T, e *env, nb client.Client, nss []string, r *faultResult) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var problems []string
	for _, n := range nss {
		pods, err := e.cs.CoreV1().Pods(n).List(ctx, metav1.ListOptions{})
		if err != nil {
			return []string{"list pods: " + err.Error()}
		}
		for _, p := range pods.Items {
			if p.DeletionTimestamp != nil {
				problems = append(problems, "pod "+n+"/"+p.Name+" still terminating")
			} else if !podReady(&p) {
				problems = append(problems, "pod "+n+"/"+p.Name+" not Ready")
			}
		}
	}
	dups, err := duplicateAddresses(ctx, e, nb)
	if err != nil {
		return append(problems, err.Error())
	}
	r.duplicates = len(dups)
	problems = append(problems, dups...)

	out, code := e.kovnctl(t, "status")
	r.leaked = 0
	for _, l := range strings.Split(out, "\n") {
		if code != 0 && !strings.HasPrefix(l, "ok") && strings.Contains(l, "stale:") {
			r.leaked++
		}
	}
	if code != 0 {
		problems = append(problems, "kovnctl status: "+problemLines(out))
	}
	vout, err := e.labCmd(t, nil, "verify")
	r.pending = 0
	if err != nil {
		for _, l := range strings.Split(vout, "\n") {
			if strings.HasPrefix(l, "  ") {
				r.pending++
			}
		}
		problems = append(problems, "kovn-lab verify: "+strings.TrimSpace(vout))
	}
	return problems
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func problemLines(out string) string {
	var ls []string
	for _, l := range strings.Split(out, "\n") {
		if l != "" && !strings.HasPrefix(l, "ok") {
			ls = append(ls, strings.TrimSpace(l))
		}
	}
	return strings.Join(ls, " | ")
}

// duplicateAddresses finds an address held twice: by two pods'
// annotations (pods that still exist and are not finished), or by two
// kovn-owned logical switch ports.
func duplicateAddresses(ctx context.Context, e *env, nb client.Client) ([]string, error) {
	var dups []string
	holders := map[netip.Addr]string{}
	pods, err := e.cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	for _, p := range pods.Items {
		a, ok := p.Annotations[kube.PodNetworkAnnotation]
		if !ok || p.Spec.HostNetwork || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		pn, err := kube.ParsePodNetwork(a)
		if err != nil {
			continue
		}
		key := p.Namespace + "/" + p.Name
		for _, ip := range pn.Addrs() {
			if other, dup := holders[ip]; dup {
				dups = append(dups, fmt.Sprintf("%s held by pods %s and %s", ip, other, key))
			}
			holders[ip] = key
		}
	}
	var lsps []nbdb.LogicalSwitchPort
	if err := nb.List(ctx, &lsps); err != nil {
		return nil, err
	}
	ports := map[string]string{}
	for _, lsp := range lsps {
		kind := lsp.ExternalIDs[own.KindKey]
		if kind != own.KindPod && kind != own.KindExternalPort {
			continue
		}
		for _, a := range lsp.Addresses {
			for _, f := range strings.Fields(a)[1:] {
				if other, dup := ports[f]; dup {
					dups = append(dups, fmt.Sprintf("%s on ports %s and %s", f, other, lsp.Name))
				}
				ports[f] = lsp.Name
			}
		}
	}
	return dups, nil
}

// probeOnce opens one TCP probe from inside netns.
func probeOnce(netns, addr string) error {
	return ns.WithNetNSPath(netns, func(ns.NetNS) error {
		_, _, err := probe.Probe(context.Background(), "tcp", addr, time.Second)
		return err
	})
}

// prober runs one probe loop per address, every 200 ms, and counts the
// lost ones since the last reset.
type prober struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	sent   []int
	lost   []int
	// outage bookkeeping: when each stream's current failure run began
	// (zero when answering), and the longest run since the reset.
	failingSince []time.Time
	longest      time.Duration
	errs         []string    // the first few failures since the reset, for the log
	failedAt     []time.Time // when those began
}

// probeStream is one client's probes to one address.
type probeStream struct{ netns, addr string }

func startProbes(streams []probeStream) *prober {
	ctx, cancel := context.WithCancel(context.Background())
	n := len(streams)
	p := &prober{cancel: cancel, sent: make([]int, n), lost: make([]int, n), failingSince: make([]time.Time, n)}
	for i, s := range streams {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			tick := time.NewTicker(200 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				start := time.Now()
				err := probeOnce(s.netns, s.addr)
				p.record(i, start, err)
			}
		}()
	}
	return p
}

func (p *prober) record(i int, at time.Time, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sent[i]++
	if err == nil {
		if !p.failingSince[i].IsZero() {
			p.longest = max(p.longest, at.Sub(p.failingSince[i]))
			p.failingSince[i] = time.Time{}
		}
		return
	}
	p.lost[i]++
	if len(p.errs) < 4 {
		p.errs = append(p.errs, at.Format("15:04:05.000")+" "+err.Error())
		p.failedAt = append(p.failedAt, at)
	}
	if p.failingSince[i].IsZero() {
		p.failingSince[i] = at
	}
}

func (p *prober) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.sent {
		p.sent[i], p.lost[i], p.failingSince[i] = 0, 0, time.Time{}
	}
	p.longest = 0
	p.errs, p.failedAt = nil, nil
}

// snapshot returns the counts for the first two streams and the longest
// outage, counting a run that has not ended yet up to now.
func (p *prober) snapshot() (lost, sent [2]int, outage time.Duration, errs []string, failedAt []time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	errs = append(errs, p.errs...)
	failedAt = append(failedAt, p.failedAt...)
	outage = p.longest
	for i := 0; i < len(p.sent) && i < 2; i++ {
		lost[i], sent[i] = p.lost[i], p.sent[i]
		if !p.failingSince[i].IsZero() {
			outage = max(outage, time.Since(p.failingSince[i]))
		}
	}
	return lost, sent, outage, errs, failedAt
}

func (p *prober) stop() { p.cancel(); p.wg.Wait() }

// churn creates a pod, a Service selecting it and a NetworkPolicy
// admitting it every half second, and deletes the set made three steps
// earlier, so objects come and go through every fault. API errors (the API
// server is one of the faults) are counted and the loop goes on.
type churn struct {
	cancel  context.CancelFunc
	done    chan struct{}
	gate    sync.Mutex // held while paused
	created atomic.Int64
	errors  atomic.Int64
}

func startChurn(t *testing.T, e *env, nsName string, avoidNodes []string) *churn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &churn{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for i := 0; ctx.Err() == nil; i++ {
			c.gate.Lock()
			c.step(ctx, e, nsName, avoidNodes, i)
			c.gate.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	return c
}

func (c *churn) step(ctx context.Context, e *env, nsName string, avoidNodes []string, i int) {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	name := fmt.Sprintf("c%d", i)
	labels := map[string]string{"churn": name}
	pod := e.testServerPod(nsName, name, "")
	pod.Labels = labels
	pod.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpNotIn, Values: avoidNodes}},
		}}},
	}}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: nsName, Name: name},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(80)}}},
	}
	np := npPolicy(nsName, name, &metav1.LabelSelector{MatchLabels: labels},
		ingress(peers(podPeer(sel("churn", name))), port(corev1.ProtocolTCP, 80)))
	count := func(err error) {
		if err != nil {
			c.errors.Add(1)
		} else {
			c.created.Add(1)
		}
	}
	_, err := e.cs.CoreV1().Pods(nsName).Create(rctx, pod, metav1.CreateOptions{})
	count(err)
	_, err = e.cs.CoreV1().Services(nsName).Create(rctx, svc, metav1.CreateOptions{})
	count(err)
	_, err = e.cs.NetworkingV1().NetworkPolicies(nsName).Create(rctx, np, metav1.CreateOptions{})
	count(err)
	if i >= 3 {
		old := fmt.Sprintf("c%d", i-3)
		zero := int64(0)
		if err := e.cs.CoreV1().Pods(nsName).Delete(rctx, old, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
			c.errors.Add(1)
		}
		if err := e.cs.CoreV1().Services(nsName).Delete(rctx, old, metav1.DeleteOptions{}); err != nil {
			c.errors.Add(1)
		}
		if err := e.cs.NetworkingV1().NetworkPolicies(nsName).Delete(rctx, old, metav1.DeleteOptions{}); err != nil {
			c.errors.Add(1)
		}
	}
}

func (c *churn) pause()  { c.gate.Lock() }
func (c *churn) resume() { c.gate.Unlock() }
func (c *churn) stop()   { c.cancel(); <-c.done }

// writeFaultTable writes the results as the markdown table that
// docs/reliability.md carries.
func writeFaultTable(t *testing.T, rs []faultResult) {
	var b strings.Builder
	b.WriteString("| fault (SIGKILL, then start) | component | converged in | probes lost pod→pod | probes lost pod→service | longest outage | addresses held twice | leaked rows | writes left (verify) |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		comp := "`" + r.component + "`"
		if r.component == "" {
			comp = "none"
		}
		fmt.Fprintf(&b, "| %s | %s | %.1f s | %d of %d | %d of %d | %.1f s | %d | %d | %d |\n",
			r.fault.name, comp, r.converged.Seconds(), r.lost[0], r.sent[0], r.lost[1], r.sent[1], r.outage.Seconds(), r.duplicates, r.leaked, r.pending)
	}
	t.Logf("fault table:\n%s", b.String())
	out := filepath.Join(repoRoot(t), "_output", "faults.md")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err == nil {
		_ = os.WriteFile(out, []byte(b.String()), 0o644)
	}
}

// repoRoot is two directories above this package.
func repoRoot(t *testing.T) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Clean(filepath.Join(wd, "..", ".."))
}
