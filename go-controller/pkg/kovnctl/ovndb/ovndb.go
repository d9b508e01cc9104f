// Package ovndb connects kovnctl to the OVN databases. Unlike the
// controller's nbops.NewClient, which monitors every table for as long as
// it runs, a command here monitors only the tables (and columns) it reads,
// once, with a deadline: it is a snapshot, and on a large cluster the
// tables it does not need (logical flows, MAC bindings) are most of the
// database.
package ovndb

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"

	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/sbdb"
)

// Table is one table to monitor; Fields, if any, are pointers into Model
// naming the only columns to fetch.
type Table struct {
	Model  model.Model
	Fields []any
}

// T is a Table of all columns.
func T(m model.Model, fields ...any) Table { return Table{Model: m, Fields: fields} }

// Endpoints splits an OVSDB address list the way OVN tools accept it:
// "tcp:10.0.0.1:6641,tcp:10.0.0.2:6641" (one per RAFT member).
func Endpoints(addr string) []string {
	var out []string
	for _, a := range strings.Split(addr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// Connect dials addr, and monitors tables (none: just connected, for
// one-shot transactions). ctx bounds both; a deadline in it is how the
// caller says how long an unreachable database may take to fail.
// tlsCfg, nil for tcp: and unix: addresses, is required for ssl: ones.
func Connect(ctx context.Context, addr string, tlsCfg *tls.Config, dbModel model.ClientDBModel, tables ...Table) (client.Client, error) {
	eps := Endpoints(addr)
	if len(eps) == 0 {
		return nil, fmt.Errorf("no %s address given", dbModel.Name())
	}
	opts := []client.Option{
		// Only the RAFT leader has every committed change; a follower can
		// lag and show rows that are already gone.
		client.WithLeaderOnly(true),
	}
	for _, ep := range eps {
		if strings.HasPrefix(ep, "ssl:") && tlsCfg == nil {
			return nil, fmt.Errorf("%s: an ssl: address needs --private-key, --certificate and --ca-cert", ep)
		}
		opts = append(opts, client.WithEndpoint(ep))
	}
	if tlsCfg != nil {
		opts = append(opts, client.WithTLSConfig(tlsCfg))
	}
	c, err := client.NewOVSDBClient(dbModel, opts...)
	if err != nil {
		return nil, fmt.Errorf("%s client: %w", dbModel.Name(), err)
	}
	if err := c.Connect(ctx); err != nil {
		return nil, fmt.Errorf("connect to %s at %s: %w", dbModel.Name(), addr, err)
	}
	if len(tables) == 0 {
		return c, nil
	}
	var mopts []client.MonitorOption
	for _, t := range tables {
		mopts = append(mopts, client.WithTable(t.Model, t.Fields...))
	}
	if _, err := c.Monitor(ctx, c.NewMonitor(mopts...)); err != nil {
		c.Close()
		return nil, fmt.Errorf("monitor %s at %s: %w", dbModel.Name(), addr, err)
	}
	return c, nil
}

// NB connects to the northbound database.
func NB(ctx context.Context, addr string, tlsCfg *tls.Config, tables ...Table) (client.Client, error) {
	m, err := nbdb.FullDatabaseModel()
	if err != nil {
		return nil, err
	}
	return Connect(ctx, addr, tlsCfg, m, tables...)
}

// SB connects to the southbound database.
func SB(ctx context.Context, addr string, tlsCfg *tls.Config, tables ...Table) (client.Client, error) {
	m, err := sbdb.FullDatabaseModel()
	if err != nil {
		return nil, err
	}
	return Connect(ctx, addr, tlsCfg, m, tables...)
}

// Rows returns copies of every cached row of table, nil when the table is
// not monitored. Copies: the monitor may still update the cache while a
// command reads.
func Rows[T any](c client.Client, table string) []*T {
	rc := c.Cache().Table(table)
	if rc == nil {
		return nil
	}
	var out []*T
	for _, m := range rc.Rows() {
		if r, ok := m.(*T); ok {
			out = append(out, r)
		}
	}
	return out
}
