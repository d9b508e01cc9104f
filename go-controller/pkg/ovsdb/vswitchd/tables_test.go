package vswitchd_test

import (
	"encoding/json"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/vswitchd"
)

// TestFullDatabaseModel guards the tables the controller relies on: a schema
// bump that drops or renames one must fail here, not deep in a controller.
func TestFullDatabaseModel(t *testing.T) {
	client, err := vswitchd.FullDatabaseModel()
	if err != nil {
		t.Fatalf("FullDatabaseModel: %v", err)
	}
	if client.Name() != "Open_vSwitch" {
		t.Errorf("model name %q, want Open_vSwitch", client.Name())
	}
	// NewDatabaseModel checks every struct field against the schema, as a
	// client does on connect.
	dbModel, errs := model.NewDatabaseModel(vswitchd.Schema(), client)
	if len(errs) > 0 {
		t.Fatalf("model does not match schema: %v", errs)
	}
	for _, table := range []string{
		vswitchd.OpenvSwitchTable,
		vswitchd.BridgeTable,
		vswitchd.PortTable,
		vswitchd.InterfaceTable,
	} {
		if _, ok := dbModel.Types()[table]; !ok {
			t.Errorf("table %s missing from model", table)
		}
	}
	// testenv feeds the embedded file to ovsdb-tool, so it must be the schema
	// the models were generated from.
	var raw ovsdb.DatabaseSchema
	if err := json.Unmarshal(vswitchd.SchemaJSON(), &raw); err != nil {
		t.Fatalf("embedded schema: %v", err)
	}
	if gen := vswitchd.Schema(); raw.Name != gen.Name || raw.Version != gen.Version {
		t.Errorf("embedded schema is %s %s, models were generated from %s %s", raw.Name, raw.Version, gen.Name, gen.Version)
	}
}
