package ovs

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/vswitchd"
)

// Open_vSwitch external_ids keys ovn-controller reads its chassis from.
const (
	KeySystemID           = "system-id"
	KeyHostname           = "hostname"
	KeyOVNRemote          = "ovn-remote"
	KeyEncapType          = "ovn-encap-type"
	KeyEncapIP            = "ovn-encap-ip"
	KeyBridgeMappings     = "ovn-bridge-mappings"
	KeyBridgeDatapathType = "ovn-bridge-datapath-type"
)

// ErrNoRoot means the database has no Open_vSwitch row yet (see the
// package doc); callers retry until the OVS start script has run.
var ErrNoRoot = errors.New("the Open_vSwitch table is empty: the database is not initialized (ovs-vsctl --no-wait init)")

// ChassisConfig is what ovn-controller needs to register this host as a
// chassis. Optional fields left empty remove their key, so a setting
// dropped from the configuration does not linger in the database.
type ChassisConfig struct {
	// SystemID names the chassis in the SB database (required).
	SystemID string
	// Hostname is the chassis hostname; empty lets ovn-controller use
	// the kernel's.
	Hostname string
	// OVNRemote is the SB endpoint list, e.g. "tcp:172.18.0.2:6642"
	// (required).
	OVNRemote string
	// EncapType defaults to "geneve".
	EncapType string
	// EncapIP is the tunnel endpoint address (required).
	EncapIP string
	// BridgeMappings is "physnet:br-ex[,…]".
	BridgeMappings string
	// DatapathType is the datapath ovn-controller gives br-int: "system"
	// or "netdev" (userspace); empty means OVS's default.
	DatapathType string
	// ExternalIDs are further keys to set; they must not repeat a key
	// above. Keys set earlier and later left out are not removed.
	ExternalIDs map[string]string
}

// externalIDs returns the keys to set and those to remove.
func (cfg ChassisConfig) externalIDs() (set map[string]string, drop []string, err error) {
	var missing []string
	for name, v := range map[string]string{"SystemID": cfg.SystemID, "OVNRemote": cfg.OVNRemote, "EncapIP": cfg.EncapIP} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return nil, nil, fmt.Errorf("chassis configuration lacks %v", missing)
	}
	encap := cfg.EncapType
	if encap == "" {
		encap = "geneve"
	}
	set = map[string]string{}
	for k, v := range map[string]string{
		KeySystemID: cfg.SystemID, KeyHostname: cfg.Hostname, KeyOVNRemote: cfg.OVNRemote,
		KeyEncapType: encap, KeyEncapIP: cfg.EncapIP, KeyBridgeMappings: cfg.BridgeMappings,
		KeyBridgeDatapathType: cfg.DatapathType,
	} {
		if v == "" {
			drop = append(drop, k)
		} else {
			set[k] = v
		}
	}
	for _, k := range slices.Sorted(maps.Keys(cfg.ExternalIDs)) {
		if _, own := set[k]; own || slices.Contains(drop, k) {
			return nil, nil, fmt.Errorf("chassis external_ids %q must be set through its ChassisConfig field", k)
		}
		set[k] = cfg.ExternalIDs[k]
	}
	slices.Sort(drop)
	return set, drop, nil
}

// EnsureChassis writes cfg into the Open_vSwitch row's external_ids,
// changing only the keys that differ and leaving every other key alone
// (other tools keep settings there too). No transaction when all agree.
func (c *Client) EnsureChassis(ctx context.Context, cfg ChassisConfig) error {
	set, drop, err := cfg.externalIDs()
	if err != nil {
		return err
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	root, err := c.root(ctx)
	if err != nil {
		return err
	}
	muts := mapMutations("external_ids", root.ExternalIDs, set, drop)
	if len(muts) == 0 {
		return nil
	}
	return c.transact(ctx, "chassis "+cfg.SystemID, []ovsdb.Operation{mutateOp(vswitchd.OpenvSwitchTable, root.UUID, muts...)})
}

// ChassisID returns external_ids:system-id, the name ovn-controller
// registers this host under.
func (c *Client) ChassisID(ctx context.Context) (string, error) {
	root, err := c.root(ctx)
	if err != nil {
		return "", err
	}
	id := root.ExternalIDs[KeySystemID]
	if id == "" {
		return "", fmt.Errorf("open_vswitch external_ids:%s is not set", KeySystemID)
	}
	return id, nil
}

// root reads the single Open_vSwitch row from the cache.
func (c *Client) root(ctx context.Context) (*vswitchd.OpenvSwitch, error) {
	var rows []*vswitchd.OpenvSwitch
	if err := c.ovs.List(ctx, &rows); err != nil {
		return nil, fmt.Errorf("list Open_vSwitch: %w", err)
	}
	switch len(rows) {
	case 0:
		return nil, ErrNoRoot
	case 1:
		return rows[0], nil
	default:
		return nil, fmt.Errorf("the Open_vSwitch table has %d rows, want 1", len(rows))
	}
}
