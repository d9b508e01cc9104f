package nbops_test

import (
	"context"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

func (e *env) meterBands(name string) (*nbdb.Meter, []*nbdb.MeterBand) {
	e.t.Helper()
	m := &nbdb.Meter{Name: name}
	if err := e.c.Get(context.Background(), m); err != nil {
		e.t.Fatal(err)
	}
	var bands []*nbdb.MeterBand
	for _, u := range m.Bands {
		b := &nbdb.MeterBand{UUID: u}
		if err := e.c.Get(context.Background(), b); err != nil {
			e.t.Fatal(err)
		}
		bands = append(bands, b)
	}
	return m, bands
}

func TestEnsureMeter(t *testing.T) {
	bothDBs(t, func(t *testing.T, e *env) {
		m := &nbdb.Meter{Name: "kovn-acl-logging", Unit: nbdb.MeterUnitPktps, Fair: ptr(true),
			ExternalIDs: own.IDs(own.KindPolicyInfra, "acl-logging", "")}
		bands := []*nbdb.MeterBand{{Action: nbdb.MeterBandActionDrop, Rate: 20}}
		ensure := func() ([]ovsdb.Operation, error) { return nbops.EnsureMeter(e.c, m, bands) }

		ops, err := ensure()
		wantOps(t, ops, err, "insert Meter_Band", "insert Meter")
		e.apply(ops, nil)
		e.converged(ensure)
		got, gotBands := e.meterBands(m.Name)
		if got.Unit != nbdb.MeterUnitPktps || got.Fair == nil || !*got.Fair || len(gotBands) != 1 || gotBands[0].Rate != 20 {
			t.Fatalf("meter %+v bands %+v", got, gotBands)
		}

		// A changed band is replaced; the old one is garbage-collected.
		bands[0].Rate = 50
		ops, err = ensure()
		wantOps(t, ops, err, "insert Meter_Band", "update Meter")
		e.apply(ops, nil)
		e.converged(ensure)
		if _, gotBands := e.meterBands(m.Name); len(gotBands) != 1 || gotBands[0].Rate != 50 {
			t.Fatalf("bands %+v, want one at rate 50", gotBands)
		}

		m.Fair = nil
		ops, err = ensure()
		wantOps(t, ops, err, "update Meter")
		e.apply(ops, nil)
		e.converged(ensure)

		if _, err := nbops.EnsureMeter(e.c, m, nil); err == nil {
			t.Error("meter without bands: no error")
		}
	})
}
