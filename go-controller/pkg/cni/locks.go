package cni

import (
	"context"
	"sync"
)

// containerLocks serializes requests per container. The runtime already
// does, but the server answers at its deadline while a slow handler may
// still run, and the runtime's retry must wait for that handler.
type containerLocks struct {
	mu   sync.Mutex
	held map[string]chan struct{}
}

func newContainerLocks() *containerLocks {
	return &containerLocks{held: map[string]chan struct{}{}}
}

// lock waits for id's previous holder or ctx; "" (STATUS, GC) never waits.
func (l *containerLocks) lock(ctx context.Context, id string) (unlock func(), err error) {
	if id == "" {
		return func() {}, nil
	}
	for {
		l.mu.Lock()
		prev, busy := l.held[id]
		if !busy {
			mine := make(chan struct{})
			l.held[id] = mine
			l.mu.Unlock()
			return func() {
				l.mu.Lock()
				delete(l.held, id)
				l.mu.Unlock()
				close(mine)
			}, nil
		}
		l.mu.Unlock()
		select {
		case <-prev:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
