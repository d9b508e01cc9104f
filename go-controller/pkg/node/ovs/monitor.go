package ovs

import (
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"

	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/vswitchd"
)

// clientModel holds only the tables the agent touches; the cache keeps no
// rows (and libovsdb checks no columns) of the other fourteen.
func clientModel() (model.ClientDBModel, error) {
	return model.NewClientDBModel(vswitchd.OpenvSwitchTable, map[string]model.Model{
		vswitchd.OpenvSwitchTable: &vswitchd.OpenvSwitch{},
		vswitchd.BridgeTable:      &vswitchd.Bridge{},
		vswitchd.PortTable:        &vswitchd.Port{},
		vswitchd.InterfaceTable:   &vswitchd.Interface{},
		vswitchd.DatapathTable:    &vswitchd.Datapath{},
	})
}

// newMonitor asks for the columns the agent reads and no more: with every
// column, ovs-vswitchd's statistics refresh (every 5 s, every interface)
// and status columns would stream to the agent for nothing. Columns not
// listed stay zero in cached rows, so nothing may read them.
func newMonitor(c client.Client) *client.Monitor {
	ovs := &vswitchd.OpenvSwitch{}
	br := &vswitchd.Bridge{}
	port := &vswitchd.Port{}
	iface := &vswitchd.Interface{}
	dp := &vswitchd.Datapath{}
	return c.NewMonitor(
		client.WithTable(ovs, &ovs.Bridges, &ovs.ExternalIDs, &ovs.Datapaths),
		client.WithTable(dp, &dp.Capabilities),
		client.WithTable(br, &br.Name, &br.Ports, &br.DatapathType, &br.OtherConfig, &br.ExternalIDs),
		client.WithTable(port, &port.Name, &port.Interfaces, &port.ExternalIDs),
		client.WithTable(iface, &iface.Name, &iface.Type, &iface.ExternalIDs, &iface.MAC,
			&iface.Ofport, &iface.Error),
	)
}
