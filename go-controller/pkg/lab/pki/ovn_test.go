package pki

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"testing"
)

// TestEnsureOVNMutualTLS checks what ovsdb-server and its clients need:
// the central certificate serves and, as a RAFT peer, connects; client
// certificates are accepted; the OVN CA is not the Kubernetes CA.
func TestEnsureOVNMutualTLS(t *testing.T) {
	dir := t.TempDir()
	req := OVNRequest{Dir: dir + "/ovn", ServerIPs: []net.IP{net.ParseIP("127.0.0.1")}, Clients: []string{"kovn-controller", "ovn-controller-node1"}}
	b, err := EnsureOVN(req)
	if err != nil {
		t.Fatal(err)
	}
	k8s := mustEnsure(t, testRequest(dir+"/k8s"))
	if readCert(t, b.CACert).Equal(readCert(t, k8s.CACert)) {
		t.Fatal("OVN and Kubernetes share a CA")
	}
	handshake := func(server, client ClientCert) error {
		pool := x509.NewCertPool()
		ca, _ := os.ReadFile(b.CACert)
		pool.AppendCertsFromPEM(ca)
		sc, err := tls.LoadX509KeyPair(server.Cert, server.Key)
		if err != nil {
			return err
		}
		cc, err := tls.LoadX509KeyPair(client.Cert, client.Key)
		if err != nil {
			return err
		}
		ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{sc}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert})
		if err != nil {
			return err
		}
		defer ln.Close()
		go func() {
			if c, err := ln.Accept(); err == nil {
				_ = c.(*tls.Conn).Handshake()
				c.Close()
			}
		}()
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cc}})
		if err != nil {
			return err
		}
		defer c.Close()
		// The server's verdict on the client certificate arrives with the
		// first read in TLS 1.3.
		_, err = c.Read(make([]byte, 1))
		if err != nil && err.Error() != "EOF" {
			return err
		}
		return nil
	}
	if err := handshake(b.Server, b.Clients["kovn-controller"]); err != nil {
		t.Fatalf("client to central: %v", err)
	}
	if err := handshake(b.Server, b.Server); err != nil {
		t.Fatalf("RAFT member to member: %v", err)
	}
	if err := handshake(b.Server, k8s.Clients[Admin]); err == nil {
		t.Fatal("a Kubernetes admin certificate was accepted by OVN central")
	}
	// A second call keeps every file.
	before, _ := os.ReadFile(b.Server.Cert)
	if _, err := EnsureOVN(req); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(b.Server.Cert); string(after) != string(before) {
		t.Fatal("EnsureOVN regenerated a valid certificate")
	}
}
