package ovs

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/vswitchd"
)

// EnsureBridge creates bridge name with its local internal port and
// interface of the same name, as `ovs-vsctl add-br` does, or brings an
// existing one in line: datapath_type is set when datapathType is not
// empty, and the keys of otherConfig (e.g. "hwaddr") are set, other keys
// left alone. No transaction when all agree.
func (c *Client) EnsureBridge(ctx context.Context, name, datapathType string, otherConfig map[string]string) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	br, err := c.bridge(ctx, name)
	if err != nil {
		return err
	}
	if br == nil {
		root, err := c.root(ctx)
		if err != nil {
			return err
		}
		ops, portRef := insertPortOps(portSpec{name: name, ifaceType: "internal"})
		row := ovsdb.Row{"name": name, "ports": uuidSet(portRef), "datapath_type": datapathType}
		if len(otherConfig) > 0 {
			row["other_config"] = strMap(otherConfig)
		}
		ops = append(ops, insertOp(vswitchd.BridgeTable, "new_bridge", row),
			// Bridge is not a root table: a row no Open_vSwitch row refers
			// to would be garbage-collected at commit.
			mutateOp(vswitchd.OpenvSwitchTable, root.UUID, ovsdb.Mutation{
				Column: "bridges", Mutator: ovsdb.MutateOperationInsert, Value: uuidSet("new_bridge"),
			}))
		return c.transact(ctx, "add bridge "+name, ops)
	}
	var ops []ovsdb.Operation
	if datapathType != "" && br.DatapathType != datapathType {
		ops = append(ops, updateOp(vswitchd.BridgeTable, br.UUID, ovsdb.Row{"datapath_type": datapathType}))
	}
	if muts := mapMutations("other_config", br.OtherConfig, otherConfig, nil); len(muts) > 0 {
		ops = append(ops, mutateOp(vswitchd.BridgeTable, br.UUID, muts...))
	}
	return c.transact(ctx, "update bridge "+name, ops)
}

// EnsureSystemPort puts the host interface ifname on bridge (e.g. the
// uplink NIC on br-ex), moving it there in one transaction if it is on
// another bridge. Its external_ids are not touched.
func (c *Client) EnsureSystemPort(ctx context.Context, bridge, ifname string) error {
	return c.ensurePort(ctx, bridge, portSpec{name: ifname})
}

// The getters below read the cache; a missing row is (nil, nil). Get and
// List wait (bounded by ctx) while libovsdb refills the cache after a
// reconnection, so an absent row means absent, not "not loaded yet".

func (c *Client) bridge(ctx context.Context, name string) (*vswitchd.Bridge, error) {
	return get(ctx, c.ovs, &vswitchd.Bridge{Name: name})
}

func (c *Client) port(ctx context.Context, name string) (*vswitchd.Port, error) {
	return get(ctx, c.ovs, &vswitchd.Port{Name: name})
}

func (c *Client) iface(ctx context.Context, name string) (*vswitchd.Interface, error) {
	return get(ctx, c.ovs, &vswitchd.Interface{Name: name})
}

// bridgeOfPort returns the bridge whose ports include portUUID.
func (c *Client) bridgeOfPort(ctx context.Context, portUUID string) (*vswitchd.Bridge, error) {
	var brs []*vswitchd.Bridge
	err := c.ovs.WhereCache(func(b *vswitchd.Bridge) bool { return slices.Contains(b.Ports, portUUID) }).List(ctx, &brs)
	if err != nil || len(brs) == 0 {
		return nil, err
	}
	return brs[0], nil
}

// get looks m up by its UUID or, when that is empty, by the schema's name
// index (Bridge, Port and Interface all have one).
func get[T model.Model](ctx context.Context, c client.Client, m T) (T, error) {
	var zero T
	if err := c.Get(ctx, m); err != nil {
		if errors.Is(err, client.ErrNotFound) {
			return zero, nil
		}
		return zero, fmt.Errorf("read %T from the OVS cache: %w", m, err)
	}
	return m, nil
}

// SetBridgeExternalIDs sets the keys of ids in bridge name's external_ids,
// leaving other keys alone; no transaction when they already agree.
func (c *Client) SetBridgeExternalIDs(ctx context.Context, name string, ids map[string]string) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	br, err := c.bridge(ctx, name)
	if err != nil {
		return err
	}
	if br == nil {
		return fmt.Errorf("bridge %s does not exist", name)
	}
	muts := mapMutations("external_ids", br.ExternalIDs, ids, nil)
	if len(muts) == 0 {
		return nil
	}
	return c.transact(ctx, "set external_ids of bridge "+name, []ovsdb.Operation{mutateOp(vswitchd.BridgeTable, br.UUID, muts...)})
}

// BridgeExternalID reads one external_ids key of bridge name ("" when the
// bridge or the key is missing).
func (c *Client) BridgeExternalID(ctx context.Context, name, key string) (string, error) {
	br, err := c.bridge(ctx, name)
	if err != nil || br == nil {
		return "", err
	}
	return br.ExternalIDs[key], nil
}
