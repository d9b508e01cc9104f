package nbops

import (
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

func routerKind() rootKind[nbdb.LogicalRouter] {
	return rootKind[nbdb.LogicalRouter]{
		table: nbdb.LogicalRouterTable, prefix: "lr", what: "logical router", fn: "EnsureRouter",
		name:  func(m *nbdb.LogicalRouter) string { return m.Name },
		uuid:  func(m *nbdb.LogicalRouter) string { return m.UUID },
		probe: func(name string) *nbdb.LogicalRouter { return &nbdb.LogicalRouter{Name: name} },
		key:   routerKey(), owned: routerOwned(),
	}
}

func routerPortKind() memberKind[nbdb.LogicalRouterPort, nbdb.LogicalRouter] {
	return memberKind[nbdb.LogicalRouterPort, nbdb.LogicalRouter]{
		table: nbdb.LogicalRouterPortTable, parentTable: nbdb.LogicalRouterTable,
		prefix: "lrp", what: "router port", fn: "EnsureRouterPort",
		name:  func(m *nbdb.LogicalRouterPort) string { return m.Name },
		uuid:  func(m *nbdb.LogicalRouterPort) string { return m.UUID },
		probe: func(name string) *nbdb.LogicalRouterPort { return &nbdb.LogicalRouterPort{Name: name} },
		key:   routerPortKey(), owned: routerPortOwned(), refs: routerPorts,
	}
}

// GetRouter returns the cached router named name, or an error wrapping
// ErrNotFound or ErrDuplicate.
func GetRouter(c client.Client, name string) (*nbdb.LogicalRouter, error) {
	return routerKind().get(c, name)
}

// EnsureRouter makes the router named lr.Name exist with lr's options,
// external_ids, enabled and load_balancer_group. It returns the router's
// UUID or the named UUID it is inserted under, for EnsureRouterPort,
// EnsureStaticRoutes and EnsureNATs in the same transaction.
func EnsureRouter(c client.Client, lr *nbdb.LogicalRouter) ([]ovsdb.Operation, string, error) {
	return routerKind().ensure(c, lr)
}

// DeleteRouter deletes every router named name; its ports, routes, NATs
// and policies are garbage-collected with it. No ops when there is none.
func DeleteRouter(c client.Client, name string) ([]ovsdb.Operation, error) {
	return routerKind().delete(c, "DeleteRouter", name)
}

// EnsureRouterPort makes the port named lrp.Name exist with lrp's mac,
// networks, options, external_ids and enabled, as a port of the router
// routerUUID (real or named); a port found on another router is moved.
// Returns the port's UUID or named UUID.
func EnsureRouterPort(c client.Client, routerUUID string, lrp *nbdb.LogicalRouterPort) ([]ovsdb.Operation, string, error) {
	if lrp.Name != "" && (lrp.MAC == "" || len(lrp.Networks) == 0) {
		// The schema requires both; failing here names the port, which
		// the database's constraint violation would not.
		return nil, "", fmt.Errorf("router port %q: mac and networks are required", lrp.Name)
	}
	return routerPortKind().ensure(c, routerUUID, lrp)
}

// DeleteRouterPort removes the port named name from whichever router holds
// it and deletes it. No ops when it does not exist.
func DeleteRouterPort(c client.Client, name string) ([]ovsdb.Operation, error) {
	return routerPortKind().delete(c, "DeleteRouterPort", name)
}
