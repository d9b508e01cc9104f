// Package nbview is a read-only snapshot of the NB rows kovnctl explains,
// indexed the ways its commands look them up: by name, by UUID, and by
// containment (which switch holds a port, which port groups hold it).
// OVN keeps only forward references (a switch lists its ports); every
// "what contains this" question is a reverse index built here once.
package nbview

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/ovndb"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
)

// Rows are the raw rows a View is built from; a table left nil is simply
// empty (not monitored).
type Rows struct {
	Switches     []*nbdb.LogicalSwitch
	SwitchPorts  []*nbdb.LogicalSwitchPort
	Routers      []*nbdb.LogicalRouter
	RouterPorts  []*nbdb.LogicalRouterPort
	PortGroups   []*nbdb.PortGroup
	AddressSets  []*nbdb.AddressSet
	ACLs         []*nbdb.ACL
	LBs          []*nbdb.LoadBalancer
	LBGroups     []*nbdb.LoadBalancerGroup
	NATs         []*nbdb.NAT
	Routes       []*nbdb.LogicalRouterStaticRoute
	TemplateVars []*nbdb.ChassisTemplateVar
	Global       []*nbdb.NBGlobal
}

// View is the indexed snapshot.
type View struct {
	Rows

	lsp, ls, lr, lrp, pg, as, lb, lbg map[string]any // by name
	byUUID                            map[string]any
	portSwitch                        map[string]*nbdb.LogicalSwitch // LSP UUID → switch
	portRouter                        map[string]*nbdb.LogicalRouter // LRP UUID → router
	aclGroup                          map[string]*nbdb.PortGroup     // ACL UUID → port group
}

// Tables are every NB table a View reads; commands that need fewer pass
// their own list to ovndb.NB.
func Tables() []ovndb.Table {
	return []ovndb.Table{
		ovndb.T(&nbdb.LogicalSwitch{}), ovndb.T(&nbdb.LogicalSwitchPort{}),
		ovndb.T(&nbdb.LogicalRouter{}), ovndb.T(&nbdb.LogicalRouterPort{}),
		ovndb.T(&nbdb.PortGroup{}), ovndb.T(&nbdb.AddressSet{}), ovndb.T(&nbdb.ACL{}),
		ovndb.T(&nbdb.LoadBalancer{}), ovndb.T(&nbdb.LoadBalancerGroup{}),
		ovndb.T(&nbdb.NAT{}), ovndb.T(&nbdb.LogicalRouterStaticRoute{}),
		ovndb.T(&nbdb.ChassisTemplateVar{}), ovndb.T(&nbdb.NBGlobal{}),
	}
}

// FromClient snapshots a client's cache.
func FromClient(c client.Client) *View {
	return Build(Rows{
		Switches:     ovndb.Rows[nbdb.LogicalSwitch](c, nbdb.LogicalSwitchTable),
		SwitchPorts:  ovndb.Rows[nbdb.LogicalSwitchPort](c, nbdb.LogicalSwitchPortTable),
		Routers:      ovndb.Rows[nbdb.LogicalRouter](c, nbdb.LogicalRouterTable),
		RouterPorts:  ovndb.Rows[nbdb.LogicalRouterPort](c, nbdb.LogicalRouterPortTable),
		PortGroups:   ovndb.Rows[nbdb.PortGroup](c, nbdb.PortGroupTable),
		AddressSets:  ovndb.Rows[nbdb.AddressSet](c, nbdb.AddressSetTable),
		ACLs:         ovndb.Rows[nbdb.ACL](c, nbdb.ACLTable),
		LBs:          ovndb.Rows[nbdb.LoadBalancer](c, nbdb.LoadBalancerTable),
		LBGroups:     ovndb.Rows[nbdb.LoadBalancerGroup](c, nbdb.LoadBalancerGroupTable),
		NATs:         ovndb.Rows[nbdb.NAT](c, nbdb.NATTable),
		Routes:       ovndb.Rows[nbdb.LogicalRouterStaticRoute](c, nbdb.LogicalRouterStaticRouteTable),
		TemplateVars: ovndb.Rows[nbdb.ChassisTemplateVar](c, nbdb.ChassisTemplateVarTable),
		Global:       ovndb.Rows[nbdb.NBGlobal](c, nbdb.NBGlobalTable),
	})
}

// Build indexes rows. Rows are sorted by name (or UUID) first, so every
// listing a command prints is stable from run to run.
func Build(r Rows) *View {
	v := &View{Rows: r, byUUID: map[string]any{},
		portSwitch: map[string]*nbdb.LogicalSwitch{}, portRouter: map[string]*nbdb.LogicalRouter{},
		aclGroup: map[string]*nbdb.PortGroup{}}
	sortBy(v.Switches, func(x *nbdb.LogicalSwitch) string { return x.Name })
	sortBy(v.SwitchPorts, func(x *nbdb.LogicalSwitchPort) string { return x.Name })
	sortBy(v.Routers, func(x *nbdb.LogicalRouter) string { return x.Name })
	sortBy(v.RouterPorts, func(x *nbdb.LogicalRouterPort) string { return x.Name })
	sortBy(v.PortGroups, func(x *nbdb.PortGroup) string { return x.Name })
	sortBy(v.AddressSets, func(x *nbdb.AddressSet) string { return x.Name })
	sortBy(v.ACLs, func(x *nbdb.ACL) string { return x.UUID })
	sortBy(v.LBs, func(x *nbdb.LoadBalancer) string { return x.Name })
	sortBy(v.LBGroups, func(x *nbdb.LoadBalancerGroup) string { return x.Name })
	v.lsp = index(v.SwitchPorts, v.byUUID, func(x *nbdb.LogicalSwitchPort) (string, string) { return x.UUID, x.Name })
	v.ls = index(v.Switches, v.byUUID, func(x *nbdb.LogicalSwitch) (string, string) { return x.UUID, x.Name })
	v.lr = index(v.Routers, v.byUUID, func(x *nbdb.LogicalRouter) (string, string) { return x.UUID, x.Name })
	v.lrp = index(v.RouterPorts, v.byUUID, func(x *nbdb.LogicalRouterPort) (string, string) { return x.UUID, x.Name })
	v.pg = index(v.PortGroups, v.byUUID, func(x *nbdb.PortGroup) (string, string) { return x.UUID, x.Name })
	v.as = index(v.AddressSets, v.byUUID, func(x *nbdb.AddressSet) (string, string) { return x.UUID, x.Name })
	v.lb = index(v.LBs, v.byUUID, func(x *nbdb.LoadBalancer) (string, string) { return x.UUID, x.Name })
	v.lbg = index(v.LBGroups, v.byUUID, func(x *nbdb.LoadBalancerGroup) (string, string) { return x.UUID, x.Name })
	for _, a := range v.ACLs {
		v.byUUID[a.UUID] = a
	}
	for _, n := range v.NATs {
		v.byUUID[n.UUID] = n
	}
	for _, r := range v.Routes {
		v.byUUID[r.UUID] = r
	}
	for _, ls := range v.Switches {
		for _, p := range ls.Ports {
			v.portSwitch[p] = ls
		}
	}
	for _, lr := range v.Routers {
		for _, p := range lr.Ports {
			v.portRouter[p] = lr
		}
	}
	for _, pg := range v.PortGroups {
		for _, a := range pg.ACLs {
			v.aclGroup[a] = pg
		}
	}
	return v
}

func sortBy[T any](s []*T, key func(*T) string) {
	slices.SortStableFunc(s, func(a, b *T) int { return cmp.Compare(key(a), key(b)) })
}

// index maps names to rows (the first row of a duplicated name wins: kovn
// never writes two, and a view must not fail on someone else's rows).
func index[T any](rows []*T, byUUID map[string]any, key func(*T) (uuid, name string)) map[string]any {
	m := make(map[string]any, len(rows))
	for _, r := range rows {
		u, n := key(r)
		byUUID[u] = r
		if _, dup := m[n]; !dup {
			m[n] = r
		}
	}
	return m
}

func get[T any](m map[string]any, k string) *T {
	r, _ := m[k].(*T)
	return r
}

// Lookups by name; nil when absent.
func (v *View) SwitchPort(name string) *nbdb.LogicalSwitchPort {
	return get[nbdb.LogicalSwitchPort](v.lsp, name)
}
func (v *View) Switch(name string) *nbdb.LogicalSwitch { return get[nbdb.LogicalSwitch](v.ls, name) }
func (v *View) Router(name string) *nbdb.LogicalRouter { return get[nbdb.LogicalRouter](v.lr, name) }
func (v *View) RouterPort(name string) *nbdb.LogicalRouterPort {
	return get[nbdb.LogicalRouterPort](v.lrp, name)
}
func (v *View) PortGroup(name string) *nbdb.PortGroup   { return get[nbdb.PortGroup](v.pg, name) }
func (v *View) AddressSet(name string) *nbdb.AddressSet { return get[nbdb.AddressSet](v.as, name) }
func (v *View) LoadBalancerGroup(name string) *nbdb.LoadBalancerGroup {
	return get[nbdb.LoadBalancerGroup](v.lbg, name)
}

// Lookups by UUID; nil when absent or of another table.
func (v *View) SwitchPortByUUID(u string) *nbdb.LogicalSwitchPort {
	return get[nbdb.LogicalSwitchPort](v.byUUID, u)
}
func (v *View) RouterPortByUUID(u string) *nbdb.LogicalRouterPort {
	return get[nbdb.LogicalRouterPort](v.byUUID, u)
}
func (v *View) ACLByUUID(u string) *nbdb.ACL { return get[nbdb.ACL](v.byUUID, u) }
func (v *View) LoadBalancerByUUID(u string) *nbdb.LoadBalancer {
	return get[nbdb.LoadBalancer](v.byUUID, u)
}
func (v *View) LoadBalancerGroupByUUID(u string) *nbdb.LoadBalancerGroup {
	return get[nbdb.LoadBalancerGroup](v.byUUID, u)
}

// NATByUUID and RouteByUUID resolve a router's nat and static_routes.
func (v *View) NATByUUID(u string) *nbdb.NAT { return get[nbdb.NAT](v.byUUID, u) }

// RouteByUUID: see NATByUUID.
func (v *View) RouteByUUID(u string) *nbdb.LogicalRouterStaticRoute {
	return get[nbdb.LogicalRouterStaticRoute](v.byUUID, u)
}

// TemplateVar is the Chassis_Template_Var row of a chassis.
func (v *View) TemplateVar(chassis string) *nbdb.ChassisTemplateVar {
	for _, t := range v.TemplateVars {
		if t.Chassis == chassis {
			return t
		}
	}
	return nil
}

// SwitchOf is the switch holding a port (by the port's UUID).
func (v *View) SwitchOf(lspUUID string) *nbdb.LogicalSwitch { return v.portSwitch[lspUUID] }

// RouterOf is the router holding a router port (by its UUID).
func (v *View) RouterOf(lrpUUID string) *nbdb.LogicalRouter { return v.portRouter[lrpUUID] }

// GroupOf is the port group an ACL belongs to.
func (v *View) GroupOf(aclUUID string) *nbdb.PortGroup { return v.aclGroup[aclUUID] }

// ACLsByUUIDPrefix are the ACLs whose UUID starts with prefix: how
// northd's stage-hint (the first 8 hex digits) names an ACL.
func (v *View) ACLsByUUIDPrefix(prefix string) []*nbdb.ACL {
	var out []*nbdb.ACL
	for _, a := range v.ACLs {
		if prefix != "" && strings.HasPrefix(a.UUID, prefix) {
			out = append(out, a)
		}
	}
	return out
}

// GroupsWithPort are the port groups holding a switch port.
func (v *View) GroupsWithPort(lspUUID string) []*nbdb.PortGroup {
	var out []*nbdb.PortGroup
	for _, pg := range v.PortGroups {
		if slices.Contains(pg.Ports, lspUUID) {
			out = append(out, pg)
		}
	}
	return out
}

// SetsWithAddress are the address sets holding ip (as a plain address or
// inside a CIDR member).
func (v *View) SetsWithAddress(ip netip.Addr) []*nbdb.AddressSet {
	var out []*nbdb.AddressSet
	for _, as := range v.AddressSets {
		if slices.ContainsFunc(as.Addresses, func(a string) bool { return addressCovers(a, ip) }) {
			out = append(out, as)
		}
	}
	return out
}

func addressCovers(member string, ip netip.Addr) bool {
	if p, err := netip.ParsePrefix(member); err == nil {
		return p.Contains(ip)
	}
	a, err := netip.ParseAddr(member)
	return err == nil && a == ip
}

// ACLsOf are a port group's ACLs, in the order OVN evaluates them within a
// direction: highest priority first.
func (v *View) ACLsOf(pg *nbdb.PortGroup) []*nbdb.ACL {
	var out []*nbdb.ACL
	for _, u := range pg.ACLs {
		if a := v.ACLByUUID(u); a != nil {
			out = append(out, a)
		}
	}
	slices.SortStableFunc(out, func(a, b *nbdb.ACL) int {
		return cmp.Or(cmp.Compare(a.Direction, b.Direction), cmp.Compare(b.Priority, a.Priority), cmp.Compare(a.Match, b.Match))
	})
	return out
}
