package ovs

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/ovn-kubernetes/libovsdb/cache"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"k8s.io/klog/v2"
)

// DefaultEndpoint is where Debian's and the upstream OVS packages put the
// local database socket.
const DefaultEndpoint = "unix:/var/run/openvswitch/db.sock"

const (
	// connectTimeout bounds one connection attempt (dial, schema, monitor);
	// the local database answers in milliseconds when it is up at all.
	connectTimeout = 10 * time.Second
	// cacheSyncTimeout bounds the wait for the cache to show a committed
	// transaction (see awaitCache).
	cacheSyncTimeout = 2 * time.Second
)

// Client configures the local Open_vSwitch database. It is safe for
// concurrent use.
type Client struct {
	ovs     client.Client
	watches *watches

	// writeMu serializes read-cache-then-transact sequences (package doc).
	writeMu sync.Mutex

	txns, ops, failed atomic.Uint64
}

// Stats counts what a Client has sent.
type Stats struct {
	// Transactions sent, failed ones included; a call that finds the
	// database already as desired sends none.
	Transactions uint64
	// Operations in those transactions.
	Operations uint64
	// Failed is how many of the transactions failed.
	Failed uint64
}

// Connect connects to the database at endpoint (DefaultEndpoint when
// empty) and returns once the monitored tables are in the cache. It keeps
// retrying until ctx ends, because the agent may start before
// ovsdb-server; once connected, the client reconnects on its own for as
// long as it lives, re-monitoring and so refilling the cache.
func Connect(ctx context.Context, endpoint string) (*Client, error) {
	if endpoint == "" {
		endpoint = DefaultEndpoint
	}
	m, err := clientModel()
	if err != nil {
		return nil, fmt.Errorf("ovs model: %w", err)
	}
	logger := klog.Background().WithName("ovsdb")
	ovs, err := client.NewOVSDBClient(m,
		client.WithEndpoint(endpoint),
		client.WithReconnect(connectTimeout, newBackoff()),
		client.WithLogger(&logger))
	if err != nil {
		return nil, fmt.Errorf("ovs client: %w", err)
	}
	c := &Client{ovs: ovs, watches: newWatches()}
	handlerAdded, attempt := false, 0
	err = backoff.Retry(func() error {
		attempt++
		actx, cancel := context.WithTimeout(ctx, connectTimeout)
		defer cancel()
		err := ovs.Connect(actx)
		if err == nil && !handlerAdded {
			// The cache exists once connected and outlives reconnections,
			// so this one handler serves the client's whole life. Added
			// before the monitor, so the initial rows wake waiters too.
			ovs.Cache().AddEventHandler(&cache.EventHandlerFuncs{
				AddFunc:    func(_ string, m model.Model) { c.watches.rowChanged(nil, m) },
				UpdateFunc: func(_ string, old, m model.Model) { c.watches.rowChanged(old, m) },
				DeleteFunc: func(_ string, m model.Model) { c.watches.rowChanged(m, nil) },
			})
			handlerAdded = true
		}
		if err == nil {
			// Inside the retry: the server may go away between the two.
			_, err = ovs.Monitor(actx, newMonitor(ovs))
		}
		if err != nil && attempt%10 == 1 {
			klog.InfoS("Cannot connect to the local OVS database yet; retrying", "endpoint", endpoint, "attempt", attempt, "err", err)
		}
		return err
	}, backoff.WithContext(newBackoff(), ctx))
	if err != nil {
		ovs.Close()
		return nil, fmt.Errorf("connect to OVS database at %s: %w", endpoint, err)
	}
	return c, nil
}

// newBackoff retries for ever (the library default gives up after 15
// minutes, after which libovsdb panics on a lost connection) and caps the
// interval low: a local ovsdb-server restart takes a second or two and
// the agent should notice it soon after.
func newBackoff() *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 100 * time.Millisecond
	b.MaxInterval = 2 * time.Second
	b.MaxElapsedTime = 0
	return b
}

// Close disconnects for good; the Client must not be used afterwards.
func (c *Client) Close() { c.ovs.Close() }

// Connected reports whether the client has a live connection (for health
// checks). libovsdb's Connected stays true while it reconnects after the
// server went away, but it then has no current endpoint.
func (c *Client) Connected() bool {
	return c.ovs.Connected() && c.ovs.CurrentEndpoint() != ""
}

// Stats returns what this Client has sent so far.
func (c *Client) Stats() Stats {
	return Stats{Transactions: c.txns.Load(), Operations: c.ops.Load(), Failed: c.failed.Load()}
}
