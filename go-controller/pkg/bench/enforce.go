package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kovn-io/kovn/go-controller/pkg/lab"
	"github.com/kovn-io/kovn/go-controller/pkg/lab/probe"
)

// EnforceNamespace holds the enforce scenario's pods. It carries
// BenchLabel so that kovn-bench cleanup removes it after a crashed run.
const EnforceNamespace = "bench-enforce"

// EnforceOptions configure an enforce run.
type EnforceOptions struct {
	Rounds int
	// Interval bounds the resolution: a new probe starts this often,
	// whether or not the earlier ones have finished.
	Interval, ProbeTimeout time.Duration
	// Settle is how long the new state must hold before its first probe
	// counts, so that a state that comes and goes is not taken for it.
	Settle  time.Duration
	Timeout time.Duration // per step

	// LateLimit is how long a probe not answered within ProbeTimeout
	// goes on to learn its full outcome (zero: DefaultLateLimit).
	LateLimit time.Duration

	ServerNode, SameNodeClient, OtherNodeClient string
}

// DefaultEnforce is the run of docs/benchmarks.md.
func DefaultEnforce() EnforceOptions {
	return EnforceOptions{Rounds: 10, Interval: 10 * time.Millisecond, ProbeTimeout: 200 * time.Millisecond,
		Settle: time.Second, Timeout: 5 * time.Minute, ServerNode: "node1", SameNodeClient: "node1", OtherNodeClient: "node2"}
}

// Validate rejects options whose figures would be mislabelled or empty.
func (o EnforceOptions) Validate() error {
	switch {
	case o.Rounds < 1:
		return fmt.Errorf("--rounds must be positive, got %d", o.Rounds)
	case o.Interval <= 0 || o.ProbeTimeout <= 0 || o.Settle <= 0 || o.Timeout <= 0:
		return fmt.Errorf("--interval, --probe-timeout, --settle and --timeout must be positive")
	case o.SameNodeClient != o.ServerNode:
		return fmt.Errorf("--same-node %q is not the server's node %q", o.SameNodeClient, o.ServerNode)
	case o.OtherNodeClient == o.ServerNode:
		return fmt.Errorf("--other-node %q is the server's node", o.OtherNodeClient)
	}
	return nil
}

// EnforceResult holds an enforce run's figures, per kind of client.
type EnforceResult struct {
	Rounds         int             `json:"rounds"` // asked for
	ServerNode     string          `json:"serverNode"`
	IntervalMs     float64         `json:"intervalMs"`
	ProbeTimeoutMs float64         `json:"probeTimeoutMs"`
	LateLimitMs    float64         `json:"lateLimitMs"`
	SettleMs       float64         `json:"settleMs"`
	Clients        []EnforceClient `json:"clients"`
}

// EnforceClient is one client's figures over the rounds.
type EnforceClient struct {
	Kind    string `json:"kind"` // "same-node" or "other-node"
	Node    string `json:"node"`
	Rounds  int    `json:"rounds"`  // completed: both steps steady
	Deny    Dist   `json:"deny"`    // policy create sent → first refused probe
	Restore Dist   `json:"restore"` // policy delete sent → first answered probe
	Flaps   int    `json:"flaps"`   // a new state seen, then the old one again
	// Every round's latencies, in ms, kept beside the summaries so that
	// kovn-bench plot can draw the whole distribution.
	DenyMs    []float64 `json:"denyMs,omitempty"`
	RestoreMs []float64 `json:"restoreMs,omitempty"`
	// Every probe of the completed rounds' steps, by full outcome, and
	// every flap probe.
	DenyProbes    EnforceProbes `json:"denyProbes"`
	RestoreProbes EnforceProbes `json:"restoreProbes"`
}

func (r *EnforceResult) rows() []row {
	rows := []row{{"enforce", fmt.Sprintf("%d rounds: deny-all ingress policy on %s/server (%s); TCP probes to :80 every %.0f ms (timeout %.0f ms, followed up to %.0f ms); new state steady for %.0f ms",
		r.Rounds, EnforceNamespace, r.ServerNode, r.IntervalMs, r.ProbeTimeoutMs, r.LateLimitMs, r.SettleMs)}}
	for _, c := range r.Clients {
		if c.Deny.N == 0 {
			continue
		}
		k := "enforce " + c.Kind
		rows = append(rows,
			row{k + ": deny policy → first refused probe", c.Deny.String()},
			row{k + ": policy deleted → first answered probe", c.Restore.String()},
			row{k + ": rounds / flaps", fmt.Sprintf("%d / %d (client on %s)", c.Rounds, c.Flaps, c.Node)},
			row{k + ": deny step probes", c.DenyProbes.String()},
			row{k + ": restore step probes", c.RestoreProbes.String()})
	}
	return rows
}

// String is a table cell: the counts by kind, of the flap probes too.
func (e EnforceProbes) String() string {
	return fmt.Sprintf("%s; SYN resent %d; flap probes: %s", kindCounts(e.Kinds), e.SynRetrans, kindCounts(e.FlapKinds))
}

// probeRecord is one probe. Done and Answered are its outcome within the
// probe timeout, which the latencies use; Answered means something only
// once Done. Kind (empty while the probe runs) is its outcome in full.
type probeRecord struct {
	Start          time.Time
	Done, Answered bool
	probeOutcome
}

// settleLatency finds, among the probes begun at or after t0, the first
// whose outcome is want and after which every probe begun within settle
// had that outcome too; it returns how long after t0 that probe began.
// A probe of the other outcome after a candidate is a flap, and the search
// goes on after it. ok is false until a probe begun after the window
// shows the window is over, and while a probe up to there is still
// running, since its outcome could still break the window.
func settleLatency(recs []probeRecord, t0 time.Time, want bool, settle time.Duration) (latency time.Duration, flaps int, ok bool) {
	s := slices.Clone(recs)
	slices.SortStableFunc(s, func(a, b probeRecord) int { return a.Start.Compare(b.Start) })
	cand := -1
	for i, r := range s {
		if r.Start.Before(t0) {
			continue
		}
		if cand >= 0 && r.Start.Sub(s[cand].Start) > settle {
			return s[cand].Start.Sub(t0), flaps, true
		}
		switch {
		case !r.Done:
			return 0, flaps, false
		case r.Answered != want:
			if cand >= 0 {
				flaps++
				cand = -1
			}
		case cand < 0:
			cand = i
		}
	}
	return 0, flaps, false
}

// EnforceProbes counts one client's probes of one step (deny: begun from
// the policy's create to its delete; restore: from the delete to the
// round's end) over the rounds, by the kind of their full outcome.
type EnforceProbes struct {
	Kinds map[string]int `json:"kinds"`
	// SynRetrans counts the probes whose SYN the client's kernel sent
	// more than once (TCP_INFO total_retrans before connect ended).
	SynRetrans int `json:"synRetrans"`
	// Flap probes are those with the old outcome begun after the first
	// probe with the new one and before the one the latency is taken at.
	FlapKinds map[string]int `json:"flapKinds,omitempty"`
	Flaps     []EnforceFlap  `json:"flaps,omitempty"`
}

// EnforceFlap is one flap probe.
type EnforceFlap struct {
	Round int `json:"round"`
	// AtMs is when the probe began, after t0 (deny) or t1 (restore);
	// FirstMs when the first probe with the new outcome did, LatencyMs
	// the round's latency (the probe it is taken at).
	AtMs      float64 `json:"atMs"`
	FirstMs   float64 `json:"firstMs"`
	LatencyMs float64 `json:"latencyMs"`
	Kind      string  `json:"kind"`
	// TookMs: start → reply, error or the late limit; ConnectMs:
	// start → connect's end (0: it had not ended by the late limit).
	TookMs     float64 `json:"tookMs"`
	ConnectMs  float64 `json:"connectMs"`
	SynRetrans int     `json:"synRetrans"`
}

// add counts the finished probes begun in [from, to) (to zero: no end),
// whose latency, the settled outcome want's, is lat after from.
func (e *EnforceProbes) add(round int, recs []probeRecord, from, to time.Time, want bool, lat time.Duration) {
	if e.Kinds == nil {
		e.Kinds = map[string]int{}
	}
	s := slices.Clone(recs)
	slices.SortStableFunc(s, func(a, b probeRecord) int { return a.Start.Compare(b.Start) })
	first := time.Time{}
	settled := from.Add(lat)
	for _, r := range s {
		if r.Start.Before(from) || (!to.IsZero() && !r.Start.Before(to)) {
			continue
		}
		kind := cmp.Or(r.Kind, "running")
		e.Kinds[kind]++
		if r.SynRetrans > 0 {
			e.SynRetrans++
		}
		switch {
		case !r.Done || !r.Start.Before(settled):
			continue
		case r.Answered == want:
			if first.IsZero() {
				first = r.Start
			}
			continue
		case first.IsZero():
			continue // the old outcome, still in force
		}
		if e.FlapKinds == nil {
			e.FlapKinds = map[string]int{}
		}
		e.FlapKinds[kind]++
		e.Flaps = append(e.Flaps, EnforceFlap{Round: round, AtMs: ms(r.Start.Sub(from)), FirstMs: ms(first.Sub(from)), LatencyMs: ms(lat),
			Kind: kind, TookMs: ms(r.Took), ConnectMs: ms(r.Connect), SynRetrans: r.SynRetrans})
	}
}

// kindCounts prints counts in probeKinds' order, then any other.
func kindCounts(m map[string]int) string {
	var parts []string
	for _, k := range probeKinds {
		if m[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", m[k], k))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if !slices.Contains(probeKinds, k) && m[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", m[k], k))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// enforceClient is a pod probes start from.
type enforceClient struct{ kind, pod, node, netns string }

// prober starts a TCP probe from a client every interval, each on its own
// goroutine so that a dropped one does not delay the next.
type prober struct {
	c                  enforceClient
	netns              ns.NetNS
	addr               netip.AddrPort
	timeout, lateLimit time.Duration
	wg                 sync.WaitGroup
	mu                 sync.Mutex
	recs               []probeRecord
	err                error // making a socket in the netns failed: no outcome at all
}

func startProber(ctx context.Context, c enforceClient, addr string, interval, timeout, lateLimit time.Duration) (*prober, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, err
	}
	netns, err := ns.GetNS(c.netns)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.pod, err)
	}
	p := &prober{c: c, netns: netns, addr: ap, timeout: timeout, lateLimit: cmp.Or(lateLimit, DefaultLateLimit)}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			p.wg.Add(1)
			go p.one()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return p, nil
}

// wait waits for the probes begun, each until its outcome or late limit.
func (p *prober) wait() {
	p.wg.Wait()
	p.netns.Close()
}

func (p *prober) one() {
	defer p.wg.Done()
	// Stamped and appended under one lock, the records stay in start
	// order: a record not yet there began after all that are.
	p.mu.Lock()
	i := len(p.recs)
	start := time.Now()
	p.recs = append(p.recs, probeRecord{Start: start})
	p.mu.Unlock()
	o := tcpProbe(p.netns, p.addr, start, p.timeout, p.lateLimit, func(answered bool) {
		p.mu.Lock()
		p.recs[i].Done, p.recs[i].Answered = true, answered
		p.mu.Unlock()
	})
	p.mu.Lock()
	defer p.mu.Unlock()
	p.recs[i].probeOutcome = o
	if o.netnsErr != nil {
		p.err = cmp.Or(p.err, fmt.Errorf("%s: %w", p.c.pod, o.netnsErr))
	}
}

func (p *prober) snapshot() ([]probeRecord, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.recs), p.err
}

// seen says what p's probes since t showed, for a step that never settled.
func (p *prober) seen(t time.Time, flaps int) string {
	recs, _ := p.snapshot()
	var answered, refused, running int
	kinds := map[string]int{}
	var lastErr string
	for _, r := range recs {
		switch {
		case r.Start.Before(t):
			continue
		case !r.Done:
			running++
		case r.Answered:
			answered++
		default:
			refused++
		}
		if r.Kind != "" {
			kinds[r.Kind]++
		}
		if r.Kind == ProbeError {
			lastErr = r.Err
		}
	}
	if lastErr != "" {
		lastErr = " (last error: " + lastErr + ")"
	}
	return fmt.Sprintf("%s (%s): %d answered, %d not, %d running, %d flaps; finished: %s%s", p.c.pod, p.c.kind, answered, refused, running, flaps, kindCounts(kinds), lastErr)
}

// steady waits until every prober has settled on want after t.
func steady(ctx context.Context, o EnforceOptions, ps []*prober, t time.Time, want bool, what string) ([]time.Duration, []int, error) {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	lat, flaps, ok := make([]time.Duration, len(ps)), make([]int, len(ps)), make([]bool, len(ps))
	for {
		for i, p := range ps {
			recs, err := p.snapshot()
			if err != nil {
				return nil, nil, err
			}
			if !ok[i] {
				lat[i], flaps[i], ok[i] = settleLatency(recs, t, want, o.Settle)
			}
		}
		if !slices.Contains(ok, false) {
			return lat, flaps, nil
		}
		select {
		case <-ctx.Done():
			if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, nil, ctx.Err()
			}
			var msgs []string
			for i, p := range ps {
				if !ok[i] {
					msgs = append(msgs, p.seen(t, flaps[i]))
				}
			}
			return nil, nil, fmt.Errorf("%s: not steady for %v within %v: %s", what, o.Settle, o.Timeout, strings.Join(msgs, "; "))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// enforceRound creates the deny policy and deletes it, probing throughout.
// Once both steps are steady it stops the probes and waits for the last
// ones' full outcomes, which it adds to the clients' counts.
func enforceRound(ctx context.Context, cs kubernetes.Interface, o EnforceOptions, round int, clients []enforceClient, addr string, res []EnforceClient) (deny, restore []time.Duration, flaps []int, err error) {
	pctx, stop := context.WithCancel(ctx)
	ps := make([]*prober, 0, len(clients))
	defer func() {
		stop()
		for _, p := range ps {
			p.wait()
		}
	}()
	for _, c := range clients {
		p, err := startProber(pctx, c, addr, o.Interval, o.ProbeTimeout, o.LateLimit)
		if err != nil {
			return nil, nil, nil, err
		}
		ps = append(ps, p)
	}
	api := cs.NetworkingV1().NetworkPolicies(EnforceNamespace)
	t0 := time.Now()
	if _, err := api.Create(ctx, denyPolicy(), metav1.CreateOptions{}); err != nil {
		return nil, nil, nil, fmt.Errorf("create policy: %w", err)
	}
	deny, f1, err := steady(ctx, o, ps, t0, false, "deny policy")
	if err != nil {
		return nil, nil, nil, err
	}
	t1 := time.Now()
	if err := api.Delete(ctx, denyPolicy().Name, metav1.DeleteOptions{}); err != nil {
		return deny, nil, f1, fmt.Errorf("delete policy: %w", err)
	}
	restore, f2, err := steady(ctx, o, ps, t1, true, "policy deleted")
	if err != nil {
		return deny, nil, f1, err
	}
	stop()
	for i, p := range ps {
		p.wait()
		recs, _ := p.snapshot()
		res[i].DenyProbes.add(round, recs, t0, t1, false, deny[i])
		res[i].RestoreProbes.add(round, recs, t1, time.Time{}, true, restore[i])
		if err := o.trace(round, clients[i], t0, t1, recs); err != nil {
			return deny, restore, f1, err
		}
	}
	ps = nil
	for i := range f1 {
		f1[i] += f2[i]
	}
	return deny, restore, f1, nil
}

func denyPolicy() *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: EnforceNamespace, Name: "deny", Labels: map[string]string{BenchLabel: "true"}},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "server"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
		},
	}
}

// RunEnforce measures, with real pods on lab nodes, how long a deny-all
// NetworkPolicy takes to refuse new connections and its deletion to let
// them through again, as clients on the server's node and on another see
// it. It deletes its namespace at the end, also after a failure.
func RunEnforce(ctx context.Context, l *lab.Lab, cs kubernetes.Interface, o EnforceOptions) (res *EnforceResult, err error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	for _, n := range []string{o.ServerNode, o.OtherNodeClient} {
		if !l.HasNode(n) {
			return nil, fmt.Errorf("no lab node %q (nodes: %s)", n, strings.Join(l.NodeNames, ", "))
		}
	}
	image := l.Images["test-server"]
	if image == "" {
		return nil, fmt.Errorf("the lab has no test-server image")
	}
	nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: EnforceNamespace, Labels: map[string]string{BenchLabel: "true"}}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, nsObj, metav1.CreateOptions{}); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("namespace %s exists (an earlier run?): kovn-bench cleanup removes it", EnforceNamespace)
		}
		return nil, err
	}
	defer func() {
		// Even when interrupted: the lab is shared.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.Timeout)
		defer cancel()
		if derr := deleteNamespace(dctx, cs, EnforceNamespace); derr != nil {
			err = errors.Join(err, fmt.Errorf("delete namespace %s: %w", EnforceNamespace, derr))
		}
	}()
	res = &EnforceResult{Rounds: o.Rounds, ServerNode: o.ServerNode, IntervalMs: ms(o.Interval), ProbeTimeoutMs: ms(o.ProbeTimeout), LateLimitMs: ms(cmp.Or(o.LateLimit, DefaultLateLimit)), SettleMs: ms(o.Settle)}
	clients := []enforceClient{{kind: "same-node", pod: "client-same", node: o.SameNodeClient}, {kind: "other-node", pod: "client-other", node: o.OtherNodeClient}}
	pods := []*corev1.Pod{enforcePod("server", o.ServerNode, image)}
	for _, c := range clients {
		pods = append(pods, enforcePod(c.pod, c.node, image))
		res.Clients = append(res.Clients, EnforceClient{Kind: c.kind, Node: c.node})
	}
	ips, err := createRunning(ctx, cs, pods, o.Timeout)
	if err != nil {
		return res, err
	}
	addr := net.JoinHostPort(ips["server"], "80")
	for i, c := range clients {
		t, err := l.ResolveTarget(ctx, EnforceNamespace+"/"+c.pod)
		if err != nil {
			return res, err
		}
		clients[i].netns = t.NetNS
		if err := waitAnswered(ctx, clients[i], addr, o); err != nil {
			return res, err
		}
	}
	deny, restore := make([][]time.Duration, len(clients)), make([][]time.Duration, len(clients))
	for round := 1; round <= o.Rounds; round++ {
		d, r, f, err := enforceRound(ctx, cs, o, round, clients, addr, res.Clients)
		for i := range clients {
			c := &res.Clients[i]
			if d != nil {
				deny[i] = append(deny[i], d[i])
				c.DenyMs = append(c.DenyMs, ms(d[i]))
				c.Flaps += f[i]
			}
			if r != nil {
				restore[i] = append(restore[i], r[i])
				c.RestoreMs = append(c.RestoreMs, ms(r[i]))
				c.Rounds++
			}
			c.Deny, c.Restore = Summarise(deny[i]), Summarise(restore[i])
		}
		if err != nil {
			return res, fmt.Errorf("round %d: %w", round, err)
		}
	}
	return res, nil
}

// enforcePod is a test-server pod as test/e2e builds them; clients run
// the server too, only for a network namespace to probe from.
func enforcePod(name, node, image string) *corev1.Pod {
	fieldEnv := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: EnforceNamespace, Name: name, Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{
			NodeName:                      node,
			TerminationGracePeriodSeconds: new(int64),
			Tolerations:                   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Containers: []corev1.Container{{
				Name: "server", Image: image, ImagePullPolicy: corev1.PullNever,
				Env: []corev1.EnvVar{
					fieldEnv("POD_NAMESPACE", "metadata.namespace"),
					fieldEnv("POD_NAME", "metadata.name"),
					fieldEnv("NODE_NAME", "spec.nodeName"),
				},
			}},
		},
	}
}

// createRunning creates pods and returns their IPs once all run.
func createRunning(ctx context.Context, cs kubernetes.Interface, pods []*corev1.Pod, timeout time.Duration) (map[string]string, error) {
	for _, p := range pods {
		if _, err := cs.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("create pod %s: %w", p.Name, err)
		}
	}
	ips := map[string]string{}
	err := pollFor(ctx, timeout, func(ctx context.Context) error {
		for _, p := range pods {
			cur, err := cs.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if cur.Status.Phase != corev1.PodRunning || cur.Status.PodIP == "" {
				return fmt.Errorf("pod %s/%s on %s is %s (ip %q)", p.Namespace, p.Name, p.Spec.NodeName, cur.Status.Phase, cur.Status.PodIP)
			}
			ips[p.Name] = cur.Status.PodIP
		}
		return nil
	})
	return ips, err
}

// waitAnswered waits for a first answer: a fresh pod's first packets may
// be lost while its flows are installed, which no round should measure.
func waitAnswered(ctx context.Context, c enforceClient, addr string, o EnforceOptions) error {
	err := pollFor(ctx, o.Timeout, func(ctx context.Context) error {
		return ns.WithNetNSPath(c.netns, func(ns.NetNS) error {
			_, _, err := probe.Probe(ctx, "tcp", addr, o.ProbeTimeout)
			return err
		})
	})
	if err != nil {
		return fmt.Errorf("%s never reached the server before any policy: %w", c.pod, err)
	}
	return nil
}

func deleteNamespace(ctx context.Context, cs kubernetes.Interface, name string) error {
	if err := cs.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return pollFor(ctx, 0, func(ctx context.Context) error {
		_, err := cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return cmp.Or(err, fmt.Errorf("namespace %s still exists", name))
	})
}

// pollFor retries f until it succeeds or timeout (if positive) or ctx
// ends, and then returns f's last error that ctx's end did not cause.
func pollFor(ctx context.Context, timeout time.Duration, f func(context.Context) error) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	var last error
	for {
		err := f(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() == nil || last == nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return last
		case <-time.After(250 * time.Millisecond):
		}
	}
}
