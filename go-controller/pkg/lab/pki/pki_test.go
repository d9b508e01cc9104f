package pki

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"
)

func testRequest(dir string) Request {
	return Request{
		Dir:            dir,
		APIServerIPs:   []net.IP{net.ParseIP("172.18.0.2"), net.ParseIP("10.96.0.1"), net.ParseIP("127.0.0.1")},
		APIServerNames: []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "localhost"},
		Nodes:          []string{"node-a", "node-b"},
		ExtraUsers:     []User{{Name: "kovn-controller"}, {Name: "alice", Groups: []string{"devs", "ops"}}},
	}
}

func mustEnsure(t *testing.T, req Request) *Bundle {
	t.Helper()
	b, err := Ensure(req)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	return b
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	der, err := readPEM(path, "CERTIFICATE")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func verify(t *testing.T, b *Bundle, path string, usage x509.ExtKeyUsage, name string) error {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(readCert(t, b.CACert))
	_, err := readCert(t, path).Verify(x509.VerifyOptions{
		Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage}, DNSName: name,
	})
	return err
}

// snapshot maps every file name in dir to its contents.
func snapshot(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = data
	}
	return files
}

// changed lists the files whose contents differ, or that exist in only one.
func changed(before, after map[string][]byte) []string {
	var out []string
	for name, data := range after {
		if old, ok := before[name]; !ok || string(old) != string(data) {
			out = append(out, name)
		}
	}
	for name := range before {
		if _, ok := after[name]; !ok {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func TestEnsureIssuesVerifiableMaterial(t *testing.T) {
	req := testRequest(t.TempDir())
	b := mustEnsure(t, req)

	ca := readCert(t, b.CACert)
	if !ca.IsCA || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA: IsCA=%v KeyUsage=%v", ca.IsCA, ca.KeyUsage)
	}
	if d := time.Until(ca.NotAfter); d < 364*24*time.Hour || d > 366*24*time.Hour {
		t.Errorf("CA valid for %v more, want about a year", d)
	}
	if d := time.Since(ca.NotBefore); d < 59*time.Minute || d > 61*time.Minute {
		t.Errorf("CA NotBefore %v ago, want an hour", d)
	}

	api := readCert(t, b.APIServerCert)
	if !slices.Equal(api.DNSNames, req.APIServerNames) {
		t.Errorf("apiserver DNS SANs %v, want %v", api.DNSNames, req.APIServerNames)
	}
	if !sameIPs(api.IPAddresses, req.APIServerIPs) || len(api.IPAddresses) != len(req.APIServerIPs) {
		t.Errorf("apiserver IP SANs %v, want %v", api.IPAddresses, req.APIServerIPs)
	}
	for _, name := range req.APIServerNames {
		if err := verify(t, b, b.APIServerCert, x509.ExtKeyUsageServerAuth, name); err != nil {
			t.Errorf("apiserver cert for %s: %v", name, err)
		}
	}
	for _, ip := range req.APIServerIPs {
		if err := verify(t, b, b.APIServerCert, x509.ExtKeyUsageServerAuth, ip.String()); err != nil {
			t.Errorf("apiserver cert for %s: %v", ip, err)
		}
	}
	if err := verify(t, b, b.APIServerCert, x509.ExtKeyUsageClientAuth, ""); err == nil {
		t.Error("apiserver cert verified for client auth")
	}

	want := map[string][]string{
		Admin:                     {"kubernetes-admin", "system:masters"},
		ControllerManager:         {"system:kube-controller-manager"},
		Scheduler:                 {"system:kube-scheduler"},
		APIServerKubeletClient:    {"kube-apiserver-kubelet-client", "system:masters"},
		NodeID("node-a"):          {"system:node:node-a", "system:nodes"},
		NodeID("node-b"):          {"system:node:node-b", "system:nodes"},
		UserID("kovn-controller"): {"kovn-controller"},
		UserID("alice"):           {"alice", "devs", "ops"},
	}
	if len(b.Clients) != len(want) {
		t.Errorf("got %d clients, want %d: %v", len(b.Clients), len(want), b.Clients)
	}
	for id, subject := range want {
		cc, ok := b.Clients[id]
		if !ok {
			t.Errorf("no client %q", id)
			continue
		}
		cert := readCert(t, cc.Cert)
		// DER sorts a multi-valued RDN, so groups come back in any order.
		if cert.Subject.CommonName != subject[0] || !sameStrings(cert.Subject.Organization, subject[1:]) ||
			len(cert.Subject.Organization) != len(subject)-1 {
			t.Errorf("%s: subject %s, want CN=%s O=%v", id, cert.Subject, subject[0], subject[1:])
		}
		if err := verify(t, b, cc.Cert, x509.ExtKeyUsageClientAuth, ""); err != nil {
			t.Errorf("%s: %v", id, err)
		}
		if err := verify(t, b, cc.Cert, x509.ExtKeyUsageServerAuth, ""); err == nil {
			t.Errorf("%s: client cert verified for server auth", id)
		}
		if _, err := tls.LoadX509KeyPair(cc.Cert, cc.Key); err != nil {
			t.Errorf("%s: %v", id, err)
		}
		checkModes(t, cc.Cert, cc.Key)
	}
	checkModes(t, b.CACert, b.CAKey)
	checkModes(t, b.APIServerCert, b.APIServerKey)
	checkModes(t, b.ServiceAccountPub, b.ServiceAccountKey)

	// The service-account pair must sign and verify as one key.
	key, err := loadKey(b.ServiceAccountKey)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := loadPublicKey(b.ServiceAccountPub)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("token"))
	sig, err := key.Sign(rand.Reader, digest[:], nil)
	if err != nil {
		t.Fatal(err)
	}
	if ecPub, ok := pub.(*ecdsa.PublicKey); !ok || !ecdsa.VerifyASN1(ecPub, digest[:], sig) {
		t.Errorf("service-account public key %T does not verify the private key's signature", pub)
	}
}

func checkModes(t *testing.T, cert, key string) {
	t.Helper()
	for path, mode := range map[string]os.FileMode{cert: certMode, key: keyMode} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Error(err)
		} else if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), mode)
		}
	}
}

func TestEnsureIsIdempotent(t *testing.T) {
	req := testRequest(t.TempDir())
	b1 := mustEnsure(t, req)
	before := snapshot(t, req.Dir)

	// Reordering the SANs asks for the same certificate.
	slices.Reverse(req.APIServerIPs)
	slices.Reverse(req.APIServerNames)
	b2 := mustEnsure(t, req)
	if diff := changed(before, snapshot(t, req.Dir)); len(diff) != 0 {
		t.Errorf("second Ensure changed %v", diff)
	}
	if !reflect.DeepEqual(b1, b2) {
		t.Errorf("bundles differ:\n%+v\n%+v", b1, b2)
	}

	// A new node adds its pair and touches nothing else.
	req.Nodes = append(req.Nodes, "node-c")
	mustEnsure(t, req)
	if diff := changed(before, snapshot(t, req.Dir)); !slices.Equal(diff, []string{"node-node-c.crt", "node-node-c.key"}) {
		t.Errorf("adding a node changed %v", diff)
	}
}

func TestEnsureSANChangeRegeneratesOnlyAPIServer(t *testing.T) {
	req := testRequest(t.TempDir())
	mustEnsure(t, req)
	before := snapshot(t, req.Dir)

	req.APIServerIPs = append(req.APIServerIPs, net.ParseIP("172.18.0.3"))
	b := mustEnsure(t, req)
	if diff := changed(before, snapshot(t, req.Dir)); !slices.Equal(diff, []string{"apiserver.crt", "apiserver.key"}) {
		t.Errorf("SAN change regenerated %v", diff)
	}
	if err := verify(t, b, b.APIServerCert, x509.ExtKeyUsageServerAuth, "172.18.0.3"); err != nil {
		t.Errorf("new SAN: %v", err)
	}
}
