package nbops

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"

	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdbtls"
)

// ClientDBModel is the NB model every kovn client must be built with: the
// full generated model plus client-side indexes on name for the tables the
// schema does not index, which the builders look rows up by.
func ClientDBModel() (model.ClientDBModel, error) {
	m, err := nbdb.FullDatabaseModel()
	if err != nil {
		return m, err
	}
	byName := []model.ClientIndex{{Columns: []model.ColumnKey{{Column: "name"}}}}
	// Only the name index: libovsdb's Where(model) tries a table's indexes
	// in turn and answers from the first one that hits, so a second index
	// (say on external_ids) could answer a lookup by a missing name.
	m.SetIndexes(map[string][]model.ClientIndex{
		nbdb.LogicalSwitchTable: byName,
		nbdb.LogicalRouterTable: byName,
		nbdb.LoadBalancerTable:  byName,
	})
	return m, nil
}

// ClientOptions configures NewClient beyond its endpoints.
type ClientOptions struct {
	// CertFile, KeyFile and CAFile are the PEM files for ssl: endpoints:
	// the client's certificate and key, and the CA the server's
	// certificate must chain to. All three or none.
	CertFile, KeyFile, CAFile string
	// TLSConfig, if set, is used instead of the files.
	TLSConfig *tls.Config
	// Options are more libovsdb options, applied last, so they can also
	// override NewClient's reconnection policy.
	Options []client.Option
}

// NewClient connects to the NB database at endpoints (several for a RAFT
// cluster, tried in turn; only the leader is accepted) and monitors every
// table, so the cache is complete when it returns. It reconnects on its
// own for as long as the client lives.
func NewClient(ctx context.Context, endpoints []string, opts ClientOptions) (client.Client, error) {
	if len(endpoints) == 0 {
		return nil, fmt.Errorf("nbops: no NB endpoints")
	}
	tlsConfig, err := opts.tlsConfig()
	if err != nil {
		return nil, err
	}
	m, err := ClientDBModel()
	if err != nil {
		return nil, fmt.Errorf("nb model: %w", err)
	}
	all := make([]client.Option, 0, len(endpoints)+3+len(opts.Options))
	for _, ep := range endpoints {
		if strings.HasPrefix(ep, "ssl:") && tlsConfig == nil {
			return nil, fmt.Errorf("NB endpoint %s needs a certificate, key and CA", ep)
		}
		all = append(all, client.WithEndpoint(ep))
	}
	if tlsConfig != nil {
		all = append(all, client.WithTLSConfig(tlsConfig))
	}
	// A controller outlives NB restarts and RAFT leader changes, so it
	// retries for ever (the default backoff gives up after 15 minutes); on
	// reconnect libovsdb re-monitors and rebuilds the cache.
	//
	// Leader-only needs nothing more to follow a leader that dies (tested
	// in raft_test.go): the kernel closes the connection, and every
	// reconnect attempt asks each endpoint's _Server database whether it
	// leads, skipping followers, until the election is over. A leader that
	// steps down while alive is left through libovsdb's monitor of
	// _Server. Not covered: a leader that hangs with its sockets open
	// (stopped process, lost host); WithInactivityCheck would notice, but
	// in libovsdb 0.8.1 it cannot drop a connection while a transaction
	// waits on it, and a reconnect attempt spends its whole timeout on
	// the hung endpoint, which stays first in the list.
	retry := backoff.NewExponentialBackOff()
	retry.MaxElapsedTime = 0
	all = append(all, client.WithLeaderOnly(true), client.WithReconnect(10*time.Second, retry))
	all = append(all, opts.Options...)
	c, err := client.NewOVSDBClient(m, all...)
	if err != nil {
		return nil, fmt.Errorf("nb client: %w", err)
	}
	if err := c.Connect(ctx); err != nil {
		return nil, fmt.Errorf("connect to NB %v: %w", endpoints, err)
	}
	if _, err := c.MonitorAll(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("monitor NB %v: %w", endpoints, err)
	}
	return c, nil
}

func (o ClientOptions) tlsConfig() (*tls.Config, error) {
	if o.TLSConfig != nil {
		return o.TLSConfig, nil
	}
	return ovsdbtls.Files{PrivateKey: o.KeyFile, Certificate: o.CertFile, CACert: o.CAFile}.Config("NB")
}
