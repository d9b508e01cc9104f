package ovs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"k8s.io/klog/v2"
)

// transact sends ops as one transaction, or nothing when ops is empty.
// desc names the change in the log and in any error. The caller holds
// writeMu.
func (c *Client) transact(ctx context.Context, desc string, ops []ovsdb.Operation) error {
	if len(ops) == 0 {
		return nil
	}
	start := time.Now()
	res, err := c.ovs.Transact(ctx, ops...)
	if err == nil {
		err = checkResults(res, ops)
	}
	c.txns.Add(1)
	c.ops.Add(uint64(len(ops)))
	klog.V(4).InfoS("OVS transaction", "desc", desc, "ops", len(ops), "duration", time.Since(start), "err", err)
	if err != nil {
		c.failed.Add(1)
		return fmt.Errorf("ovs transaction %q (%d ops): %w", desc, len(ops), err)
	}
	c.awaitCache(ctx, desc, ops, res)
	return nil
}

// checkResults names the failing operations: CheckOperationResults alone
// says only how many failed.
func checkResults(res []ovsdb.OperationResult, ops []ovsdb.Operation) error {
	opErrs, err := ovsdb.CheckOperationResults(res, ops)
	if err == nil {
		return nil
	}
	var errs []error
	for _, oe := range opErrs {
		for i := range ops {
			if &ops[i] == oe.Operation() {
				errs = append(errs, fmt.Errorf("op %d (%s %s): %w", i, ops[i].Op, ops[i].Table, oe))
			}
		}
	}
	if len(errs) == 0 {
		// The commit failed (e.g. referential integrity), not one op.
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// awaitCache waits until the cache shows the rows the transaction inserted
// and those it deleted by UUID; the next write is computed from the cache
// and would otherwise insert a second copy of a row. Against ovsdb-server
// this costs one lookup per row: the server sends monitor updates before
// the transaction's reply and libovsdb applies them as they arrive. A
// timeout is logged, not returned, since the transaction did commit.
func (c *Client) awaitCache(ctx context.Context, desc string, ops []ovsdb.Operation, res []ovsdb.OperationResult) {
	for i, op := range ops {
		var uuid string
		present := op.Op == ovsdb.OperationInsert
		switch {
		case present && i < len(res):
			uuid = res[i].UUID.GoUUID
		case op.Op == ovsdb.OperationDelete && len(op.Where) == 1 && op.Where[0].Column == "_uuid":
			if u, ok := op.Where[0].Value.(ovsdb.UUID); ok {
				uuid = u.GoUUID
			}
		}
		if uuid == "" || c.awaitRow(ctx, op.Table, uuid, present) {
			continue
		}
		klog.InfoS("OVS cache does not show a committed transaction yet; the next write may see stale rows",
			"desc", desc, "table", op.Table, "uuid", uuid, "present", present)
		return
	}
}

func (c *Client) awaitRow(ctx context.Context, table, uuid string, present bool) bool {
	has := func() bool {
		rc := c.ovs.Cache().Table(table)
		return rc != nil && rc.HasRow(uuid)
	}
	if has() == present {
		return true
	}
	wake, cancel := c.watches.watch(uuidKey(uuid))
	defer cancel()
	timer := time.NewTimer(cacheSyncTimeout)
	defer timer.Stop()
	for has() != present {
		select {
		case <-wake:
		case <-ctx.Done():
			return false
		case <-timer.C:
			return false
		}
	}
	return true
}
