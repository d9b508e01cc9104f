// Package sbview is the read-only snapshot of the SB rows kovnctl reads:
// chassis (which hosts ovn-controller registered, and how far they have
// caught up) and port bindings (where each port is bound, and whether
// ovn-controller has installed it). Logical flows are not here: trace asks
// SB for the few it needs.
package sbview

import (
	"cmp"
	"slices"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/ovndb"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/sbdb"
)

// Rows are the raw rows.
type Rows struct {
	Chassis        []*sbdb.Chassis
	ChassisPrivate []*sbdb.ChassisPrivate
	Encaps         []*sbdb.Encap
	PortBindings   []*sbdb.PortBinding
	Global         []*sbdb.SBGlobal
}

// View indexes Rows.
type View struct {
	Rows
	chassisByUUID, chassisByName map[string]*sbdb.Chassis
	private                      map[string]*sbdb.ChassisPrivate
	encaps                       map[string]*sbdb.Encap
	bindings                     map[string]*sbdb.PortBinding
}

// Tables are the SB tables read; of Port_Binding, the largest, only the
// columns that say where a port is and whether it is up.
func Tables() []ovndb.Table {
	pb := &sbdb.PortBinding{}
	return []ovndb.Table{
		ovndb.T(&sbdb.Chassis{}), ovndb.T(&sbdb.ChassisPrivate{}), ovndb.T(&sbdb.Encap{}), ovndb.T(&sbdb.SBGlobal{}),
		ovndb.T(pb, &pb.LogicalPort, &pb.Chassis, &pb.Up, &pb.Type, &pb.RequestedChassis, &pb.TunnelKey),
	}
}

// FromClient snapshots a client's cache.
func FromClient(c client.Client) *View {
	return Build(Rows{
		Chassis:        ovndb.Rows[sbdb.Chassis](c, sbdb.ChassisTable),
		ChassisPrivate: ovndb.Rows[sbdb.ChassisPrivate](c, sbdb.ChassisPrivateTable),
		Encaps:         ovndb.Rows[sbdb.Encap](c, sbdb.EncapTable),
		PortBindings:   ovndb.Rows[sbdb.PortBinding](c, sbdb.PortBindingTable),
		Global:         ovndb.Rows[sbdb.SBGlobal](c, sbdb.SBGlobalTable),
	})
}

// Build indexes rows.
func Build(r Rows) *View {
	v := &View{Rows: r, chassisByUUID: map[string]*sbdb.Chassis{}, chassisByName: map[string]*sbdb.Chassis{},
		private: map[string]*sbdb.ChassisPrivate{}, encaps: map[string]*sbdb.Encap{}, bindings: map[string]*sbdb.PortBinding{}}
	slices.SortFunc(v.Chassis, func(a, b *sbdb.Chassis) int { return cmp.Compare(a.Name, b.Name) })
	for _, c := range v.Chassis {
		v.chassisByUUID[c.UUID], v.chassisByName[c.Name] = c, c
	}
	for _, p := range v.ChassisPrivate {
		v.private[p.Name] = p
	}
	for _, e := range v.Encaps {
		v.encaps[e.UUID] = e
	}
	for _, b := range v.PortBindings {
		v.bindings[b.LogicalPort] = b
	}
	return v
}

// ChassisForNode finds a node's chassis: by the chassis ID kovn-node
// published on the Node, else by hostname (ovn-controller registers the
// host's name, which kovn-node sets to the node name).
func (v *View) ChassisForNode(node, chassisID string) *sbdb.Chassis {
	if c := v.chassisByName[chassisID]; chassisID != "" && c != nil {
		return c
	}
	for _, c := range v.Chassis {
		if c.Hostname == node {
			return c
		}
	}
	return nil
}

// ChassisByUUID resolves a Port_Binding's chassis reference.
func (v *View) ChassisByUUID(u string) *sbdb.Chassis { return v.chassisByUUID[u] }

// Private is a chassis' Chassis_Private row (nb_cfg progress).
func (v *View) Private(chassisName string) *sbdb.ChassisPrivate { return v.private[chassisName] }

// Binding is the Port_Binding of a logical port.
func (v *View) Binding(logicalPort string) *sbdb.PortBinding { return v.bindings[logicalPort] }

// EncapsOf describes a chassis' tunnel endpoints as "type ip".
func (v *View) EncapsOf(c *sbdb.Chassis) []string {
	var out []string
	for _, u := range c.Encaps {
		if e := v.encaps[u]; e != nil {
			out = append(out, e.Type+" "+e.IP)
		}
	}
	slices.Sort(out)
	return out
}

// BoundChassis names the chassis a binding is on, "" when unbound.
func (v *View) BoundChassis(b *sbdb.PortBinding) string {
	if b == nil || b.Chassis == nil {
		return ""
	}
	if c := v.chassisByUUID[*b.Chassis]; c != nil {
		return c.Name
	}
	return *b.Chassis
}

// Up reads Port_Binding.up: true once ovn-controller has installed the
// port's flows (what sets ovn-installed on the OVS interface).
func Up(b *sbdb.PortBinding) bool { return b != nil && b.Up != nil && *b.Up }
