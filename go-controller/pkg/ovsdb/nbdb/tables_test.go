package nbdb_test

import (
	"encoding/json"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
)

// TestFullDatabaseModel guards the tables the controller relies on: a schema
// bump that drops or renames one must fail here, not deep in a controller.
func TestFullDatabaseModel(t *testing.T) {
	client, err := nbdb.FullDatabaseModel()
	if err != nil {
		t.Fatalf("FullDatabaseModel: %v", err)
	}
	if client.Name() != "OVN_Northbound" {
		t.Errorf("model name %q, want OVN_Northbound", client.Name())
	}
	// NewDatabaseModel checks every struct field against the schema, as a
	// client does on connect.
	dbModel, errs := model.NewDatabaseModel(nbdb.Schema(), client)
	if len(errs) > 0 {
		t.Fatalf("model does not match schema: %v", errs)
	}
	for _, table := range []string{
		nbdb.LogicalSwitchTable,
		nbdb.LogicalSwitchPortTable,
		nbdb.LogicalRouterTable,
		nbdb.LogicalRouterPortTable,
		nbdb.LoadBalancerTable,
		nbdb.LoadBalancerGroupTable,
		nbdb.PortGroupTable,
		nbdb.AddressSetTable,
		nbdb.ACLTable,
		nbdb.NATTable,
		nbdb.LogicalRouterStaticRouteTable,
		nbdb.MeterTable,
		nbdb.NBGlobalTable,
	} {
		if _, ok := dbModel.Types()[table]; !ok {
			t.Errorf("table %s missing from model", table)
		}
	}
	// testenv feeds the embedded file to ovsdb-tool, so it must be the schema
	// the models were generated from.
	var raw ovsdb.DatabaseSchema
	if err := json.Unmarshal(nbdb.SchemaJSON(), &raw); err != nil {
		t.Fatalf("embedded schema: %v", err)
	}
	if gen := nbdb.Schema(); raw.Name != gen.Name || raw.Version != gen.Version {
		t.Errorf("embedded schema is %s %s, models were generated from %s %s", raw.Name, raw.Version, gen.Name, gen.Version)
	}
}
