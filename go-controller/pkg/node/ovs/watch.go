package ovs

import (
	"sync"

	"github.com/ovn-kubernetes/libovsdb/model"

	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/vswitchd"
)

// watches wakes goroutines that wait for particular rows to change.
// libovsdb cannot unregister a cache event handler, so one handler, added
// in Connect, feeds this registry and waiters come and go here.
//
// A wake-up only says "look again": the waiter re-reads the cache, which
// libovsdb updates before it queues the event. Waiters register before
// their first read, so a change between that read and the wait is not lost.
type watches struct {
	mu    sync.Mutex
	byKey map[string]map[chan struct{}]struct{}
}

func newWatches() *watches {
	return &watches{byKey: map[string]map[chan struct{}]struct{}{}}
}

// uuidKey is any row with this UUID; ifaceKey is the Interface row named
// name, whatever its UUID (WaitInstalled may start before the row exists,
// and a port may be deleted and re-added).
func uuidKey(uuid string) string  { return "uuid:" + uuid }
func ifaceKey(name string) string { return "iface:" + name }

// watch returns a channel that receives a value after rows with key
// change; several changes before the receiver looks collapse into one.
// Call cancel when done.
func (w *watches) watch(key string) (wake <-chan struct{}, cancel func()) {
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	defer w.mu.Unlock()
	set := w.byKey[key]
	if set == nil {
		set = map[chan struct{}]struct{}{}
		w.byKey[key] = set
	}
	set[ch] = struct{}{}
	return ch, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		delete(w.byKey[key], ch)
		if len(w.byKey[key]) == 0 {
			delete(w.byKey, key)
		}
	}
}

// rowChanged is called on libovsdb's event goroutine for every cache
// change; it must not block (libovsdb drops events once its queue is full).
func (w *watches) rowChanged(old, cur model.Model) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.byKey) == 0 {
		return
	}
	for _, m := range []model.Model{old, cur} {
		if m == nil {
			continue
		}
		if r, ok := m.(interface{ GetUUID() string }); ok {
			w.wakeLocked(uuidKey(r.GetUUID()))
		}
		if iface, ok := m.(*vswitchd.Interface); ok {
			w.wakeLocked(ifaceKey(iface.Name))
		}
	}
}

func (w *watches) wakeLocked(key string) {
	for ch := range w.byKey[key] {
		select {
		case ch <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
}
