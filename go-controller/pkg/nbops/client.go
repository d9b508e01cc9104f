package nbops

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"

	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
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
	if o.CertFile == "" && o.KeyFile == "" && o.CAFile == "" {
		return nil, nil
	}
	if o.CertFile == "" || o.KeyFile == "" || o.CAFile == "" {
		return nil, fmt.Errorf("NB TLS needs a certificate, a key and a CA file, not only some of them")
	}
	cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("NB client certificate: %w", err)
	}
	caPEM, err := os.ReadFile(o.CAFile)
	if err != nil {
		return nil, fmt.Errorf("NB CA: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("NB CA %s: no PEM certificate", o.CAFile)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		// OVN's PKI (ovs-pki) issues server certificates that do not name
		// the server, and OVS itself checks only that the peer chains to
		// the CA. Do the same: skip the name check, never the chain.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("NB server sent no certificate")
			}
			inter := x509.NewCertPool()
			for _, ic := range cs.PeerCertificates[1:] {
				inter.AddCert(ic)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
			return err
		},
	}, nil
}
