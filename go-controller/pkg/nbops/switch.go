package nbops

import (
	"context"
	"errors"
	"fmt"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
)

// Columns of Logical_Switch owned by EnsureSwitch. ports, acls,
// load_balancer, qos_rules, dns_records, forwarding_groups and copp belong
// to other builders (or to nobody yet) and are never written here.
func switchOwned() []fieldFunc[nbdb.LogicalSwitch] {
	return []fieldFunc[nbdb.LogicalSwitch]{
		func(m *nbdb.LogicalSwitch) any { return &m.OtherConfig },
		func(m *nbdb.LogicalSwitch) any { return &m.ExternalIDs },
		func(m *nbdb.LogicalSwitch) any { return &m.LoadBalancerGroup },
	}
}

func switchKey() []fieldFunc[nbdb.LogicalSwitch] {
	return []fieldFunc[nbdb.LogicalSwitch]{func(m *nbdb.LogicalSwitch) any { return &m.Name }}
}

// Columns of Logical_Switch_Port owned by EnsureSwitchPort. tag is set by
// northd from tag_request, up by ovn-controller, dynamic_addresses by
// northd; parent_name, dhcpv4/v6_options, ha_chassis_group and
// mirror_rules are left alone.
func switchPortOwned() []fieldFunc[nbdb.LogicalSwitchPort] {
	return []fieldFunc[nbdb.LogicalSwitchPort]{
		func(m *nbdb.LogicalSwitchPort) any { return &m.Type },
		func(m *nbdb.LogicalSwitchPort) any { return &m.Addresses },
		func(m *nbdb.LogicalSwitchPort) any { return &m.PortSecurity },
		func(m *nbdb.LogicalSwitchPort) any { return &m.Options },
		func(m *nbdb.LogicalSwitchPort) any { return &m.ExternalIDs },
		func(m *nbdb.LogicalSwitchPort) any { return &m.TagRequest },
		func(m *nbdb.LogicalSwitchPort) any { return &m.Enabled },
	}
}

func switchPortKey() []fieldFunc[nbdb.LogicalSwitchPort] {
	return []fieldFunc[nbdb.LogicalSwitchPort]{func(m *nbdb.LogicalSwitchPort) any { return &m.Name }}
}

func switchPorts(ls *nbdb.LogicalSwitch) []string { return ls.Ports }

func switchesNamed(c client.Client, name string) ([]*nbdb.LogicalSwitch, error) {
	return byName(c, nbdb.LogicalSwitchTable, name,
		func(m *nbdb.LogicalSwitch) string { return m.Name }, &nbdb.LogicalSwitch{Name: name})
}

// GetSwitch returns the cached switch named name, or an error wrapping
// ErrNotFound or ErrDuplicate.
func GetSwitch(c client.Client, name string) (*nbdb.LogicalSwitch, error) {
	found, err := switchesNamed(c, name)
	if err != nil {
		return nil, err
	}
	return onlyOne(found, nbdb.LogicalSwitchTable, name)
}

// EnsureSwitch makes the switch named ls.Name exist with ls's other_config,
// external_ids and load_balancer_group (all compared as whole maps/sets).
// It returns the switch's UUID, or the named UUID it is inserted under,
// for EnsureSwitchPort in the same transaction. A second switch with the
// same name is an error wrapping ErrDuplicate.
func EnsureSwitch(c client.Client, ls *nbdb.LogicalSwitch) ([]ovsdb.Operation, string, error) {
	if ls.Name == "" {
		return nil, "", errors.New("EnsureSwitch: empty name")
	}
	found, err := switchesNamed(c, ls.Name)
	if err != nil {
		return nil, "", err
	}
	switch len(found) {
	case 0:
		named := namedUUID("ls", ls.Name)
		op, err := insertOp(c, nbdb.LogicalSwitchTable, named, ls, switchKey(), switchOwned())
		if err != nil {
			return nil, "", err
		}
		return []ovsdb.Operation{absentGuard(nbdb.LogicalSwitchTable, ls.Name), op}, named, nil
	case 1:
		cur := found[0]
		ops, err := updateOps(c, nbdb.LogicalSwitchTable, cur.UUID, switchOwned(), cur, ls)
		return ops, cur.UUID, err
	default:
		return nil, "", fmt.Errorf("logical switch %q: %d rows: %w", ls.Name, len(found), ErrDuplicate)
	}
}

// DeleteSwitch deletes every switch named name; OVSDB garbage-collects
// their ports (and ACLs, QoS rules) with them. No ops when there is none.
func DeleteSwitch(c client.Client, name string) ([]ovsdb.Operation, error) {
	if name == "" {
		return nil, errors.New("DeleteSwitch: empty name")
	}
	found, err := switchesNamed(c, name)
	if err != nil {
		return nil, err
	}
	var ops []ovsdb.Operation
	for _, ls := range found {
		ops = append(ops, deleteOp(nbdb.LogicalSwitchTable, ls.UUID))
	}
	return ops, nil
}

// EnsureSwitchPort makes the port named lsp.Name exist with lsp's owned
// columns (type, addresses, port_security, options, external_ids,
// tag_request, enabled) and be a port of the switch switchUUID, a real
// UUID from the cache or the named UUID EnsureSwitch returned earlier in
// the same op list. A port found on another switch is moved. Returns the
// port's UUID or named UUID.
func EnsureSwitchPort(c client.Client, switchUUID string, lsp *nbdb.LogicalSwitchPort) ([]ovsdb.Operation, string, error) {
	if lsp.Name == "" {
		return nil, "", errors.New("EnsureSwitchPort: empty name")
	}
	cur := &nbdb.LogicalSwitchPort{Name: lsp.Name}
	err := c.Get(context.Background(), cur)
	if errors.Is(err, ErrNotFound) {
		named := namedUUID("lsp", lsp.Name)
		op, err := insertOp(c, nbdb.LogicalSwitchPortTable, named, lsp, switchPortKey(), switchPortOwned())
		if err != nil {
			return nil, "", err
		}
		member, err := memberOps(c, nbdb.LogicalSwitchTable, "ports", switchUUID, named, true, switchPorts)
		if err != nil {
			return nil, "", fmt.Errorf("port %q: %w", lsp.Name, err)
		}
		return append([]ovsdb.Operation{op}, member...), named, nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("look up port %q: %w", lsp.Name, err)
	}
	ops, err := updateOps(c, nbdb.LogicalSwitchPortTable, cur.UUID, switchPortOwned(), cur, lsp)
	if err != nil {
		return nil, "", err
	}
	member, err := memberOps(c, nbdb.LogicalSwitchTable, "ports", switchUUID, cur.UUID, false, switchPorts)
	if err != nil {
		return nil, "", fmt.Errorf("port %q: %w", lsp.Name, err)
	}
	return append(ops, member...), cur.UUID, nil
}

// DeleteSwitchPort removes the port named name from whichever switch holds
// it and deletes it. No ops when it does not exist.
func DeleteSwitchPort(c client.Client, name string) ([]ovsdb.Operation, error) {
	if name == "" {
		return nil, errors.New("DeleteSwitchPort: empty name")
	}
	cur := &nbdb.LogicalSwitchPort{Name: name}
	err := c.Get(context.Background(), cur)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up port %q: %w", name, err)
	}
	return unlinkOps(c, nbdb.LogicalSwitchTable, "ports", nbdb.LogicalSwitchPortTable, cur.UUID, switchPorts), nil
}

// GetSwitchPort reads a logical switch port by name from the cache.
func GetSwitchPort(c client.Client, name string) (*nbdb.LogicalSwitchPort, error) {
	lsp := &nbdb.LogicalSwitchPort{Name: name}
	if err := c.Get(context.Background(), lsp); err != nil {
		return nil, fmt.Errorf("logical switch port %q: %w", name, err)
	}
	return lsp, nil
}
