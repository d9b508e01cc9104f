package ovs

import (
	"context"
	"fmt"
	"maps"
	"net"
	"slices"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/vswitchd"
)

// Interface external_ids keys.
const (
	// KeyIfaceID binds the interface to the logical switch port of that
	// name; KeyIfaceIDVer must then match the LSP's iface-id-ver.
	KeyIfaceID    = "iface-id"
	KeyIfaceIDVer = "iface-id-ver"
	// KeyOVNInstalled is set to "true" by ovn-controller once the port's
	// flows are installed; KeyOVNInstalledTS is when.
	KeyOVNInstalled   = "ovn-installed"
	KeyOVNInstalledTS = "ovn-installed-ts"
)

// portSpec is the Port and Interface (of the same name) to ensure.
type portSpec struct {
	name      string
	ifaceType string // "" for a system device (a NIC, a veth end)
	mac       string // internal interfaces only; "" leaves mac alone
	// ownIDs says external_ids are the caller's and ids is the whole map.
	ownIDs bool
	ids    map[string]string
}

// AddInternalPort adds an internal port (OVS creates the netdev, e.g. the
// management port) to bridge, with the interface's MAC set to mac and its
// external_ids to externalIDs. An existing port of that name is updated to
// match, and moved if it is on another bridge.
func (c *Client) AddInternalPort(ctx context.Context, bridge, name string, externalIDs map[string]string, mac string) error {
	hw, err := net.ParseMAC(mac)
	if err != nil {
		return fmt.Errorf("internal port %s: %w", name, err)
	}
	return c.ensurePort(ctx, bridge, portSpec{name: name, ifaceType: "internal", mac: hw.String(), ownIDs: true, ids: externalIDs})
}

// AddPort adds the existing host device name (a pod's veth host end) to
// bridge with the interface's external_ids set to externalIDs (iface-id,
// iface-id-ver and kovn's own keys). An existing port of that name is
// updated to match, and moved if it is on another bridge.
func (c *Client) AddPort(ctx context.Context, bridge, name string, externalIDs map[string]string) error {
	return c.ensurePort(ctx, bridge, portSpec{name: name, ownIDs: true, ids: externalIDs})
}

func (c *Client) ensurePort(ctx context.Context, bridge string, spec portSpec) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	br, err := c.bridge(ctx, bridge)
	if err != nil {
		return err
	}
	if br == nil {
		return fmt.Errorf("add port %s: bridge %s does not exist", spec.name, bridge)
	}
	port, err := c.port(ctx, spec.name)
	if err != nil {
		return err
	}
	var ops []ovsdb.Operation
	if port == nil {
		var ref string
		ops, ref = insertPortOps(spec)
		ops = append(ops, mutateOp(vswitchd.BridgeTable, br.UUID, portsMutation(ovsdb.MutateOperationInsert, ref)))
	} else if ops, err = c.updatePortOps(ctx, br, port, spec); err != nil {
		return err
	}
	return c.transact(ctx, "port "+bridge+"/"+spec.name, ops)
}

// insertPortOps inserts spec's Interface and Port; the caller adds the
// returned Port reference to a bridge in the same transaction (Port and
// Interface are not root tables).
func insertPortOps(spec portSpec) (ops []ovsdb.Operation, portRef string) {
	iface := ovsdb.Row{"name": spec.name, "type": spec.ifaceType}
	if spec.mac != "" {
		iface["mac"] = spec.mac
	}
	if len(spec.ids) > 0 {
		iface["external_ids"] = strMap(spec.ids)
	}
	return []ovsdb.Operation{
		insertOp(vswitchd.InterfaceTable, "new_iface", iface),
		insertOp(vswitchd.PortTable, "new_port", ovsdb.Row{"name": spec.name, "interfaces": uuidSet("new_iface")}),
	}, "new_port"
}

func (c *Client) updatePortOps(ctx context.Context, br *vswitchd.Bridge, port *vswitchd.Port, spec portSpec) ([]ovsdb.Operation, error) {
	iface, err := c.iface(ctx, spec.name)
	if err != nil {
		return nil, err
	}
	if iface == nil || len(port.Interfaces) != 1 || port.Interfaces[0] != iface.UUID {
		// A bond or a port someone else built; changing it could cut
		// the host off.
		return nil, fmt.Errorf("port %s exists with other interfaces than one named %s; not changing it", spec.name, spec.name)
	}
	var ops []ovsdb.Operation
	if !slices.Contains(br.Ports, port.UUID) {
		old, err := c.bridgeOfPort(ctx, port.UUID)
		if err != nil {
			return nil, err
		}
		// The same Port row moves, so it is never unreferenced (and
		// collected) in between.
		if old != nil {
			ops = append(ops, mutateOp(vswitchd.BridgeTable, old.UUID, portsMutation(ovsdb.MutateOperationDelete, port.UUID)))
		}
		ops = append(ops, mutateOp(vswitchd.BridgeTable, br.UUID, portsMutation(ovsdb.MutateOperationInsert, port.UUID)))
	}
	row := ovsdb.Row{}
	if iface.Type != spec.ifaceType {
		row["type"] = spec.ifaceType
	}
	if spec.mac != "" && (iface.MAC == nil || *iface.MAC != spec.mac) {
		row["mac"] = spec.mac
	}
	if spec.ownIDs && !sameIDs(iface.ExternalIDs, spec.ids) {
		// The whole map, so ovn-installed goes too: it belonged to the
		// old binding, and WaitInstalled must wait for the new one.
		row["external_ids"] = strMap(spec.ids)
	}
	if len(row) > 0 {
		ops = append(ops, updateOp(vswitchd.InterfaceTable, iface.UUID, row))
	}
	return ops, nil
}

// sameIDs compares an interface's external_ids with the desired ones,
// ignoring the keys ovn-controller adds.
func sameIDs(cur, want map[string]string) bool {
	cur = maps.Clone(cur)
	delete(cur, KeyOVNInstalled)
	delete(cur, KeyOVNInstalledTS)
	return maps.Equal(cur, want)
}

func portsMutation(mutator ovsdb.Mutator, portUUID string) ovsdb.Mutation {
	return ovsdb.Mutation{Column: "ports", Mutator: mutator, Value: uuidSet(portUUID)}
}

// DeletePort removes port name, and its interfaces, from bridge. A port
// that does not exist is not an error (CNI DEL may run many times); one on
// another bridge is, since it is not the port the caller means.
func (c *Client) DeletePort(ctx context.Context, bridge, name string) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	port, err := c.port(ctx, name)
	if err != nil || port == nil {
		return err
	}
	br, err := c.bridgeOfPort(ctx, port.UUID)
	if err != nil {
		return err
	}
	var ops []ovsdb.Operation
	if br != nil {
		if br.Name != bridge {
			return fmt.Errorf("delete port %s: it is on bridge %s, not %s", name, br.Name, bridge)
		}
		ops = append(ops, mutateOp(vswitchd.BridgeTable, br.UUID, portsMutation(ovsdb.MutateOperationDelete, port.UUID)))
	}
	ops = append(ops, deleteOp(vswitchd.PortTable, port.UUID))
	for _, u := range port.Interfaces {
		ops = append(ops, deleteOp(vswitchd.InterfaceTable, u))
	}
	return c.transact(ctx, "delete port "+bridge+"/"+name, ops)
}
