// Package bench drives kovn's benchmark scenarios (docs/benchmarks.md,
// BENCH-WORKLOADS) against a running lab: it creates simulated nodes and
// pods through the API, watches NB for the rows the controller writes, and
// reads the leader's metrics and /proc to say what the run cost.
package bench

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// BenchLabel marks every object the benchmark creates, so that cleanup
// finds them all even after a crashed run, and nothing else.
const BenchLabel = "kovn.io/bench"

// Namespaces is W1's namespace count (ns0…ns9).
const Namespaces = 10

// Workload is the shape of a pods run.
type Workload struct {
	Name    string `json:"name"` // "w1" or "custom"
	Nodes   int    `json:"nodes"`
	Pods    int    `json:"pods"`
	Writers int    `json:"writers"`
}

// W1 is BENCH-WORKLOADS' pod workload, exactly: 3 simulated nodes, 1000
// pods, 32 writers.
func W1() Workload { return Workload{Name: "w1", Nodes: 3, Pods: 1000, Writers: 32} }

// Validate rejects shapes the naming scheme cannot express.
func (w Workload) Validate() error {
	switch {
	case w.Nodes < 1 || w.Nodes > 240:
		// The gateway annotation puts the node in 172.18.1.(10+i).
		return fmt.Errorf("--nodes must be 1..240, got %d", w.Nodes)
	case w.Pods < 1:
		return fmt.Errorf("--pods must be positive, got %d", w.Pods)
	case w.Writers < 1:
		return fmt.Errorf("--writers must be positive, got %d", w.Writers)
	}
	return nil
}

// SimNodeName is simulated node i (0-based).
func SimNodeName(i int) string { return fmt.Sprintf("sim-%d", i) }

// NamespaceName is namespace j.
func NamespaceName(j int) string { return fmt.Sprintf("ns%d", j) }

// PodRef names one pod of the workload and where it is bound.
type PodRef struct {
	Namespace, Name, Node string
	K                     int // index inside its namespace, drives the labels
}

// PortName is the pod's logical switch port.
func (p PodRef) PortName() string { return own.PodPort(p.Namespace, p.Name) }

// Key is "namespace/name", as informers key pods.
func (p PodRef) Key() string { return p.Namespace + "/" + p.Name }

// PodList lists the workload's pods in creation order: namespace by
// namespace, as W1 numbers them (pod-<j>-<k>), with nodes round-robin over
// the global index. Pods that do not divide evenly go to the first
// namespaces.
func (w Workload) PodList() []PodRef {
	out := make([]PodRef, 0, w.Pods)
	for j := 0; j < Namespaces; j++ {
		n := w.Pods / Namespaces
		if j < w.Pods%Namespaces {
			n++
		}
		for k := 0; k < n; k++ {
			out = append(out, PodRef{Namespace: NamespaceName(j), Name: fmt.Sprintf("pod-%d-%d", j, k), K: k,
				Node: SimNodeName(len(out) % w.Nodes)})
		}
	}
	return out
}

// SimNode is a Node as a node agent would have published it, without a
// kubelet: the gateway annotation lets the controller build the node's
// gateway router too, so a simulated node costs what a real one does.
func SimNode(i int) *corev1.Node {
	x := 10 + i
	gw := kube.NodeGateway{
		ChassisID: fmt.Sprintf("5e1f0000-0000-4000-8000-%012x", i),
		IP:        fmt.Sprintf("172.18.1.%d/24", x),
		NextHop:   "172.18.1.1",
		MAC:       fmt.Sprintf("0a:00:00:00:01:%02x", x),
	}
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name:        SimNodeName(i),
		Labels:      map[string]string{BenchLabel: "true"},
		Annotations: map[string]string{kube.NodeGatewayAnnotation: gw.Marshal()},
	}}
}

// NamespaceObj is W1's namespace j, labelled team=t<j%3>.
func NamespaceObj(j int) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:   NamespaceName(j),
		Labels: map[string]string{"team": fmt.Sprintf("t%d", j%3), BenchLabel: "true"},
	}}
}

// PodObj is W1's pod: bound to its node (no scheduler), tolerating every
// taint (the node lifecycle controller taints kubelet-less nodes), and
// with no grace period so that deleting it needs no kubelet either.
func PodObj(p PodRef, image string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name, Labels: map[string]string{
			"app": fmt.Sprintf("s%d", p.K/5), "role": fmt.Sprintf("r%d", p.K%4),
		}},
		Spec: corev1.PodSpec{
			NodeName:                      p.Node,
			TerminationGracePeriodSeconds: new(int64),
			Tolerations:                   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Containers: []corev1.Container{{
				Name: "c", Image: image, ImagePullPolicy: corev1.PullNever,
			}},
		},
	}
}
