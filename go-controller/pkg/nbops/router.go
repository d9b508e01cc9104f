package nbops

import (
	"context"
	"errors"
	"fmt"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
)

// Columns of Logical_Router owned by EnsureRouter. ports, static_routes,
// nat, policies, load_balancer and copp belong to other builders (or to
// nobody yet).
func routerOwned() []fieldFunc[nbdb.LogicalRouter] {
	return []fieldFunc[nbdb.LogicalRouter]{
		func(m *nbdb.LogicalRouter) any { return &m.Options },
		func(m *nbdb.LogicalRouter) any { return &m.ExternalIDs },
		func(m *nbdb.LogicalRouter) any { return &m.Enabled },
		func(m *nbdb.LogicalRouter) any { return &m.LoadBalancerGroup },
	}
}

func routerKey() []fieldFunc[nbdb.LogicalRouter] {
	return []fieldFunc[nbdb.LogicalRouter]{func(m *nbdb.LogicalRouter) any { return &m.Name }}
}

// Columns of Logical_Router_Port owned by EnsureRouterPort. HA (gateway
// chassis, ha_chassis_group), peer, ipv6_prefix and ipv6_ra_configs are
// left alone.
func routerPortOwned() []fieldFunc[nbdb.LogicalRouterPort] {
	return []fieldFunc[nbdb.LogicalRouterPort]{
		func(m *nbdb.LogicalRouterPort) any { return &m.MAC },
		func(m *nbdb.LogicalRouterPort) any { return &m.Networks },
		func(m *nbdb.LogicalRouterPort) any { return &m.Options },
		func(m *nbdb.LogicalRouterPort) any { return &m.ExternalIDs },
		func(m *nbdb.LogicalRouterPort) any { return &m.Enabled },
	}
}

func routerPortKey() []fieldFunc[nbdb.LogicalRouterPort] {
	return []fieldFunc[nbdb.LogicalRouterPort]{func(m *nbdb.LogicalRouterPort) any { return &m.Name }}
}

func routerPorts(lr *nbdb.LogicalRouter) []string { return lr.Ports }

func routersNamed(c client.Client, name string) ([]*nbdb.LogicalRouter, error) {
	return byName(c, nbdb.LogicalRouterTable, name,
		func(m *nbdb.LogicalRouter) string { return m.Name }, &nbdb.LogicalRouter{Name: name})
}

// GetRouter returns the cached router named name, or an error wrapping
// ErrNotFound or ErrDuplicate.
func GetRouter(c client.Client, name string) (*nbdb.LogicalRouter, error) {
	found, err := routersNamed(c, name)
	if err != nil {
		return nil, err
	}
	return onlyOne(found, nbdb.LogicalRouterTable, name)
}

// EnsureRouter makes the router named lr.Name exist with lr's options,
// external_ids, enabled and load_balancer_group. It returns the router's
// UUID or the named UUID it is inserted under, for EnsureRouterPort,
// EnsureStaticRoutes and EnsureNATs in the same transaction.
func EnsureRouter(c client.Client, lr *nbdb.LogicalRouter) ([]ovsdb.Operation, string, error) {
	if lr.Name == "" {
		return nil, "", errors.New("EnsureRouter: empty name")
	}
	found, err := routersNamed(c, lr.Name)
	if err != nil {
		return nil, "", err
	}
	switch len(found) {
	case 0:
		named := namedUUID("lr", lr.Name)
		op, err := insertOp(c, nbdb.LogicalRouterTable, named, lr, routerKey(), routerOwned())
		if err != nil {
			return nil, "", err
		}
		return []ovsdb.Operation{absentGuard(nbdb.LogicalRouterTable, lr.Name), op}, named, nil
	case 1:
		cur := found[0]
		ops, err := updateOps(c, nbdb.LogicalRouterTable, cur.UUID, routerOwned(), cur, lr)
		return ops, cur.UUID, err
	default:
		return nil, "", fmt.Errorf("logical router %q: %d rows: %w", lr.Name, len(found), ErrDuplicate)
	}
}

// DeleteRouter deletes every router named name; its ports, routes, NATs
// and policies are garbage-collected with it. No ops when there is none.
func DeleteRouter(c client.Client, name string) ([]ovsdb.Operation, error) {
	if name == "" {
		return nil, errors.New("DeleteRouter: empty name")
	}
	found, err := routersNamed(c, name)
	if err != nil {
		return nil, err
	}
	var ops []ovsdb.Operation
	for _, lr := range found {
		ops = append(ops, deleteOp(nbdb.LogicalRouterTable, lr.UUID))
	}
	return ops, nil
}

// EnsureRouterPort makes the port named lrp.Name exist with lrp's mac,
// networks, options, external_ids and enabled, as a port of the router
// routerUUID (real or named); a port found on another router is moved.
// Returns the port's UUID or named UUID.
func EnsureRouterPort(c client.Client, routerUUID string, lrp *nbdb.LogicalRouterPort) ([]ovsdb.Operation, string, error) {
	if lrp.Name == "" {
		return nil, "", errors.New("EnsureRouterPort: empty name")
	}
	if lrp.MAC == "" || len(lrp.Networks) == 0 {
		// The schema requires both; failing here names the port, which
		// the database's constraint violation would not.
		return nil, "", fmt.Errorf("router port %q: mac and networks are required", lrp.Name)
	}
	cur := &nbdb.LogicalRouterPort{Name: lrp.Name}
	err := c.Get(context.Background(), cur)
	if errors.Is(err, ErrNotFound) {
		named := namedUUID("lrp", lrp.Name)
		op, err := insertOp(c, nbdb.LogicalRouterPortTable, named, lrp, routerPortKey(), routerPortOwned())
		if err != nil {
			return nil, "", err
		}
		member, err := memberOps(c, nbdb.LogicalRouterTable, "ports", routerUUID, named, true, routerPorts)
		if err != nil {
			return nil, "", fmt.Errorf("router port %q: %w", lrp.Name, err)
		}
		return append([]ovsdb.Operation{op}, member...), named, nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("look up router port %q: %w", lrp.Name, err)
	}
	ops, err := updateOps(c, nbdb.LogicalRouterPortTable, cur.UUID, routerPortOwned(), cur, lrp)
	if err != nil {
		return nil, "", err
	}
	member, err := memberOps(c, nbdb.LogicalRouterTable, "ports", routerUUID, cur.UUID, false, routerPorts)
	if err != nil {
		return nil, "", fmt.Errorf("router port %q: %w", lrp.Name, err)
	}
	return append(ops, member...), cur.UUID, nil
}

// DeleteRouterPort removes the port named name from whichever router holds
// it and deletes it. No ops when it does not exist.
func DeleteRouterPort(c client.Client, name string) ([]ovsdb.Operation, error) {
	if name == "" {
		return nil, errors.New("DeleteRouterPort: empty name")
	}
	cur := &nbdb.LogicalRouterPort{Name: name}
	err := c.Get(context.Background(), cur)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up router port %q: %w", name, err)
	}
	return unlinkOps(c, nbdb.LogicalRouterTable, "ports", nbdb.LogicalRouterPortTable, cur.UUID, routerPorts), nil
}
