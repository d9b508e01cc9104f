// Package ovsdbtls builds the TLS client configuration kovn's programs use
// for ssl: OVSDB addresses (OVN NB and SB), from the same three PEM files
// OVN's own tools take (-p/--private-key, -c/--certificate, -C/--ca-cert).
package ovsdbtls

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// Files names a client's key, its certificate and the CA that signed the
// servers' certificates.
type Files struct {
	PrivateKey, Certificate, CACert string
}

// Empty reports whether no file is named: the connection is not SSL.
func (f Files) Empty() bool { return f.PrivateKey == "" && f.Certificate == "" && f.CACert == "" }

// CtlArgs are the same files as options of ovn-nbctl, ovn-sbctl and
// ovn-trace.
func (f Files) CtlArgs() []string {
	if f.Empty() {
		return nil
	}
	return []string{"--private-key=" + f.PrivateKey, "--certificate=" + f.Certificate, "--ca-cert=" + f.CACert}
}

// Config loads the files; nil, nil when none is named. what names the
// database in errors ("NB", "SB").
func (f Files) Config(what string) (*tls.Config, error) {
	if f.Empty() {
		return nil, nil
	}
	if f.PrivateKey == "" || f.Certificate == "" || f.CACert == "" {
		return nil, fmt.Errorf("%s TLS needs a certificate, a key and a CA file, not only some of them", what)
	}
	cert, err := tls.LoadX509KeyPair(f.Certificate, f.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("%s client certificate: %w", what, err)
	}
	caPEM, err := os.ReadFile(f.CACert)
	if err != nil {
		return nil, fmt.Errorf("%s CA: %w", what, err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("%s CA %s: no PEM certificate", what, f.CACert)
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
				return fmt.Errorf("%s server sent no certificate", what)
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
