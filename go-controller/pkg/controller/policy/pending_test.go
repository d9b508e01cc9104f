package policy

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kovn-io/kovn/go-controller/pkg/controller/internal/ctltest"
	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
)

// A policy sync that needs a shared row another sync's transaction is
// inserting waits for that transaction and then succeeds, rather than
// failing into the queue's backoff (where W3's first policies of each
// namespace spent up to hundreds of milliseconds).
func TestPolicySyncWaitsForPendingSharedRow(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cancel bool // the sync's context ends while it waits
	}{{"transaction ends", false}, {"context ends", true}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			teamA(h)
			i := h.startNoRun()
			h.policy(allowClient())
			const key = "team-a/allow-client"
			ctltest.WaitFor(t, func() error { _, err := i.c.policies.NetworkPolicies("team-a").Get("allow-client"); return err })

			// Another sync's transaction is inserting the isolation group.
			x := i.c.idx
			x.mu.Lock()
			other := x.newBuild(i.NB)
			other.mark(isoIn)
			x.mu.Unlock()

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- i.c.syncPolicy(ctx, key) }()
			select {
			case err := <-done:
				t.Fatalf("sync returned (%v) while %s was pending; want it to wait for that transaction", err, isoIn)
			case <-time.After(200 * time.Millisecond):
			}
			if tc.cancel {
				cancel()
			} else {
				x.mu.Lock()
				x.finish(other, false)
				x.mu.Unlock()
			}
			var err error
			select {
			case err = <-done:
			case <-time.After(ctltest.WaitTimeout):
				t.Fatal("sync still waiting after the pending transaction ended")
			}
			if tc.cancel {
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("sync after cancel: %v, want context.Canceled", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("sync: %v", err)
			}
			// The other transaction failed (it inserted nothing), so this
			// sync inserted the group itself.
			for _, pg := range []string{webPG, isoIn} {
				if _, err := nbops.GetPortGroup(i.NB, pg); err != nil {
					t.Errorf("port group %s: %v", pg, err)
				}
			}
		})
	}
}
