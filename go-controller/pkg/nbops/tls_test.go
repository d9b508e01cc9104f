package nbops_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	"github.com/kovn-io/kovn/go-controller/pkg/testenv"
)

type pki struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// issue makes a certificate like ovs-pki's: named by CN only, no SANs,
// signed by parent (self-signed when parent is nil).
func issue(t *testing.T, cn string, parent *pki) *pki {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	signer, signerKey := tmpl, key
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	} else {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &pki{cert, key}
}

func (p *pki) write(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	keyDER, err := x509.MarshalECPrivateKey(p.key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+"-cert.pem"), filepath.Join(dir, name+"-key.pem")
	for file, block := range map[string]*pem.Block{
		certFile: {Type: "CERTIFICATE", Bytes: p.cert.Raw},
		keyFile:  {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile
}

// tlsFront serves the in-memory NB over mutual TLS on a loopback port, as
// ovsdb-server --remote=pssl would, and returns its ssl: endpoint.
func tlsFront(t *testing.T, unixAddr string, server, ca *pki) string {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{server.cert.Raw}, PrivateKey: server.key}},
		ClientCAs:    roots,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			back, err := net.Dial("unix", strings.TrimPrefix(unixAddr, "unix:"))
			if err != nil {
				conn.Close()
				continue
			}
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(back, conn); back.Close() }()
			go func() { defer wg.Done(); io.Copy(conn, back); conn.Close() }()
		}
	}()
	return "ssl:" + ln.Addr().String()
}

func TestNewClientTLS(t *testing.T) {
	dir := t.TempDir()
	ca := issue(t, "ovs-pki CA", nil)
	caFile, _ := ca.write(t, dir, "ca")
	cert, key := issue(t, "kovn-controller", ca).write(t, dir, "client")
	db := testenv.StartInMemoryNB(t)
	ep := tlsFront(t, db.Addr, issue(t, "ovnnb", ca), ca)

	// libovsdb's in-memory server has no _Server database to ask who
	// leads, so leader-only mode is turned off (the one thing Options is
	// for here).
	opts := nbops.ClientOptions{CertFile: cert, KeyFile: key, CAFile: caFile,
		Options: []client.Option{client.WithLeaderOnly(false)}}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	c, err := nbops.NewClient(ctx, []string{ep}, opts)
	if err != nil {
		t.Fatalf("NewClient over TLS: %v", err)
	}
	defer c.Close()
	ops, _, err := nbops.EnsureSwitch(c, &nbdb.LogicalSwitch{Name: "over-tls"})
	if err != nil {
		t.Fatal(err)
	}
	if err := nbops.NewTransactor(c, nil).Transact(ctx, "tls", ops); err != nil {
		t.Fatal(err)
	}
	if _, err := nbops.GetSwitch(c, "over-tls"); err != nil {
		t.Fatal(err)
	}

	// A server whose certificate does not chain to our CA is refused.
	otherCA := issue(t, "someone else's CA", nil)
	impostor := tlsFront(t, db.Addr, issue(t, "ovnnb", otherCA), ca)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel2()
	c2, err := nbops.NewClient(ctx2, []string{impostor}, opts)
	if err == nil {
		c2.Close()
		t.Fatal("connected to a server with a certificate from another CA")
	}
	if !strings.Contains(err.Error(), "unknown authority") {
		t.Fatalf("impostor refused for another reason: %v", err)
	}
}

func TestNewClientOptionErrors(t *testing.T) {
	ctx := context.Background()
	for name, tc := range map[string]struct {
		eps  []string
		opts nbops.ClientOptions
	}{
		"no endpoints":    {nil, nbops.ClientOptions{}},
		"ssl without TLS": {[]string{"ssl:127.0.0.1:6641"}, nbops.ClientOptions{}},
		"only a cert":     {[]string{"ssl:127.0.0.1:6641"}, nbops.ClientOptions{CertFile: "/nonexistent"}},
		"missing files":   {[]string{"ssl:127.0.0.1:6641"}, nbops.ClientOptions{CertFile: "/no", KeyFile: "/no", CAFile: "/no"}},
	} {
		if c, err := nbops.NewClient(ctx, tc.eps, tc.opts); err == nil {
			c.Close()
			t.Errorf("%s: NewClient succeeded", name)
		}
	}
}
