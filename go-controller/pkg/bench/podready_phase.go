package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
)

// podReadyBurst creates o.Burst pods with o.Writers parallel writers,
// waits until all are Ready, then deletes them and waits until they are
// gone, from the API and from the nodes' bridges.
func podReadyBurst(ctx context.Context, cs kubernetes.Interface, o PodReadyOptions, image string) (PodReadyPhase, []string, error) {
	api := cs.CoreV1().Pods(PodReadyNamespace)
	tr, err := startReadyTracker(ctx, cs, "burst", o.Timeout, nil)
	if err != nil {
		return PodReadyPhase{}, nil, err
	}
	defer tr.stop()
	before, err := scrapeCNI(ctx, o.Nodes)
	if err != nil {
		return PodReadyPhase{}, nil, err
	}
	pods := podReadyPods("burst", o.Burst, o.Nodes, image)
	work := make(chan *corev1.Pod)
	var wg sync.WaitGroup
	for range min(o.Writers, len(pods)) {
		wg.Go(func() {
			for p := range work {
				tr.create(ctx, api, p)
			}
		})
	}
	for _, p := range pods {
		work <- p
	}
	close(work)
	wg.Wait()
	werr := tr.waitReady(ctx, pods, o.Timeout)
	ph, serr := tr.summary(pods, o.Timeout)
	if werr != nil {
		return ph, nil, werr
	}
	var cerr error
	ph.CNI, cerr = cniAfter(ctx, o.Nodes, before)
	if err := deletePhasePods(ctx, api, "burst", o.Timeout); err != nil {
		return ph, nil, errors.Join(serr, cerr, err)
	}
	var warnings []string
	if err := waitDrained(ctx, o.Nodes, before.ports, o.Timeout); err != nil {
		warnings = append(warnings, fmt.Sprintf("after the burst, the nodes' pod ports were not back to their number before it within %v: %v", o.Timeout, err))
	}
	return ph, warnings, errors.Join(serr, cerr)
}

// podReadySteady creates a pod every 1/o.Rate for o.Duration, deletes
// each o.Age after it became Ready, waits at the end until every pod
// created is Ready, and deletes the rest.
func podReadySteady(ctx context.Context, cs kubernetes.Interface, o PodReadyOptions, image string) (PodReadyPhase, error) {
	api := cs.CoreV1().Pods(PodReadyNamespace)
	ag := &ager{ctx: ctx, api: api, age: o.Age}
	tr, err := startReadyTracker(ctx, cs, "steady", o.Timeout, ag.schedule)
	if err != nil {
		return PodReadyPhase{}, err
	}
	defer tr.stop()
	before, err := scrapeCNI(ctx, o.Nodes)
	if err != nil {
		return PodReadyPhase{}, err
	}
	pods := podReadyPods("steady", o.steadyPods(), o.Nodes, image)
	var wg sync.WaitGroup
	start := time.Now()
	for i, p := range pods {
		if sleepUntil(ctx, start.Add(steadyOffset(i, o.Rate))) != nil {
			break
		}
		// Open loop: each create on its own goroutine at its time, so
		// that a slow answer does not hold back the next create.
		wg.Go(func() { tr.create(ctx, api, p) })
	}
	wg.Wait()
	werr := tr.waitReady(ctx, pods, o.Timeout)
	aerr := ag.stop()
	ph, serr := tr.summary(pods, o.Timeout)
	if werr != nil {
		return ph, werr
	}
	var cerr error
	ph.CNI, cerr = cniAfter(ctx, o.Nodes, before)
	derr := deletePhasePods(ctx, api, "steady", o.Timeout)
	return ph, errors.Join(serr, cerr, aerr, derr)
}

// steadyOffset is when, after the steady phase starts, its i-th create is
// due: a fixed schedule, so that late creates do not drift the rate.
func steadyOffset(i int, rate float64) time.Duration {
	return time.Duration(float64(i) / rate * float64(time.Second))
}

func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// cniAfter scrapes the nodes again and returns the ADD phases since before.
func cniAfter(ctx context.Context, nodes []string, before cniSnapshot) (map[string]CNIPhase, error) {
	after, err := scrapeCNI(ctx, nodes)
	if err != nil {
		return nil, err
	}
	return cniDelta(before, after)
}

// deletePhasePods deletes a phase's pods with no grace period and waits
// until the API has none left.
func deletePhasePods(ctx context.Context, api corev1client.PodInterface, phase string, timeout time.Duration) error {
	sel := metav1.ListOptions{LabelSelector: podReadyPhaseLabel + "=" + phase}
	if err := api.DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}, sel); err != nil {
		return fmt.Errorf("delete %s pods: %w", phase, err)
	}
	return pollFor(ctx, timeout, func(ctx context.Context) error {
		l, err := api.List(ctx, sel)
		if err != nil {
			return err
		}
		if n := len(l.Items); n > 0 {
			return fmt.Errorf("%d %s pods still exist", n, phase)
		}
		return nil
	})
}

// waitDrained waits until the nodes have no more pod ports than before:
// a pod deleted with no grace period leaves the API at once, but its
// sandbox teardown and CNI DEL may outlast it, and the next phase should
// not share the nodes with them.
func waitDrained(ctx context.Context, nodes []string, before float64, timeout time.Duration) error {
	return pollFor(ctx, timeout, func(ctx context.Context) error {
		s, err := scrapeCNI(ctx, nodes)
		if err != nil {
			return err
		}
		if s.ports > before {
			return fmt.Errorf("%.0f pod ports, %.0f before", s.ports, before)
		}
		return nil
	})
}
