package kube

import (
	"context"
	"fmt"
	"sync/atomic"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
)

// ExternalPortWatch follows one ExternalPort through an informer limited
// to it by a field selector, so a host that needs one port neither lists
// nor is sent the others.
type ExternalPortWatch struct {
	store   cache.Store
	key     string
	changed chan struct{}
	lastErr atomic.Value // error wrapped in errBox: the last list or watch failure
}

type errBox struct{ err error }

// WatchExternalPort follows namespace/name until ctx ends. It returns once
// the first list is in the cache, so that Get answers with what the API
// server has; when no list succeeds before ctx ends, its error names the
// last failure.
func WatchExternalPort(ctx context.Context, dc dynamic.Interface, namespace, name string) (*ExternalPortWatch, error) {
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	inf := dynamicinformer.NewFilteredDynamicInformer(dc, ExternalPortResource(), namespace, 0, cache.Indexers{},
		func(o *metav1.ListOptions) { o.FieldSelector = sel }).Informer()
	w := &ExternalPortWatch{store: inf.GetStore(), key: namespace + "/" + name, changed: make(chan struct{}, 1)}
	notify := func(any) {
		select {
		case w.changed <- struct{}{}:
		default: // one pending signal is enough: Get reads the latest
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: notify, DeleteFunc: notify, UpdateFunc: func(_, o any) { notify(o) },
	}); err != nil {
		return nil, err
	}
	// Kept so a caller that gives up can say why (RBAC, no CRD) rather
	// than only that it timed out; the default handler still logs.
	if err := inf.SetWatchErrorHandlerWithContext(func(ctx context.Context, r *cache.Reflector, err error) {
		w.lastErr.Store(errBox{err})
		cache.DefaultWatchErrorHandler(ctx, r, err)
	}); err != nil {
		return nil, err
	}
	go inf.RunWithContext(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		if err := w.LastError(); err != nil {
			return nil, fmt.Errorf("watch externalport %s: %w (%v)", w.key, ctx.Err(), err)
		}
		return nil, fmt.Errorf("watch externalport %s: %w", w.key, ctx.Err())
	}
	return w, nil
}

// Changed receives a value after the port was added, changed or deleted;
// changes before the receiver looks collapse into one.
func (w *ExternalPortWatch) Changed() <-chan struct{} { return w.changed }

// Get returns the port as last seen, or nil when it does not exist.
func (w *ExternalPortWatch) Get() (*ExternalPort, error) {
	obj, ok, err := w.store.GetByKey(w.key)
	if err != nil || !ok {
		return nil, err
	}
	return ExternalPortFromUnstructured(obj)
}

// LastError is the last list or watch failure, nil when there was none.
func (w *ExternalPortWatch) LastError() error {
	if b, ok := w.lastErr.Load().(errBox); ok {
		return b.err
	}
	return nil
}

// WaitExternalPort waits until ok holds for the port and returns it. A
// port that does not exist, or cannot be read, fails at once: a direct read
// comes first, since an informer only logs such errors and retries. When
// ctx ends first, it returns the port as last seen with the error, so the
// caller can say what was missing.
func WaitExternalPort(ctx context.Context, dc dynamic.Interface, namespace, name string, ok func(*ExternalPort) bool) (*ExternalPort, error) {
	ep, err := GetExternalPort(ctx, dc, namespace, name)
	if err != nil {
		return nil, fmt.Errorf("externalport %s/%s: %w", namespace, name, err)
	}
	if ok(ep) {
		return ep, nil
	}
	// The informer stops when the wait is over.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := WatchExternalPort(ctx, dc, namespace, name)
	if err != nil {
		return ep, err
	}
	for {
		if ep, err = w.Get(); err != nil {
			return nil, err
		}
		if ep == nil {
			return nil, fmt.Errorf("externalport %s/%s was deleted", namespace, name)
		}
		if ok(ep) {
			return ep, nil
		}
		select {
		case <-w.Changed():
		case <-ctx.Done():
			return ep, fmt.Errorf("externalport %s/%s: %w", namespace, name, ctx.Err())
		}
	}
}
