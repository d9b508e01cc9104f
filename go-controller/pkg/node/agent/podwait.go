package agent

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/kovn-io/kovn/go-controller/pkg/kube"
)

// podWaiter lets CNI ADD wait for the controller's pod-network annotation:
// informer events wake the waiters of a pod, which then re-read the cache.
type podWaiter struct {
	pods    corelisters.PodLister
	mu      sync.Mutex
	waiters map[string][]chan struct{}
}

func newPodWaiter(pods corelisters.PodLister) *podWaiter {
	return &podWaiter{pods: pods, waiters: map[string][]chan struct{}{}}
}

// handler wakes waiters on every change of their pod.
func (w *podWaiter) handler() cache.ResourceEventHandler {
	wake := func(obj interface{}) {
		key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
		if err != nil {
			return
		}
		w.mu.Lock()
		chans := w.waiters[key]
		delete(w.waiters, key)
		w.mu.Unlock()
		for _, c := range chans {
			close(c)
		}
	}
	return cache.ResourceEventHandlerFuncs{AddFunc: wake, UpdateFunc: func(_, o interface{}) { wake(o) }, DeleteFunc: wake}
}

// errPodGone means the pod (of that UID) no longer exists.
type errPodGone struct{ key, uid string }

func (e errPodGone) Error() string {
	return fmt.Sprintf("pod %s (uid %s) no longer exists", e.key, e.uid)
}

// wait returns the pod's network once the annotation is there, for the
// pod with the given UID (an empty uid accepts any).
func (w *podWaiter) wait(ctx context.Context, ns, name, uid string, timeout time.Duration) (*corev1.Pod, *kube.PodNetwork, error) {
	key := ns + "/" + name
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var lastErr error
	for {
		// Register before reading, so an event between the read and the
		// wait cannot be missed.
		ch := make(chan struct{})
		w.mu.Lock()
		w.waiters[key] = append(w.waiters[key], ch)
		w.mu.Unlock()

		pod, err := w.pods.Pods(ns).Get(name)
		switch {
		case apierrors.IsNotFound(err):
			lastErr = fmt.Errorf("pod %s is not in the agent's cache yet", key)
		case err != nil:
			return nil, nil, err
		case uid != "" && string(pod.UID) != uid:
			lastErr = errPodGone{key: key, uid: uid}
		default:
			s, ok := pod.Annotations[kube.PodNetworkAnnotation]
			if !ok {
				lastErr = fmt.Errorf("pod %s has no %s annotation yet (is kovn-controller running?)", key, kube.PodNetworkAnnotation)
				break
			}
			pn, err := kube.ParsePodNetwork(s)
			if err != nil {
				return nil, nil, err
			}
			return pod, pn, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("%v: %w", lastErr, ctx.Err())
		case <-deadline.C:
			return nil, nil, fmt.Errorf("gave up after %s: %v", timeout, lastErr)
		}
	}
}
