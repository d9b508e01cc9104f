package nbops

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
)

// Meter columns owned by EnsureMeter besides bands, which are compared by
// content: Meter_Band rows have no identity of their own.
func meterOwned() []fieldFunc[nbdb.Meter] {
	return []fieldFunc[nbdb.Meter]{
		func(m *nbdb.Meter) any { return &m.Unit },
		func(m *nbdb.Meter) any { return &m.Fair },
		func(m *nbdb.Meter) any { return &m.ExternalIDs },
	}
}

func meterKey() []fieldFunc[nbdb.Meter] {
	return []fieldFunc[nbdb.Meter]{func(m *nbdb.Meter) any { return &m.Name }}
}

func meterBandCols() []fieldFunc[nbdb.MeterBand] {
	return []fieldFunc[nbdb.MeterBand]{
		func(m *nbdb.MeterBand) any { return &m.Action },
		func(m *nbdb.MeterBand) any { return &m.Rate },
		func(m *nbdb.MeterBand) any { return &m.BurstSize },
		func(m *nbdb.MeterBand) any { return &m.ExternalIDs },
	}
}

// EnsureMeter makes the meter named m.Name exist with m's unit, fair and
// external_ids, and bands equal in content to bands (order does not
// matter). Bands that differ are replaced as a whole: new Meter_Band rows
// are inserted and the old ones, no longer referenced, are
// garbage-collected by OVSDB (Meter_Band is not a root table). No ops when
// the cache already matches.
func EnsureMeter(c client.Client, m *nbdb.Meter, bands []*nbdb.MeterBand) ([]ovsdb.Operation, error) {
	if m.Name == "" {
		return nil, errors.New("EnsureMeter: empty name")
	}
	if len(bands) == 0 {
		return nil, fmt.Errorf("meter %q: a meter needs at least one band", m.Name)
	}
	cur := &nbdb.Meter{Name: m.Name}
	err := c.Get(context.Background(), cur)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("meter %q: %w", m.Name, err)
	}
	exists := err == nil
	var ops []ovsdb.Operation
	var bandUUIDs []string
	if !exists || !bandsEqual(c, cur.Bands, bands) {
		for i, b := range bands {
			named := namedUUID("mb", fmt.Sprintf("%s|%d", m.Name, i))
			op, err := insertOp(c, nbdb.MeterBandTable, named, b, meterBandCols())
			if err != nil {
				return nil, err
			}
			ops = append(ops, op)
			bandUUIDs = append(bandUUIDs, named)
		}
	}
	if !exists {
		want := *m
		want.Bands = bandUUIDs
		op, err := insertOp(c, nbdb.MeterTable, namedUUID("meter", m.Name), &want, meterKey(), meterOwned(),
			[]fieldFunc[nbdb.Meter]{func(m *nbdb.Meter) any { return &m.Bands }})
		if err != nil {
			return nil, err
		}
		return append(ops, op), nil
	}
	up, err := updateOps(c, nbdb.MeterTable, cur.UUID, meterOwned(), cur, m)
	if err != nil {
		return nil, err
	}
	ops = append(ops, up...)
	if bandUUIDs != nil {
		upd := &nbdb.Meter{Bands: bandUUIDs}
		row, err := newRow(c, upd, &upd.Bands)
		if err != nil {
			return nil, err
		}
		ops = append(ops, ovsdb.Operation{Op: ovsdb.OperationUpdate, Table: nbdb.MeterTable, Row: row, Where: whereUUID(cur.UUID)})
	}
	return ops, nil
}

// bandsEqual compares the cached bands with the desired ones as multisets
// of their columns.
func bandsEqual(c client.Client, have []string, want []*nbdb.MeterBand) bool {
	if len(have) != len(want) {
		return false
	}
	key := func(b *nbdb.MeterBand) string {
		ids := slices.Sorted(maps.Keys(b.ExternalIDs))
		s := fmt.Sprintf("%s|%d|%d", b.Action, b.Rate, b.BurstSize)
		for _, k := range ids {
			s += "|" + k + "=" + b.ExternalIDs[k]
		}
		return s
	}
	var a, b []string
	for _, u := range have {
		mb := cached[nbdb.MeterBand](c, nbdb.MeterBandTable, u)
		if mb == nil {
			return false
		}
		a = append(a, key(mb))
	}
	for _, mb := range want {
		b = append(b, key(mb))
	}
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
