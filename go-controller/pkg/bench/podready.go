package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kovn-io/kovn/go-controller/pkg/lab"
)

// PodReadyNamespace holds the podready scenario's pods. It carries
// BenchLabel so that kovn-bench cleanup removes it after a crashed run.
const PodReadyNamespace = "bench-podready"

// podReadyPhaseLabel tells the burst's pods from the steady phase's, so
// that each phase watches and deletes only its own.
const podReadyPhaseLabel = "kovn.io/bench-phase"

// PodReadyOptions configure a podready run.
type PodReadyOptions struct {
	Burst   int // pods created at once (0: no burst phase)
	Writers int // parallel creates in the burst
	// Rate pods are created per second for Duration (0: no steady phase).
	Rate     float64
	Duration time.Duration
	// Age is how long a steady pod lives after Ready before it is
	// deleted, so that the nodes hold about Rate × (time to Ready + Age)
	// pods, not all of them.
	Age     time.Duration
	Timeout time.Duration // for a phase's pods to be Ready, and to be gone
	// Nodes the pods are bound to round-robin (spec.nodeName, so that the
	// scheduler is not part of the figure); empty: every lab node.
	Nodes []string
	// Perf profiles each phase, into a file named after it.
	Perf PerfOptions
}

// DefaultPodReady is the run of the benchmarks issue and docs/benchmarks.md.
func DefaultPodReady() PodReadyOptions {
	return PodReadyOptions{Burst: 100, Writers: 32, Rate: 5, Duration: time.Minute, Age: 10 * time.Second, Timeout: 5 * time.Minute}
}

// Validate rejects options that would measure nothing.
func (o PodReadyOptions) Validate() error {
	switch {
	case o.Burst < 0 || o.Rate < 0 || o.Duration < 0 || o.Age < 0:
		return fmt.Errorf("--burst, --rate, --duration and --age must not be negative")
	case o.Burst > 0 && o.Writers < 1:
		return fmt.Errorf("--writers must be positive, got %d", o.Writers)
	case o.Timeout <= 0:
		return fmt.Errorf("--timeout must be positive")
	case o.Rate > 0 && o.steadyPods() < 1:
		return fmt.Errorf("--rate %g for --duration %v creates no pod", o.Rate, o.Duration)
	case o.Burst == 0 && o.Rate == 0:
		return fmt.Errorf("--burst and --rate are both 0: nothing to measure")
	}
	return nil
}

// steadyPods is how many pods the steady phase creates.
func (o PodReadyOptions) steadyPods() int {
	return int(math.Round(o.Rate * o.Duration.Seconds()))
}

// PodReadyResult holds a podready run's figures, per phase.
type PodReadyResult struct {
	Nodes           []string      `json:"nodes"`
	Writers         int           `json:"writers"`
	Rate            float64       `json:"ratePerSecond"`
	DurationSeconds float64       `json:"durationSeconds"`
	AgeSeconds      float64       `json:"ageSeconds"`
	Burst           PodReadyPhase `json:"burst"`
	Steady          PodReadyPhase `json:"steady"`
	// Warnings are what did not stop the run but may colour its figures.
	Warnings []string `json:"warnings,omitempty"`
}

// PodReadyPhase is one phase's figures; Pods is 0 for a phase not run.
type PodReadyPhase struct {
	Pods   int `json:"pods"`
	Failed int `json:"failed"` // create failed, or not Ready within the timeout
	// Ready is create sent → first watch event showing Ready=True.
	Ready   Dist      `json:"ready"`
	ReadyMs []float64 `json:"readyMs"` // every Ready pod's latency, sorted, for plots
	// FirstToLastSeconds is the first create sent → the last pod Ready.
	FirstToLastSeconds float64 `json:"firstToLastSeconds"`
	// CNI is kovn_cni_add_phase_seconds over the phase, summed over the
	// nodes, by phase label; it counts every ADD on those nodes then.
	CNI map[string]CNIPhase `json:"cni,omitempty"`
	// CPUSeconds is where the machine's CPU went during the phase, by lab
	// component ("other": containerd's shims, runc, the pods themselves
	// and anything outside the lab): what bounds pod readiness.
	CPUSeconds       map[string]float64 `json:"cpuSeconds,omitempty"`
	CPUWindowSeconds float64            `json:"cpuWindowSeconds,omitempty"`
	// Profile splits the same CPU by process name, "other"'s
	// short-lived processes too, and by symbol.
	Profile *CPUProfile `json:"profile,omitempty"`
}

// CNIPhase is one CNI ADD phase over a run's phase; the percentiles are
// interpolated within histogram buckets, as histogram_quantile does.
type CNIPhase struct {
	Count  int     `json:"count"`
	MeanMs float64 `json:"meanMs"`
	P50Ms  float64 `json:"p50Ms"`
	P99Ms  float64 `json:"p99Ms"`
}

func (r *PodReadyResult) rows() []row {
	rows := []row{{"podready", fmt.Sprintf("pause pods in %s bound round-robin to %s; create sent → first watch event with Ready=True",
		PodReadyNamespace, strings.Join(r.Nodes, ", "))}}
	if r.Burst.Pods > 0 {
		rows = append(rows, r.Burst.rows(fmt.Sprintf("burst of %d", r.Burst.Pods), "burst",
			fmt.Sprintf("%d writers", r.Writers))...)
	}
	if r.Steady.Pods > 0 {
		rows = append(rows, r.Steady.rows(fmt.Sprintf("steady %g pods/s for %g s", r.Rate, r.DurationSeconds), "steady",
			fmt.Sprintf("each deleted %g s after Ready", r.AgeSeconds))...)
	}
	for _, w := range r.Warnings {
		rows = append(rows, row{"podready warning", w})
	}
	return rows
}

func (p PodReadyPhase) rows(title, short, how string) []row {
	rows := []row{
		{"pod ready, " + title + ": creation → Ready", p.Ready.String()},
		{short + ": pods / failed / first create → last Ready", fmt.Sprintf("%d / %d / %s (%s)", p.Pods, p.Failed, fs(p.FirstToLastSeconds), how)},
	}
	for _, ph := range []struct{ key, label string }{
		{"annotation", "annotation wait"}, {"plumbing", "plumbing"}, {"ovn-installed", "ovn-installed wait"},
	} {
		c, ok := p.CNI[ph.key]
		if !ok {
			continue
		}
		rows = append(rows, row{short + ": CNI ADD " + ph.label, fmt.Sprintf("n=%d, mean %s, p50 ≈%s, p99 ≈%s (from histogram buckets)",
			c.Count, fmsShort(c.MeanMs), fmsShort(c.P50Ms), fmsShort(c.P99Ms))})
	}
	if len(p.CPUSeconds) > 0 {
		rows = append(rows, row{short + ": CPU seconds", fmt.Sprintf("in %.1f s: %s", p.CPUWindowSeconds, busiest(p.CPUSeconds, 10))})
	}
	return append(rows, p.Profile.rows(short+": ")...)
}

// fmsShort shows small times (the annotation wait is a cache read, well
// under a millisecond) with two decimals and the rest without.
func fmsShort(v float64) string {
	if v < 10 {
		return fmt.Sprintf("%.2f ms", v)
	}
	return fmt.Sprintf("%.0f ms", v)
}

// RunPodReady measures, with real pods on the lab's nodes, the time from
// a pod's create to its Ready condition (kubelet, containerd and kovn's
// CNI), first for a burst, then at a steady rate, and kovn-node's CNI ADD
// phases meanwhile. It deletes its namespace at the end, also after a
// failure.
func RunPodReady(ctx context.Context, l *lab.Lab, cs kubernetes.Interface, o PodReadyOptions) (res *PodReadyResult, err error) {
	if len(o.Nodes) == 0 {
		o.Nodes = l.NodeNames
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if len(o.Nodes) == 0 {
		return nil, fmt.Errorf("the lab has no nodes")
	}
	for _, n := range o.Nodes {
		if !l.HasNode(n) {
			return nil, fmt.Errorf("no lab node %q (nodes: %s)", n, strings.Join(l.NodeNames, ", "))
		}
	}
	image := l.Images["pause"]
	if image == "" {
		return nil, fmt.Errorf("the lab has no pause image")
	}
	nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: PodReadyNamespace, Labels: map[string]string{BenchLabel: "true"}}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, nsObj, metav1.CreateOptions{}); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("namespace %s exists (an earlier run?): kovn-bench cleanup removes it", PodReadyNamespace)
		}
		return nil, err
	}
	defer func() {
		// Even when interrupted: the lab is shared.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.Timeout)
		defer cancel()
		if derr := deleteNamespace(dctx, cs, PodReadyNamespace); derr != nil {
			err = errors.Join(err, fmt.Errorf("delete namespace %s: %w", PodReadyNamespace, derr))
		}
	}()
	// The ServiceAccount admission plugin refuses pods until the
	// namespace's default account exists; a refused create is no figure.
	if err := pollFor(ctx, o.Timeout, func(ctx context.Context) error {
		_, err := cs.CoreV1().ServiceAccounts(PodReadyNamespace).Get(ctx, "default", metav1.GetOptions{})
		return err
	}); err != nil {
		return nil, fmt.Errorf("service account %s/default: %w", PodReadyNamespace, err)
	}
	res = &PodReadyResult{Nodes: o.Nodes, Writers: o.Writers, Rate: o.Rate, DurationSeconds: secs(o.Duration), AgeSeconds: secs(o.Age)}
	// measured runs one phase and records the machine's CPU around it,
	// and its profile, also of a phase that failed: where did it go?
	measured := func(ph *PodReadyPhase, name string, run func() (PodReadyPhase, error)) error {
		prof := startProfile(o.Perf.Phase(name))
		defer prof.close()
		before, start := CPUSnapshot(l), time.Now()
		var err error
		*ph, err = run()
		after := CPUSnapshot(l)
		prof.pause()
		ph.CPUSeconds, ph.CPUWindowSeconds = CPUDelta(before, after), secs(time.Since(start))
		var perr error
		if ph.Profile, perr = prof.finish(ctx); perr != nil {
			res.Warnings = append(res.Warnings, name+": "+perr.Error())
		}
		return err
	}
	if o.Burst > 0 {
		var warn []string
		err = measured(&res.Burst, "burst", func() (PodReadyPhase, error) {
			ph, w, err := podReadyBurst(ctx, cs, o, image)
			warn = w
			return ph, err
		})
		res.Warnings = append(res.Warnings, warn...)
		if err != nil {
			return res, fmt.Errorf("burst: %w", err)
		}
	}
	if o.Rate > 0 {
		err = measured(&res.Steady, "steady", func() (PodReadyPhase, error) { return podReadySteady(ctx, cs, o, image) })
		if err != nil {
			return res, fmt.Errorf("steady: %w", err)
		}
	}
	return res, nil
}

// podReadyPod is a pause pod bound to node: nothing in it but the
// sandbox, so that its Ready time is kubelet's, containerd's and CNI's.
func podReadyPod(name, phase, node, image string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: PodReadyNamespace, Name: name, Labels: map[string]string{podReadyPhaseLabel: phase}},
		Spec: corev1.PodSpec{
			NodeName:                      node,
			TerminationGracePeriodSeconds: new(int64),
			Tolerations:                   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Containers:                    []corev1.Container{{Name: "pause", Image: image, ImagePullPolicy: corev1.PullNever}},
		},
	}
}

// podReadyPods names a phase's n pods and binds them round-robin.
func podReadyPods(phase string, n int, nodes []string, image string) []*corev1.Pod {
	pods := make([]*corev1.Pod, n)
	for i := range pods {
		pods[i] = podReadyPod(fmt.Sprintf("%s-%03d", phase, i), phase, nodes[i%len(nodes)], image)
	}
	return pods
}
