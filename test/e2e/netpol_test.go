package e2e

// The NetworkPolicy truth table: 3 namespaces × 3 test-server pods spread
// over the nodes; for every policy case the whole probe matrix (9 × 9 pods
// × TCP 80, TCP 81, UDP 80, UDP 81) is observed with `kovn-lab probe
// --batch` and compared with what the independent model
// (netpol_model_test.go) predicts. After every change the observed matrix
// must match within npConverge. Cases are in netpol_cases_test.go.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kovn-io/kovn/go-controller/pkg/lab/probe"
)

const (
	npConverge     = 3 * time.Second        // a change must show within this
	npProbeTimeout = "1.5s"                 // per probe; a denied probe costs this
	npInterval     = 500 * time.Millisecond // a new observation starts this often
	npInFlight     = 4                      // observations running at once
)

// npPort is one column group of the matrix.
type npPort struct {
	proto corev1.Protocol
	port  int32
}

func (p npPort) String() string {
	return strings.ToLower(string(p.proto)) + "/" + strconv.Itoa(int(p.port))
}

var npPorts = []npPort{{corev1.ProtocolTCP, 80}, {corev1.ProtocolTCP, 81}, {corev1.ProtocolUDP, 80}, {corev1.ProtocolUDP, 81}}

// npNamedPorts are the named container ports of pods a, b and c in every
// namespace: "serve-80" is TCP 80 on a but TCP 81 on b, so a named-port
// rule must be resolved per pod; c names neither.
var npNamedPorts = map[string][]corev1.ContainerPort{
	"a": {{Name: "serve-80", ContainerPort: 80, Protocol: corev1.ProtocolTCP}, {Name: "serve-udp", ContainerPort: 80, Protocol: corev1.ProtocolUDP}},
	"b": {{Name: "serve-80", ContainerPort: 81, Protocol: corev1.ProtocolTCP}, {Name: "serve-udp", ContainerPort: 81, Protocol: corev1.ProtocolUDP}},
	"c": {{Name: "serve-81", ContainerPort: 81}}, // protocol defaults to TCP
}

// npSuite is the lab state the cases act on.
type npSuite struct {
	e        *env
	short    []string                               // x, y, z
	real     map[string]string                      // x → its namespace's real name
	pods     []*corev1.Pod                          // live, in display order x/a … z/c
	nsLabels map[string]map[string]string           // real namespace → live labels
	policies map[string]*networkingv1.NetworkPolicy // "ns/name" → as the test wrote it
	subnets  map[string]netip.Prefix                // node → pod subnet
	broken   string                                 // unhealthy lab components seen after a failure
}

func newNPSuite(t *testing.T, e *env) *npSuite {
	s := &npSuite{e: e, short: []string{"x", "y", "z"}, real: map[string]string{}, policies: map[string]*networkingv1.NetworkPolicy{}}
	var pods []*corev1.Pod
	for i, sh := range s.short {
		s.real[sh] = e.namespace(t, "np-"+sh)
		s.patchLabels(t, "", sh, map[string]any{"ns": sh})
		for j, name := range []string{"a", "b", "c"} {
			p := e.testServerPod(s.real[sh], name, e.lab.NodeNames[(i+j)%len(e.lab.NodeNames)])
			p.Spec.Containers[0].Ports = npNamedPorts[name]
			pods = append(pods, p)
		}
	}
	e.createRunning(t, 2*time.Minute, pods...)
	s.subnets = e.nodeSubnets(t)
	s.refresh(t)
	return s
}

// TestNetworkPolicyTruthTable: the matrix without policies must be
// all-allowed, then every case (netpol_cases_test.go) starts from no
// policy and the original labels (checked all-allowed again) and applies
// its steps; after each step the observed matrix must match the model's
// within npConverge. Self pairs are included: the model always allows
// them (see netpol_model_test.go).
func TestNetworkPolicyTruthTable(t *testing.T) {
	e := setup(t)
	requireController(t, e)
	requireKovnCNI(t, e)
	began := time.Now()
	purgesBefore := changePurges(t, e)
	s := newNPSuite(t, e)
	for _, p := range s.pods {
		t.Logf("pod %s: %s on %s", s.display(p.Namespace, p.Name), p.Status.PodIP, p.Spec.NodeName)
	}
	t.Logf("setup took %.1fs", time.Since(began).Seconds())
	allowAll := s.predict()
	if a, _ := allowAll.count(); a != len(allowAll.cells) {
		t.Fatal("the model denies something without any policy")
	}
	if !t.Run("no-policy", func(t *testing.T) {
		s.converge(t, "no policy (pods just started)", allowAll, time.Now(), time.Minute)
	}) {
		t.Fatal("the matrix without policies is not all-allowed: policy cases would prove nothing")
	}
	cases := npCases()
	var report []string
	for _, c := range cases {
		if s.broken != "" {
			t.Fatalf("the lab is unhealthy; the remaining cases would prove nothing:\n%s", s.broken)
		}
		t.Run(c.name, func(t *testing.T) {
			caseStart := time.Now()
			t.Logf("covers: %s", c.covers)
			s.reset(t)
			if _, ok := s.converge(t, "before the case: every policy deleted, labels restored", allowAll, time.Now(), npConverge); !ok {
				t.FailNow()
			}
			prev, worst, failed := allowAll, time.Duration(0), 0
			for i, st := range c.steps {
				what := fmt.Sprintf("step %d/%d %q", i+1, len(c.steps), st.name)
				st.do(t, s)
				changedAt := time.Now()
				want := s.predict()
				if same := want.equal(prev); same != st.unchanged {
					t.Errorf("%s: the model's matrix changed=%v, the case expects changed=%v: the step does not test what it says", what, !same, !st.unchanged)
				}
				conv, ok := s.converge(t, what, want, changedAt, npConverge)
				if !ok {
					failed++
					if s.broken != "" {
						t.FailNow() // the lab broke: later steps would prove nothing
					}
				}
				worst = max(worst, conv)
				prev = want
			}
			a, d := prev.count()
			res := fmt.Sprintf("ok, slowest step converged in %.2fs", worst.Seconds())
			if failed > 0 {
				res = fmt.Sprintf("FAILED (%d of %d steps)", failed, len(c.steps))
			}
			line := fmt.Sprintf("%-30s %d step(s), final %3d allow/%3d deny, %4.1fs: %s",
				c.name, len(c.steps), a, d, time.Since(caseStart).Seconds(), res)
			t.Log(line)
			report = append(report, line)
		})
	}
	s.reset(t)
	t.Logf("%d cases in %.0fs:\n%s", len(cases), time.Since(began).Seconds(), strings.Join(report, "\n"))
	// Every node's flow purge after OpenFlow changes (docs/node.md) must
	// have run: once its monitor silently reported nothing, and only the
	// periodic purge was left.
	for node, after := range changePurges(t, e) {
		if before, ok := purgesBefore[node]; ok && after <= before {
			t.Errorf("%s: kovn_node_datapath_flow_purges_total{reason=\"change\"} stayed at %v through the suite's policy changes", node, after)
		}
	}
}

func (s *npSuite) ns(short string) string { return s.real[short] }

// display turns a real "ns/pod" into "x/a".
func (s *npSuite) display(ns, name string) string {
	for sh, r := range s.real {
		if r == ns {
			return sh + "/" + name
		}
	}
	return ns + "/" + name
}

// pod returns the live pod "x/a".
func (s *npSuite) pod(t *testing.T, key string) *corev1.Pod {
	for _, p := range s.pods {
		if s.display(p.Namespace, p.Name) == key {
			return p
		}
	}
	t.Fatalf("no pod %s", key)
	return nil
}

func (s *npSuite) ip(t *testing.T, key string) string { return s.pod(t, key).Status.PodIP }

// subnetOf is the pod subnet of the node pod key runs on.
func (s *npSuite) subnetOf(t *testing.T, key string) string {
	return s.subnets[s.pod(t, key).Spec.NodeName].String()
}

// refresh reads pods and namespace labels back from the API.
func (s *npSuite) refresh(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	s.pods, s.nsLabels = nil, map[string]map[string]string{}
	for _, sh := range s.short {
		ns, err := s.e.cs.CoreV1().Namespaces().Get(ctx, s.real[sh], metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s.nsLabels[ns.Name] = ns.Labels
		list, err := s.e.cs.CoreV1().Pods(s.real[sh]).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range list.Items {
			p := &list.Items[i]
			if p.DeletionTimestamp != nil {
				continue
			}
			if p.Status.PodIP == "" {
				t.Fatalf("pod %s/%s has no IP", p.Namespace, p.Name)
			}
			s.pods = append(s.pods, p)
		}
	}
	sort.Slice(s.pods, func(i, j int) bool {
		return s.display(s.pods[i].Namespace, s.pods[i].Name) < s.display(s.pods[j].Namespace, s.pods[j].Name)
	})
	if len(s.pods) != 9 {
		t.Fatalf("%d pods, want 9", len(s.pods))
	}
}

// patchLabels merges labels into a pod ("x/a") or, with pod "", a
// namespace ("x"); a nil value removes the label.
func (s *npSuite) patchLabels(t *testing.T, pod, ns string, labels map[string]any) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": labels}})
	ctx := context.Background()
	var err error
	if pod == "" {
		_, err = s.e.cs.CoreV1().Namespaces().Patch(ctx, s.real[ns], types.MergePatchType, body, metav1.PatchOptions{})
	} else {
		p := s.pod(t, pod)
		_, err = s.e.cs.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.MergePatchType, body, metav1.PatchOptions{})
	}
	if err != nil {
		t.Fatal(err)
	}
}

// apply creates or replaces policies, remembering them as written for the
// model (not as the API server defaulted them).
func (s *npSuite) apply(t *testing.T, pols ...*networkingv1.NetworkPolicy) {
	t.Helper()
	ctx := context.Background()
	for _, p := range pols {
		c := s.e.cs.NetworkingV1().NetworkPolicies(p.Namespace)
		obj := p.DeepCopy()
		cur, err := c.Get(ctx, p.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			_, err = c.Create(ctx, obj, metav1.CreateOptions{})
		case err == nil:
			obj.ResourceVersion = cur.ResourceVersion
			_, err = c.Update(ctx, obj, metav1.UpdateOptions{})
		}
		if err != nil {
			t.Fatalf("policy %s/%s: %v", p.Namespace, p.Name, err)
		}
		s.policies[p.Namespace+"/"+p.Name] = p.DeepCopy()
	}
}

// recreate deletes pod key and creates it again on the next node, so it
// comes back with a new IP (another node's subnet).
func (s *npSuite) recreate(t *testing.T, key string) {
	t.Helper()
	old := s.pod(t, key)
	ctx := context.Background()
	c := s.e.cs.CoreV1().Pods(old.Namespace)
	if err := c.Delete(ctx, old.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	err := poll(time.Minute, func() error {
		if _, err := c.Get(ctx, old.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("pod %s not gone yet (%v)", key, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	nodes := s.e.lab.NodeNames
	next := nodes[0]
	for i, n := range nodes {
		if n == old.Spec.NodeName {
			next = nodes[(i+1)%len(nodes)]
		}
	}
	p := s.e.testServerPod(old.Namespace, old.Name, next)
	p.Labels = old.Labels
	p.Spec.Containers[0].Ports = npNamedPorts[old.Name]
	got := s.e.createRunning(t, time.Minute, p)[0]
	if got.Status.PodIP == old.Status.PodIP {
		t.Fatalf("pod %s came back with its old IP %s", key, got.Status.PodIP)
	}
	t.Logf("recreated %s: %s on %s → %s on %s", key, old.Status.PodIP, old.Spec.NodeName, got.Status.PodIP, got.Spec.NodeName)
	s.refresh(t)
}

// reset deletes every policy and restores the original labels.
func (s *npSuite) reset(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	for _, sh := range s.short {
		err := s.e.cs.NetworkingV1().NetworkPolicies(s.real[sh]).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"ns": sh, "kubernetes.io/metadata.name": s.real[sh]}
		s.restoreLabels(t, "", sh, s.nsLabels[s.real[sh]], want)
	}
	for _, p := range s.pods {
		s.restoreLabels(t, s.display(p.Namespace, p.Name), "", p.Labels, map[string]string{"app": p.Name})
	}
	s.policies = map[string]*networkingv1.NetworkPolicy{}
	s.refresh(t)
}

func (s *npSuite) restoreLabels(t *testing.T, pod, ns string, have, want map[string]string) {
	patch := map[string]any{}
	for k, v := range have {
		if _, ok := want[k]; !ok {
			patch[k] = nil
		} else if want[k] != v {
			patch[k] = want[k]
		}
	}
	for k, v := range want {
		if _, ok := have[k]; !ok {
			patch[k] = v
		}
	}
	if len(patch) > 0 {
		s.patchLabels(t, pod, ns, patch)
	}
}

// labTrouble returns the unhealthy lines of `kovn-lab status` (components
// not running, nodes not Ready), or "" when the lab is healthy.
func (s *npSuite) labTrouble(t *testing.T) string {
	out, err := s.e.labCmd(t, nil, "status")
	if err == nil {
		return ""
	}
	var bad []string
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) == 0, f[0] == "COMPONENT", f[0] == "HOST":
		case len(f) == 4 && f[3] == "running":
		case len(f) >= 3 && f[2] == "Ready":
		default:
			bad = append(bad, "    "+l)
		}
	}
	if len(bad) == 0 {
		return "    " + err.Error()
	}
	return strings.Join(bad, "\n")
}

// npCell is one entry of a matrix; detail says why a probe was denied.
type npCell struct {
	allow  bool
	detail string
}

// npMatrix is pods × pods × npPorts, flattened.
type npMatrix struct {
	names []string // x/a …
	cells []npCell
}

func newMatrix(names []string) *npMatrix {
	return &npMatrix{names: names, cells: make([]npCell, len(names)*len(names)*len(npPorts))}
}

func (m *npMatrix) at(from, to, port int) *npCell {
	return &m.cells[(from*len(m.names)+to)*len(npPorts)+port]
}

func (s *npSuite) names() []string {
	var out []string
	for _, p := range s.pods {
		out = append(out, s.display(p.Namespace, p.Name))
	}
	return out
}

// predict is the model's matrix for the current state.
func (s *npSuite) predict() *npMatrix {
	m := &npModel{Namespaces: s.nsLabels}
	keys := make([]string, 0, len(s.policies))
	for k := range s.policies {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		m.Policies = append(m.Policies, s.policies[k])
	}
	var mp []*mPod
	for _, p := range s.pods {
		var ports []corev1.ContainerPort
		for _, c := range p.Spec.Containers {
			ports = append(ports, c.Ports...)
		}
		mp = append(mp, &mPod{Namespace: p.Namespace, Name: p.Name, Labels: p.Labels, IP: netip.MustParseAddr(p.Status.PodIP), Ports: ports})
	}
	out := newMatrix(s.names())
	for i, from := range mp {
		for j, to := range mp {
			for k, pp := range npPorts {
				out.at(i, j, k).allow = m.Allowed(from, to, pp.proto, pp.port)
			}
		}
	}
	return out
}

// observe probes the whole matrix: one `kovn-lab probe --batch` per
// source pod, all at once. A probe counts as allowed only when the
// destination's test server answered with its own identity.
func (s *npSuite) observe(ctx context.Context, pods []*corev1.Pod, names []string) (m *npMatrix, first, last time.Time) {
	m = newMatrix(names)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, from := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var in bytes.Buffer
			for _, to := range pods {
				for _, pp := range npPorts {
					b, _ := json.Marshal(probe.Target{Proto: strings.ToLower(string(pp.proto)), Addr: netip.AddrPortFrom(netip.MustParseAddr(to.Status.PodIP), uint16(pp.port)).String()})
					in.Write(append(b, '\n'))
				}
			}
			cmd := exec.CommandContext(ctx, s.e.labBin, "--state-dir", s.e.lab.StateDir, "probe", "--from", from.Namespace+"/"+from.Name, "--batch", "--timeout", npProbeTimeout)
			var out, stderr bytes.Buffer
			cmd.Stdin, cmd.Stdout, cmd.Stderr = &in, &out, &stderr
			err := cmd.Run()
			var rs []probe.Result
			if err == nil {
				rs, err = probe.ReadResults(&out)
			}
			if err == nil && len(rs) != len(pods)*len(npPorts) {
				err = fmt.Errorf("%d results for %d targets", len(rs), len(pods)*len(npPorts))
			}
			for j, to := range pods {
				for k := range npPorts {
					c := m.at(i, j, k)
					if err != nil {
						c.detail = fmt.Sprintf("batch probe from %s failed: %v: %s", names[i], err, strings.TrimSpace(stderr.String()))
						continue
					}
					r := rs[j*len(npPorts)+k]
					mu.Lock()
					if first.IsZero() || r.Start.Before(first) {
						first = r.Start
					}
					if r.Start.After(last) {
						last = r.Start
					}
					mu.Unlock()
					switch want := to.Namespace + "/" + to.Name; {
					case !r.Answered:
						c.detail = r.Error
					case r.Reply.Pod != want:
						c.detail = fmt.Sprintf("answered by %s, not %s", r.Reply.Pod, want)
					default:
						c.allow = true
					}
				}
			}
		}()
	}
	wg.Wait()
	return m, first, last
}

func verdict(allow bool) string {
	if allow {
		return "allow"
	}
	return "deny"
}

// diff lists the entries where got differs from want, readably.
func (want *npMatrix) diff(got *npMatrix) (rows []string, wrongAllow, wrongDeny int) {
	n := len(want.names)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			for k, pp := range npPorts {
				w, g := want.at(i, j, k), got.at(i, j, k)
				if w.allow == g.allow {
					continue
				}
				row := fmt.Sprintf("%s → %s %s: want %s, got %s", want.names[i], want.names[j], pp, verdict(w.allow), verdict(g.allow))
				if g.allow {
					wrongAllow++
				} else {
					wrongDeny++
					row += " (" + g.detail + ")"
				}
				rows = append(rows, row)
			}
		}
	}
	return rows, wrongAllow, wrongDeny
}

func (want *npMatrix) equal(other *npMatrix) bool {
	rows, _, _ := want.diff(other)
	return len(rows) == 0
}

func (m *npMatrix) count() (allow, deny int) {
	for _, c := range m.cells {
		if c.allow {
			allow++
		} else {
			deny++
		}
	}
	return allow, deny
}

// grid draws got against want: one row per client, one group of four
// characters per server (tcp/80 tcp/81 udp/80 udp/81); + allowed and . denied
// as predicted, A allowed but predicted denied, D denied but predicted allowed.
func (want *npMatrix) grid(got *npMatrix) string {
	var b strings.Builder
	fmt.Fprintf(&b, "     %-15s", "client\\server")
	for _, n := range want.names {
		fmt.Fprintf(&b, " %-4s", n)
	}
	b.WriteString("   (each: tcp/80 tcp/81 udp/80 udp/81; + allow, . deny, A wrongly allowed, D wrongly denied)\n")
	for i, from := range want.names {
		fmt.Fprintf(&b, "     %-10s     ", from)
		for j := range want.names {
			b.WriteByte(' ')
			for k := range npPorts {
				w, g := want.at(i, j, k).allow, got.at(i, j, k).allow
				b.WriteByte(map[[2]bool]byte{{true, true}: '+', {false, false}: '.', {false, true}: 'A', {true, false}: 'D'}[[2]bool{w, g}])
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// npObservation is one observed matrix; first and last are when its
// first and last probes began (zero if no batch probe ran).
type npObservation struct {
	m           *npMatrix
	first, last time.Time
}

// converge observes the matrix until it equals want: a new observation is
// launched every npInterval (at most npInFlight at once) until limit after
// changedAt. It passes on the earliest matching observation whose first
// probe began within limit of changedAt, and fails the test with the last
// observation's differences otherwise. The convergence time it returns
// and logs is when that observation's first probe began: by then the data
// plane was right for every entry probed at once.
func (s *npSuite) converge(t *testing.T, what string, want *npMatrix, changedAt time.Time, limit time.Duration) (time.Duration, bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pods, names := append([]*corev1.Pod(nil), s.pods...), s.names()
	queue := make(chan chan npObservation, 1024)
	var running sync.WaitGroup
	defer func() { // stop launching, kill what still runs, wait for it
		cancel()
		for range queue {
		}
		running.Wait()
	}()
	go func() {
		defer close(queue)
		slots := make(chan struct{}, npInFlight)
		for k := 0; ; k++ {
			select {
			case <-time.After(time.Until(changedAt.Add(time.Duration(k) * npInterval))):
			case <-ctx.Done():
				return
			}
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			if time.Since(changedAt) > limit {
				return
			}
			ch := make(chan npObservation, 1)
			queue <- ch
			running.Add(1)
			go func() {
				defer running.Done()
				m, first, last := s.observe(ctx, pods, names)
				ch <- npObservation{m, first, last}
				<-slots
			}()
		}
	}()
	var last npObservation
	n := 0
	for ch := range queue {
		o := <-ch
		late := !o.first.IsZero() && o.first.Sub(changedAt) > limit
		if late && n > 0 {
			continue // began too late to count
		}
		last = o
		n++
		if !late && !o.first.IsZero() && want.equal(o.m) {
			conv := o.first.Sub(changedAt)
			a, d := want.count()
			t.Logf("%s: %d allow / %d deny as predicted; matched by observation %d, probes began +%.2fs…+%.2fs",
				what, a, d, n, conv.Seconds(), o.last.Sub(changedAt).Seconds())
			return conv, true
		}
	}
	if n == 0 {
		t.Errorf("%s: no observation ran", what)
		return 0, false
	}
	began := "no probe ran"
	if !last.first.IsZero() {
		began = fmt.Sprintf("the last began +%.2fs", last.first.Sub(changedAt).Seconds())
	}
	health := ""
	if s.broken = s.labTrouble(t); s.broken != "" {
		health = "THE LAB IS UNHEALTHY (kovn-lab status), so this says little about policy:\n" + s.broken + "\n"
	}
	rows, wa, wd := want.diff(last.m)
	const maxRows = 40
	more := ""
	if len(rows) > maxRows {
		more = fmt.Sprintf("\n… and %d more", len(rows)-maxRows)
		rows = rows[:maxRows]
	}
	t.Errorf("%s: observed matrix still differs from the model %.1fs after the change (%d observations; %s): "+
		"%d entries wrongly allowed, %d wrongly denied\n%s%s%s%s",
		what, limit.Seconds(), n, began, wa, wd, health, want.grid(last.m), strings.Join(rows, "\n"), more)
	s.dumpState(t)
	if wa > 0 {
		s.investigateWrongAllows(t, want, last.m)
	}
	return 0, false
}

// dumpState logs what NB and the datapaths held when a step failed, for
// the intermittent single-entry mismatches still being chased (see the
// issue notes): every port group with its ACLs, and each node's conntrack
// entries of the pods' ports 80/81.
func (s *npSuite) dumpState(t *testing.T) {
	nb := "unix:" + s.e.lab.StateDir + "/ovn/nb.sock"
	out, err := s.e.labCmd(t, nil, "exec", "host:cp", "--", "ovn-nbctl", "--db", nb,
		"--columns=name,ports,acls,external_ids", "list", "port_group")
	t.Logf("port groups at the failure (%v):\n%s", err, out)
	out, err = s.e.labCmd(t, nil, "exec", "host:cp", "--", "ovn-nbctl", "--db", nb,
		"--columns=_uuid,direction,priority,action,match", "list", "acl")
	t.Logf("ACLs at the failure (%v):\n%s", err, out)
	for _, node := range s.e.lab.NodeNames {
		out, err = s.e.labCmd(t, nil, "exec", "host:"+node, "--", "ovs-appctl", "dpctl/dump-conntrack")
		var keep []string
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, "dport=80)") || strings.Contains(l, "dport=81)") {
				keep = append(keep, l)
			}
		}
		t.Logf("%s conntrack, ports 80/81 (%v):\n%s", node, err, strings.Join(keep, "\n"))
	}
}

// changePurges reads each node's count of purges after OpenFlow changes;
// a node without the metric (kernel datapath) is left out.
func changePurges(t *testing.T, e *env) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, node := range e.lab.NodeNames {
		_, page, err := nodeGet(node, "/metrics")
		if err != nil {
			t.Errorf("%s: scrape kovn-node: %v", node, err)
			continue
		}
		var sum float64
		found := false
		for _, line := range strings.Split(page, "\n") {
			rest, ok := strings.CutPrefix(line, "kovn_node_datapath_flow_purges_total{")
			if !ok || !strings.Contains(rest, `reason="change"`) {
				continue
			}
			if _, v, ok := strings.Cut(rest, "} "); ok {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					sum += f
					found = true
				}
			}
		}
		if found {
			out[node] = sum
		}
	}
	return out
}
