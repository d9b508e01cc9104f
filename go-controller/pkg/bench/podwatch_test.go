package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestSplitAtWatch(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	answered := []time.Time{at(10), at(20), at(30), at(40)}
	// Pod 1's event beat its reply; pod 2's port beat kovn-bench's
	// watch; pod 3 was never seen.
	watched := []time.Time{at(12), at(18), at(35), {}}
	port := []time.Time{at(50), at(25), at(33), at(60)}
	s := splitAtWatch(answered, watched, port)
	if !slices.Equal(s.WatchFromAnswerMs, []float64{-2, 2, 5}) || !slices.Equal(s.PortFromWatchMs, []float64{-2, 7, 38}) {
		t.Errorf("samples %v, %v", s.WatchFromAnswerMs, s.PortFromWatchMs)
	}
	if s.WatchBeforeAnswer != 1 || s.PortBeforeWatch != 1 || s.WatchMissed != 1 {
		t.Errorf("counts %+v", s)
	}
	if s.WatchFromAnswer.N != 3 || s.WatchFromAnswer.P50Ms != 2 || s.PortFromWatch.MaxMs != 38 {
		t.Errorf("summaries %+v, %+v", s.WatchFromAnswer, s.PortFromWatch)
	}
	if rows := s.rows(); len(rows) != 3 || !strings.Contains(rows[2].v, "1 pods not seen") {
		t.Errorf("rows %v", rows)
	}
	pr := &PodsResult{Timeline: []TimelinePoint{{}}, WatchSplit: s}
	if !slices.ContainsFunc(pr.rows(), func(r row) bool { return strings.Contains(r.k, "kovn-bench's watch") }) {
		t.Errorf("pods rows without the split: %v", pr.rows())
	}
	if rows := (WatchSplit{}).rows(); rows != nil {
		t.Errorf("rows of an old report: %v", rows)
	}
}

// TestPodWatch drives the watch with a fake clientset: pods created in
// the watched namespaces are stamped when their ADDED event arrives, a
// pod there before the watch and pods of other namespaces are not.
func TestPodWatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pod := func(ns, name string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	}
	cs := fake.NewClientset(pod("ns0", "old"))
	pw, err := startPodWatch(ctx, cs, []string{"ns0", "ns1"}, 4, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer pw.stop()
	// The fake's watches have no resourceVersion: they must be open
	// before the first create, which a real API server does not need.
	if err := pollFor(ctx, 0, func(context.Context) error {
		var ns []string
		for _, a := range cs.Actions() {
			if a.GetVerb() == "watch" {
				ns = append(ns, a.GetNamespace())
			}
		}
		if len(ns) < 2 {
			return fmt.Errorf("watches open in %v", ns)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	for _, p := range []*corev1.Pod{pod("ns0", "a"), pod("ns1", "b"), pod("ns2", "c")} {
		if _, err := cs.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := pw.waitSeen(ctx, []string{"ns0/a", "ns1/b"}, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	for i, at := range pw.times([]string{"ns0/a", "ns1/b"}) {
		if at.Before(before) || at.After(after) {
			t.Errorf("pod %d stamped at %v, outside [%v, %v]", i, at, before, after)
		}
	}
	// Give a stray event of ns2 time to arrive before asking.
	time.Sleep(200 * time.Millisecond)
	err = pw.waitSeen(ctx, []string{"ns0/old", "ns0/a", "ns2/c"}, 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "2 of 3 pods not seen") {
		t.Errorf("waitSeen of the old pod and another namespace's: %v", err)
	}
	if at := pw.times([]string{"ns0/old", "ns2/c"}); !at[0].IsZero() || !at[1].IsZero() {
		t.Errorf("stamped %v", at)
	}
	// What the informer caches is the pod's key only.
	if p, err := podKeyOnly(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns0", Name: "x", Labels: map[string]string{"app": "s1"}},
		Spec: corev1.PodSpec{NodeName: "sim-0"}}); err != nil || p.(*corev1.Pod).Spec.NodeName != "" || p.(*corev1.Pod).Labels != nil || p.(*corev1.Pod).Name != "x" {
		t.Errorf("podKeyOnly: %+v, %v", p, err)
	}
}
