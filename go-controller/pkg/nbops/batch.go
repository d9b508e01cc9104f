package nbops

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"k8s.io/klog/v2"
)

// The NB commits one transaction at a time and each costs a round trip,
// a log write and a northd wake-up, so many small transactions cap
// throughput long before the data does: on a 2-core machine it takes some
// 3,800 ports/s in 100-op transactions against some 800/s one port per
// transaction. TransactBatched turns concurrent callers' small
// transactions into one.

type batchReq struct {
	ctx  context.Context
	desc string
	ops  []ovsdb.Operation
	// Buffered, so delivering never blocks on a caller that gave up.
	done chan error
}

type batch struct {
	reqs []*batchReq
	nops int
	full chan struct{} // closed when the batch is sealed for size
}

// TransactBatched is Transact for callers that can share a transaction:
// requests arriving within the batch window (or until the size cap) are
// merged into one transaction, with each request's named UUIDs prefixed so
// they cannot collide. If the merged transaction fails, every request is
// retried in a transaction of its own, so each caller gets the result its
// own ops deserve. A caller whose ctx ends returns at once, but ops already
// handed to the database may still be committed.
func (t *Transactor) TransactBatched(ctx context.Context, desc string, ops []ovsdb.Operation) error {
	if len(ops) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	req := &batchReq{ctx: ctx, desc: desc, ops: ops, done: make(chan error, 1)}
	if b := t.enqueue(req); b != nil {
		go t.lead(b)
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("nb transaction %q: %w (its operations may still be committed)", desc, ctx.Err())
	}
}

// enqueue adds req to the open batch, opening one if needed; it returns
// the batch when the caller opened it and so must start its leader.
func (t *Transactor) enqueue(req *batchReq) *batch {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.open
	if b != nil && b.nops+len(req.ops) > t.maxOps {
		t.seal(b)
		b = nil
	}
	var opened *batch
	if b == nil {
		b = &batch{full: make(chan struct{})}
		t.open, opened = b, b
	}
	b.reqs = append(b.reqs, req)
	b.nops += len(req.ops)
	if b.nops >= t.maxOps {
		t.seal(b)
	}
	return opened
}

// seal stops b taking requests; t.mu must be held and b must be open.
func (t *Transactor) seal(b *batch) {
	t.open = nil
	close(b.full)
}

// lead sends batch b once its window has passed or it is full, and once
// the previous merged transaction has finished: while one is in flight the
// next keeps filling, which is where batching pays most under load.
func (t *Transactor) lead(b *batch) {
	timer := time.NewTimer(t.window)
	select {
	case <-timer.C:
	case <-b.full:
	}
	timer.Stop()
	t.flushSlot <- struct{}{}
	defer func() { <-t.flushSlot }()
	t.mu.Lock()
	if t.open == b {
		t.seal(b)
	}
	reqs := b.reqs
	t.mu.Unlock()
	t.flush(reqs)
}

func (t *Transactor) flush(reqs []*batchReq) {
	var live []*batchReq
	for _, r := range reqs {
		if err := r.ctx.Err(); err != nil {
			r.done <- err
			continue
		}
		live = append(live, r)
	}
	switch len(live) {
	case 0:
		return
	case 1:
		r := live[0]
		r.done <- t.transact(r.ctx, r.desc, r.ops)
		return
	}
	// No single caller's context may cancel the others' transaction.
	ctx, cancel := context.WithTimeout(context.Background(), t.txnTimeout)
	defer cancel()
	var merged []ovsdb.Operation
	for i, r := range live {
		merged = append(merged, renameNamedUUIDs(r.ops, fmt.Sprintf("b%d_", i))...)
	}
	err := t.transact(ctx, batchDesc(live), merged)
	var txnErr *TxnError
	if err == nil || !errors.As(err, &txnErr) {
		// Success, or a failure to talk to the database at all, which
		// retrying request by request would only repeat.
		for _, r := range live {
			r.done <- err
		}
		return
	}
	klog.V(2).InfoS("Merged NB transaction failed; retrying each request alone", "requests", len(live), "err", err)
	for _, r := range live {
		if err := r.ctx.Err(); err != nil {
			r.done <- err
			continue
		}
		r.done <- t.transact(r.ctx, r.desc, r.ops)
	}
}

func batchDesc(reqs []*batchReq) string {
	var b strings.Builder
	fmt.Fprintf(&b, "batch of %d:", len(reqs))
	for i, r := range reqs {
		if b.Len() > 200 {
			fmt.Fprintf(&b, " ... (%d more)", len(reqs)-i)
			break
		}
		b.WriteString(" ")
		b.WriteString(r.desc)
		if i < len(reqs)-1 {
			b.WriteString(";")
		}
	}
	return b.String()
}

// renameNamedUUIDs returns a copy of ops with every named UUID prefixed:
// the ones ops define (uuid-name) and every reference to one in rows,
// mutations and conditions. Values must be in libovsdb's notation
// (ovsdb.UUID, OvsSet, OvsMap), as libovsdb's API and the builders make
// them. The caller's ops are left untouched for a retry on their own.
func renameNamedUUIDs(ops []ovsdb.Operation, prefix string) []ovsdb.Operation {
	out := make([]ovsdb.Operation, len(ops))
	for i, op := range ops {
		if op.UUIDName != "" {
			op.UUIDName = prefix + op.UUIDName
		}
		op.Row = renameRow(op.Row, prefix)
		if op.Rows != nil {
			rows := make([]ovsdb.Row, len(op.Rows))
			for j, r := range op.Rows {
				rows[j] = renameRow(r, prefix)
			}
			op.Rows = rows
		}
		if op.Where != nil {
			where := make([]ovsdb.Condition, len(op.Where))
			for j, c := range op.Where {
				c.Value = renameValue(c.Value, prefix)
				where[j] = c
			}
			op.Where = where
		}
		if op.Mutations != nil {
			muts := make([]ovsdb.Mutation, len(op.Mutations))
			for j, m := range op.Mutations {
				m.Value = renameValue(m.Value, prefix)
				muts[j] = m
			}
			op.Mutations = muts
		}
		out[i] = op
	}
	return out
}

func renameRow(row ovsdb.Row, prefix string) ovsdb.Row {
	if row == nil {
		return nil
	}
	out := make(ovsdb.Row, len(row))
	for k, v := range row {
		out[k] = renameValue(v, prefix)
	}
	return out
}

func renameValue(v any, prefix string) any {
	switch x := v.(type) {
	case ovsdb.UUID:
		if ovsdb.IsNamedUUID(x.GoUUID) {
			return ovsdb.UUID{GoUUID: prefix + x.GoUUID}
		}
		return x
	case ovsdb.OvsSet:
		s := make([]any, len(x.GoSet))
		for i, e := range x.GoSet {
			s[i] = renameValue(e, prefix)
		}
		return ovsdb.OvsSet{GoSet: s}
	case ovsdb.OvsMap:
		m := make(map[any]any, len(x.GoMap))
		for k, e := range x.GoMap {
			m[renameValue(k, prefix)] = renameValue(e, prefix)
		}
		return ovsdb.OvsMap{GoMap: m}
	default:
		return v
	}
}
