package bench

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/lab"
)

// The services and policies scenarios (W2, W3) are layered on the pods a
// kept pods run left (`kovn-bench pods --workload w1 --keep`); they create
// their objects in its namespaces and leave them there for the next
// layer, restart, and `kovn-bench cleanup`, which deletes the namespaces
// and with them everything inside.

// KeptPod is a pod of a kept pods run, as the API has it now.
type KeptPod struct {
	Namespace, Name string
	K               int // of pod-<j>-<k>
	Labels          labels.Set
	IP              string // "" while the controller has given it none
}

// Kept is the state of a kept pods run: ns0…ns9 with their labels and
// their pods, pods[ns][k] being pod-<j>-<k>.
type Kept struct {
	NamespaceLabels map[string]labels.Set
	Pods            map[string][]KeptPod
}

// PodsIn is how many pods namespace j holds.
func (k *Kept) PodsIn(j int) int { return len(k.Pods[NamespaceName(j)]) }

// All lists every pod, namespace by namespace.
func (k *Kept) All() []KeptPod {
	var out []KeptPod
	for j := 0; j < Namespaces; j++ {
		out = append(out, k.Pods[NamespaceName(j)]...)
	}
	return out
}

// ReadKept reads the namespaces and pods of a kept pods run; they must be
// the benchmark's (labelled kovn.io/bench) and named as W1 names them.
func ReadKept(ctx context.Context, cs kubernetes.Interface) (*Kept, error) {
	k := &Kept{NamespaceLabels: map[string]labels.Set{}, Pods: map[string][]KeptPod{}}
	for j := 0; j < Namespaces; j++ {
		name := NamespaceName(j)
		ns, err := cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("namespace %s does not exist: run kovn-bench pods --workload w1 --keep first", name)
		}
		if err != nil {
			return nil, err
		}
		if ns.Labels[BenchLabel] != "true" {
			return nil, fmt.Errorf("namespace %s is not the benchmark's (no %s label)", name, BenchLabel)
		}
		if ns.DeletionTimestamp != nil {
			return nil, fmt.Errorf("namespace %s is being deleted", name)
		}
		k.NamespaceLabels[name] = labels.Set(ns.Labels)
		pods, err := cs.CoreV1().Pods(name).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		byK := map[int]KeptPod{}
		for _, p := range pods.Items {
			idx, ok := podIndex(p.Name, j)
			if !ok {
				return nil, fmt.Errorf("pod %s/%s is not one of a pods run", name, p.Name)
			}
			kp := KeptPod{Namespace: name, Name: p.Name, K: idx, Labels: labels.Set(p.Labels)}
			if a := p.Annotations[kube.PodNetworkAnnotation]; a != "" {
				if pn, err := kube.ParsePodNetwork(a); err == nil && len(pn.Addrs()) > 0 {
					kp.IP = pn.Addrs()[0].String()
				}
			}
			byK[idx] = kp
		}
		for i := 0; i < len(byK); i++ {
			p, ok := byK[i]
			if !ok {
				return nil, fmt.Errorf("namespace %s has %d pods but no pod-%d-%d", name, len(byK), j, i)
			}
			k.Pods[name] = append(k.Pods[name], p)
		}
	}
	return k, nil
}

// podIndex is k of pod-<j>-<k>.
func podIndex(name string, j int) (int, bool) {
	rest, ok := strings.CutPrefix(name, fmt.Sprintf("pod-%d-", j))
	if !ok {
		return 0, false
	}
	k, err := strconv.Atoi(rest)
	return k, err == nil && k >= 0
}

// IPOf is the address of pod-<j>-<k> of namespace ns, which must have one.
func (k *Kept) IPOf(ns string, idx int) (string, error) {
	pods := k.Pods[ns]
	if idx < 0 || idx >= len(pods) {
		return "", fmt.Errorf("%s has no pod %d", ns, idx)
	}
	p := pods[idx]
	if _, err := netip.ParseAddr(p.IP); err != nil {
		return "", fmt.Errorf("pod %s/%s has no address yet (%s)", ns, p.Name, kube.PodNetworkAnnotation)
	}
	return p.IP, nil
}

// readyLeader finds the leader and checks it is ready.
func readyLeader(ctx context.Context, l *lab.Lab, cs kubernetes.Interface, sc *Scraper) (Replica, error) {
	leader, err := Leader(ctx, l, cs)
	if err != nil {
		return leader, err
	}
	if !sc.Ready(ctx, leader) {
		return leader, fmt.Errorf("leader %s is not ready (/readyz)", leader.Component)
	}
	return leader, nil
}

// noneLeft refuses to layer objects on top of the same layer from an
// earlier run: n objects of kind are already there.
func noneLeft(kind string, n int, err error) error {
	if err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("%d %s of an earlier run are left: run kovn-bench cleanup (and pods --keep) first", n, kind)
	}
	return nil
}
