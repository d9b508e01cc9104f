package nbops

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
)

// ownedSet describes rows a router holds in one reference column, of which
// each owner manages its own subset with set semantics.
type ownedSet[T any] struct {
	table  string
	column string // in Logical_Router
	kind   string // for named UUIDs and errors
	refs   func(*nbdb.LogicalRouter) []string
	uuid   func(*T) string
	extIDs func(*T) map[string]string
	// identity says which desired row a current row is; rows differing
	// only in owned columns are updated in place rather than replaced.
	identity func(*T) string
	key      []fieldFunc[T] // identity columns, written on insert only
	owned    []fieldFunc[T]
}

func optString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Identity of a static route: prefix, next hop, policy (absent means
// dst-ip, so both spellings are one route), output port and route table
// (OVN 23.03 lets the same prefix/next hop exist once per route table).
// Owned in place: external_ids, options, bfd.
func routeSet() ownedSet[nbdb.LogicalRouterStaticRoute] {
	type R = nbdb.LogicalRouterStaticRoute
	return ownedSet[R]{
		table:  nbdb.LogicalRouterStaticRouteTable,
		column: "static_routes",
		kind:   "sr",
		refs:   func(lr *nbdb.LogicalRouter) []string { return lr.StaticRoutes },
		uuid:   func(r *R) string { return r.UUID },
		extIDs: func(r *R) map[string]string { return r.ExternalIDs },
		identity: func(r *R) string {
			policy := nbdb.LogicalRouterStaticRoutePolicyDstIP
			if r.Policy != nil {
				policy = *r.Policy
			}
			return strings.Join([]string{r.IPPrefix, r.Nexthop, string(policy), optString(r.OutputPort), r.RouteTable}, "|")
		},
		key: []fieldFunc[R]{
			func(r *R) any { return &r.IPPrefix },
			func(r *R) any { return &r.Nexthop },
			func(r *R) any { return &r.Policy },
			func(r *R) any { return &r.OutputPort },
			func(r *R) any { return &r.RouteTable },
		},
		owned: []fieldFunc[R]{
			func(r *R) any { return &r.ExternalIDs },
			func(r *R) any { return &r.Options },
			func(r *R) any { return &r.BFD },
		},
	}
}

// Identity of a NAT: type, logical IP, external IP and logical port.
// Owned in place: external_ids, options, external_mac,
// external_port_range, allowed/exempted_ext_ips and gateway_port.
func natSet() ownedSet[nbdb.NAT] {
	return ownedSet[nbdb.NAT]{
		table:  nbdb.NATTable,
		column: "nat",
		kind:   "nat",
		refs:   func(lr *nbdb.LogicalRouter) []string { return lr.Nat },
		uuid:   func(n *nbdb.NAT) string { return n.UUID },
		extIDs: func(n *nbdb.NAT) map[string]string { return n.ExternalIDs },
		identity: func(n *nbdb.NAT) string {
			return strings.Join([]string{string(n.Type), n.LogicalIP, n.ExternalIP, optString(n.LogicalPort)}, "|")
		},
		key: []fieldFunc[nbdb.NAT]{
			func(n *nbdb.NAT) any { return &n.Type },
			func(n *nbdb.NAT) any { return &n.LogicalIP },
			func(n *nbdb.NAT) any { return &n.ExternalIP },
			func(n *nbdb.NAT) any { return &n.LogicalPort },
		},
		owned: []fieldFunc[nbdb.NAT]{
			func(n *nbdb.NAT) any { return &n.ExternalIDs },
			func(n *nbdb.NAT) any { return &n.Options },
			func(n *nbdb.NAT) any { return &n.ExternalMAC },
			func(n *nbdb.NAT) any { return &n.ExternalPortRange },
			func(n *nbdb.NAT) any { return &n.AllowedExtIPs },
			func(n *nbdb.NAT) any { return &n.ExemptedExtIPs },
			func(n *nbdb.NAT) any { return &n.GatewayPort },
		},
	}
}

// EnsureStaticRoutes makes the static routes of the router routerUUID
// (real, or named by EnsureRouter in the same op list) whose external_ids
// contain every key/value of owner equal desired: missing routes are
// inserted, extra ones removed, others updated in place. Routes of other
// owners are never touched. Every desired route must carry owner's ids, or
// the next call would not recognise it as its own.
func EnsureStaticRoutes(c client.Client, routerUUID string, owner map[string]string, desired []*nbdb.LogicalRouterStaticRoute) ([]ovsdb.Operation, error) {
	return ensureOwnedSet(c, routeSet(), routerUUID, owner, desired)
}

// EnsureNATs is EnsureStaticRoutes for the router's nat column.
func EnsureNATs(c client.Client, routerUUID string, owner map[string]string, desired []*nbdb.NAT) ([]ovsdb.Operation, error) {
	return ensureOwnedSet(c, natSet(), routerUUID, owner, desired)
}

func ensureOwnedSet[T any](c client.Client, s ownedSet[T], routerUUID string, owner map[string]string, desired []*T) ([]ovsdb.Operation, error) {
	if len(owner) == 0 {
		// An empty owner would match, and so delete, every row.
		return nil, fmt.Errorf("%s: empty owner", s.table)
	}
	if routerUUID == "" {
		return nil, fmt.Errorf("%s: empty router UUID", s.table)
	}
	want := make(map[string]*T, len(desired))
	for _, d := range desired {
		id := s.identity(d)
		if !containsAll(s.extIDs(d), owner) {
			return nil, fmt.Errorf("%s %s: external_ids %v lack owner %v", s.table, id, s.extIDs(d), owner)
		}
		if _, dup := want[id]; dup {
			return nil, fmt.Errorf("%s %s: desired twice", s.table, id)
		}
		want[id] = d
	}

	// Current rows of this owner, by identity; duplicates left in the
	// database by anyone are extras to remove.
	current := map[string]*T{}
	var extra []string
	if !ovsdb.IsNamedUUID(routerUUID) {
		lr := cached[nbdb.LogicalRouter](c, nbdb.LogicalRouterTable, routerUUID)
		if lr == nil {
			return nil, fmt.Errorf("%s: router %s: %w", s.table, routerUUID, ErrNotFound)
		}
		refs := slices.Clone(s.refs(lr))
		slices.Sort(refs)
		for _, u := range refs {
			row := cached[T](c, s.table, u)
			if row == nil || !containsAll(s.extIDs(row), owner) {
				continue
			}
			id := s.identity(row)
			if _, taken := current[id]; taken || want[id] == nil {
				extra = append(extra, u)
				continue
			}
			current[id] = row
		}
	}

	var inserts, updates, ops []ovsdb.Operation
	var added []string
	ownerKey := ownerString(owner)
	for _, d := range desired {
		id := s.identity(d)
		cur := current[id]
		if cur == nil {
			named := namedUUID(s.kind, routerUUID+"|"+ownerKey+"|"+id)
			op, err := insertOp(c, s.table, named, d, s.key, s.owned)
			if err != nil {
				return nil, err
			}
			inserts = append(inserts, op)
			added = append(added, named)
			continue
		}
		up, err := updateOps(c, s.table, s.uuid(cur), s.owned, cur, d)
		if err != nil {
			return nil, err
		}
		updates = append(updates, up...)
	}
	ops = append(ops, inserts...)
	if len(added) > 0 {
		ops = append(ops, mutateOp(nbdb.LogicalRouterTable, routerUUID, s.column, ovsdb.MutateOperationInsert, uuidSet(added...)))
	}
	ops = append(ops, updates...)
	if len(extra) > 0 {
		ops = append(ops, mutateOp(nbdb.LogicalRouterTable, routerUUID, s.column, ovsdb.MutateOperationDelete, uuidSet(extra...)))
		for _, u := range extra {
			ops = append(ops, deleteOp(s.table, u))
		}
	}
	return ops, nil
}

// ownerString is a canonical form of an owner map, for named UUIDs that
// must differ between owners of the same route or NAT.
func ownerString(owner map[string]string) string {
	keys := slices.Sorted(maps.Keys(owner))
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(owner[k])
		b.WriteByte(',')
	}
	return b.String()
}
