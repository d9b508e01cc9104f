package nbops

import (
	"cmp"
	"context"
	"slices"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"k8s.io/klog/v2"

	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// ownedModel is any generated NB model with external_ids.
type ownedModel[T any] interface {
	*T
	model.Model
	GetUUID() string
	GetExternalIDs() map[string]string
}

// Owned lists the cached rows of one table whose external_ids say kind
// owns them, for start-up garbage collection: a controller lists its rows,
// drops those it still wants and deletes the rest. It scans the table,
// which is fine once at start-up. Use as Owned[nbdb.LogicalSwitch](c, kind).
// Rows come back sorted by UUID so logs and ops are reproducible. An empty
// kind owns nothing.
func Owned[T any, PT ownedModel[T]](c client.Client, kind string) []PT {
	if kind == "" {
		return nil
	}
	var rows []PT
	err := c.WhereCache(func(m PT) bool { return m.GetExternalIDs()[own.KindKey] == kind }).
		List(context.Background(), &rows)
	if err != nil {
		// Only a model that is not in the client's schema gets here, a
		// programming error; listing nothing makes garbage collection
		// delete nothing.
		klog.ErrorS(err, "Cannot list owned NB rows", "kind", kind)
		return nil
	}
	slices.SortFunc(rows, func(a, b PT) int { return cmp.Compare(a.GetUUID(), b.GetUUID()) })
	return rows
}
