package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// TestReadyTrackerAndAger drives the tracker and the ager with a fake
// clientset: Ready stamps from informer events, failed creates, deletes
// Age after Ready, and a stop that cancels the deletes not begun.
func TestReadyTrackerAndAger(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs := fake.NewClientset()
	api := cs.CoreV1().Pods(PodReadyNamespace)
	ag := &ager{ctx: ctx, api: api, age: 50 * time.Millisecond}
	tr, err := startReadyTracker(ctx, cs, "steady", 10*time.Second, ag.schedule)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.stop()
	// The fake's watch has no resourceVersion: it must be open before
	// the first create, which a real API server does not need.
	if err := pollFor(ctx, 0, func(context.Context) error {
		if !slices.ContainsFunc(cs.Actions(), func(a k8stesting.Action) bool { return a.GetVerb() == "watch" }) {
			return fmt.Errorf("no watch yet")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	pods := podReadyPods("steady", 4, []string{"node1"}, "pause")
	// The API refuses the last pod.
	cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.(k8stesting.CreateAction).GetObject().(*corev1.Pod).Name == pods[3].Name {
			return true, nil, fmt.Errorf("quota exceeded")
		}
		return false, nil, nil
	})
	for _, p := range pods {
		tr.create(ctx, api, p)
	}

	setReady := func(p *corev1.Pod) {
		cur, err := api.Get(ctx, p.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cur.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		if _, err := api.UpdateStatus(ctx, cur, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	setReady(pods[0])
	setReady(pods[1])
	if err := tr.waitReady(ctx, pods[:2], 10*time.Second); err != nil {
		t.Fatal(err)
	}
	// The ager deletes both, Age after Ready.
	if err := pollFor(ctx, 10*time.Second, func(ctx context.Context) error {
		for _, p := range pods[:2] {
			if _, err := api.Get(ctx, p.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return fmt.Errorf("%s not deleted: %v", p.Name, err)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// pods[2] never Ready: waitReady times out without error (pods[3]'s
	// failed create counts as settled), and stop
	// leaves it to the phase's end.
	if err := tr.waitReady(ctx, pods, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := ag.stop(); err != nil {
		t.Fatal(err)
	}
	ag.schedule(pods[2].Name) // after stop: nothing
	if _, err := api.Get(ctx, pods[2].Name, metav1.GetOptions{}); err != nil {
		t.Fatalf("%s: %v", pods[2].Name, err)
	}
	ph, err := tr.summary(pods, time.Minute)
	if ph.Pods != 4 || ph.Failed != 2 || len(ph.ReadyMs) != 2 {
		t.Errorf("got %+v", ph)
	}
	if err == nil || !strings.Contains(err.Error(), "steady-002 on node1") || !strings.Contains(err.Error(), "steady-003: quota exceeded") {
		t.Errorf("error %v", err)
	}
}
