package trace

import (
	"context"
	"fmt"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/sbdb"
)

// SBHints asks SB for the stage-hint of the logical flows of some stages
// with one select per stage, returning only two columns. A monitor would
// copy the whole Logical_Flow table, by far SB's largest, for a handful of
// rows.
func SBHints(sb client.Client) HintLookup {
	return func(ctx context.Context, stages []string) (map[string]string, error) {
		ops := make([]ovsdb.Operation, 0, len(stages))
		for _, s := range stages {
			ops = append(ops, ovsdb.Operation{
				Op:    ovsdb.OperationSelect,
				Table: sbdb.LogicalFlowTable,
				Where: []ovsdb.Condition{{
					Column:   "external_ids",
					Function: ovsdb.ConditionIncludes,
					Value:    ovsdb.OvsMap{GoMap: map[any]any{"stage-name": s}},
				}},
				Columns: []string{"_uuid", "external_ids"},
			})
		}
		res, err := sb.Transact(ctx, ops...)
		if err != nil {
			return nil, err
		}
		if _, err := ovsdb.CheckOperationResults(res, ops); err != nil {
			return nil, err
		}
		out := map[string]string{}
		for _, r := range res {
			for _, row := range r.Rows {
				u, ok := row["_uuid"].(ovsdb.UUID)
				if !ok {
					return nil, fmt.Errorf("logical flow row without _uuid: %v", row)
				}
				ids, _ := row["external_ids"].(ovsdb.OvsMap)
				if h, ok := ids.GoMap["stage-hint"].(string); ok {
					out[u.GoUUID] = h
				}
			}
		}
		return out, nil
	}
}
