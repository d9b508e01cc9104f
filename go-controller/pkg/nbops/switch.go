package nbops

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

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

func switchKind() rootKind[nbdb.LogicalSwitch] {
	return rootKind[nbdb.LogicalSwitch]{
		table: nbdb.LogicalSwitchTable, prefix: "ls", what: "logical switch", fn: "EnsureSwitch",
		name:  func(m *nbdb.LogicalSwitch) string { return m.Name },
		uuid:  func(m *nbdb.LogicalSwitch) string { return m.UUID },
		probe: func(name string) *nbdb.LogicalSwitch { return &nbdb.LogicalSwitch{Name: name} },
		key:   switchKey(), owned: switchOwned(),
	}
}

func switchPortKind() memberKind[nbdb.LogicalSwitchPort, nbdb.LogicalSwitch] {
	return memberKind[nbdb.LogicalSwitchPort, nbdb.LogicalSwitch]{
		table: nbdb.LogicalSwitchPortTable, parentTable: nbdb.LogicalSwitchTable,
		prefix: "lsp", what: "port", fn: "EnsureSwitchPort",
		name:  func(m *nbdb.LogicalSwitchPort) string { return m.Name },
		uuid:  func(m *nbdb.LogicalSwitchPort) string { return m.UUID },
		probe: func(name string) *nbdb.LogicalSwitchPort { return &nbdb.LogicalSwitchPort{Name: name} },
		key:   switchPortKey(), owned: switchPortOwned(), refs: switchPorts,
	}
}

// GetSwitch returns the cached switch named name, or an error wrapping
// ErrNotFound or ErrDuplicate.
func GetSwitch(c client.Client, name string) (*nbdb.LogicalSwitch, error) {
	return switchKind().get(c, name)
}

// EnsureSwitch makes the switch named ls.Name exist with ls's other_config,
// external_ids and load_balancer_group (all compared as whole maps/sets).
// It returns the switch's UUID, or the named UUID it is inserted under,
// for EnsureSwitchPort in the same transaction. A second switch with the
// same name is an error wrapping ErrDuplicate.
func EnsureSwitch(c client.Client, ls *nbdb.LogicalSwitch) ([]ovsdb.Operation, string, error) {
	return switchKind().ensure(c, ls)
}

// DeleteSwitch deletes every switch named name; OVSDB garbage-collects
// their ports (and ACLs, QoS rules) with them. No ops when there is none.
func DeleteSwitch(c client.Client, name string) ([]ovsdb.Operation, error) {
	return switchKind().delete(c, "DeleteSwitch", name)
}

// EnsureSwitchPort makes the port named lsp.Name exist with lsp's owned
// columns (type, addresses, port_security, options, external_ids,
// tag_request, enabled) and be a port of the switch switchUUID, a real
// UUID from the cache or the named UUID EnsureSwitch returned earlier in
// the same op list. A port found on another switch is moved. Returns the
// port's UUID or named UUID.
func EnsureSwitchPort(c client.Client, switchUUID string, lsp *nbdb.LogicalSwitchPort) ([]ovsdb.Operation, string, error) {
	return switchPortKind().ensure(c, switchUUID, lsp)
}

// DeleteSwitchPort removes the port named name from whichever switch holds
// it and deletes it. No ops when it does not exist.
func DeleteSwitchPort(c client.Client, name string) ([]ovsdb.Operation, error) {
	return switchPortKind().delete(c, "DeleteSwitchPort", name)
}

// GetSwitchPort reads a logical switch port by name from the cache.
func GetSwitchPort(c client.Client, name string) (*nbdb.LogicalSwitchPort, error) {
	lsp := &nbdb.LogicalSwitchPort{Name: name}
	if err := c.Get(context.Background(), lsp); err != nil {
		return nil, fmt.Errorf("logical switch port %q: %w", name, err)
	}
	return lsp, nil
}

// PortIP is the first address of a port whose addresses are "MAC IP…"
// (pods' and external ports'), or false when it has none.
func PortIP(lsp *nbdb.LogicalSwitchPort) (netip.Addr, bool) {
	for _, a := range lsp.Addresses {
		f := strings.Fields(a)
		if len(f) < 2 {
			continue
		}
		if ip, err := netip.ParseAddr(f[1]); err == nil {
			return ip, true
		}
	}
	return netip.Addr{}, false
}
