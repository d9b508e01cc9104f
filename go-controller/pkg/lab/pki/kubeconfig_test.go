package pki

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// startAPIServer serves TLS with the apiserver certificate, demands a client
// certificate from the lab CA, and answers with the client's subject.
func startAPIServer(t *testing.T, b *Bundle) *httptest.Server {
	t.Helper()
	serving, err := tls.LoadX509KeyPair(b.APIServerCert, b.APIServerKey)
	if err != nil {
		t.Fatal(err)
	}
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(readCert(t, b.CACert))
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer := r.TLS.PeerCertificates[0].Subject
		_, _ = io.WriteString(w, "CN="+peer.CommonName+" O="+strings.Join(peer.Organization, ","))
	}))
	// Rejected handshakes are expected in the tests; keep them out of the log.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{serving},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clientCAs,
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// get fetches url with client and returns the body.
func get(t *testing.T, client *http.Client, url string) (string, error) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

// readKubeconfig decodes path generically, so the test checks the key names
// of the kubeconfig schema rather than the package's own struct tags.
func readKubeconfig(t *testing.T, path string) (server string, ca, cert, key []byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var kc struct {
		APIVersion     string `json:"apiVersion"`
		Kind           string `json:"kind"`
		CurrentContext string `json:"current-context"`
		Clusters       []struct {
			Name    string
			Cluster map[string]string
		}
		Users []struct {
			Name string
			User map[string]string
		}
		Contexts []struct {
			Name    string
			Context map[string]string
		}
	}
	if err := yaml.UnmarshalStrict(data, &kc); err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	if kc.APIVersion != "v1" || kc.Kind != "Config" || kc.CurrentContext != KubeconfigName ||
		len(kc.Clusters) != 1 || len(kc.Users) != 1 || len(kc.Contexts) != 1 ||
		kc.Clusters[0].Name != KubeconfigName || kc.Users[0].Name != KubeconfigName || kc.Contexts[0].Name != KubeconfigName ||
		kc.Contexts[0].Context["cluster"] != KubeconfigName || kc.Contexts[0].Context["user"] != KubeconfigName {
		t.Fatalf("unexpected kubeconfig layout:\n%s", data)
	}
	decode := func(s string) []byte {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		return b
	}
	return kc.Clusters[0].Cluster["server"], decode(kc.Clusters[0].Cluster["certificate-authority-data"]),
		decode(kc.Users[0].User["client-certificate-data"]), decode(kc.Users[0].User["client-key-data"])
}

func TestWriteKubeconfigEmbedsFiles(t *testing.T) {
	b := mustEnsure(t, testRequest(t.TempDir()))
	path := filepath.Join(t.TempDir(), "admin.kubeconfig")
	if err := WriteKubeconfig(path, "https://172.18.0.2:6443", b.CACert, b.Clients[Admin]); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil {
		t.Fatal(err)
	} else if fi.Mode().Perm() != keyMode {
		t.Errorf("kubeconfig mode %v, want %v", fi.Mode().Perm(), os.FileMode(keyMode))
	}
	server, ca, cert, key := readKubeconfig(t, path)
	if server != "https://172.18.0.2:6443" {
		t.Errorf("server %q", server)
	}
	for file, got := range map[string][]byte{b.CACert: ca, b.Clients[Admin].Cert: cert, b.Clients[Admin].Key: key} {
		if want, _ := os.ReadFile(file); string(got) != string(want) {
			t.Errorf("embedded %s differs from the file", filepath.Base(file))
		}
	}
}

func TestWriteKubeconfigRejectsBadInput(t *testing.T) {
	b := mustEnsure(t, testRequest(t.TempDir()))
	path := filepath.Join(t.TempDir(), "kubeconfig")
	mismatched := ClientCert{Cert: b.Clients[Admin].Cert, Key: b.Clients[Scheduler].Key}
	if err := WriteKubeconfig(path, "https://x", b.CACert, mismatched); err == nil {
		t.Error("accepted a key that does not match the certificate")
	}
	if err := WriteKubeconfig(path, "https://x", b.CAKey, b.Clients[Admin]); err == nil {
		t.Error("accepted a CA file without a certificate")
	}
	if err := WriteKubeconfig(path, "", b.CACert, b.Clients[Admin]); err == nil {
		t.Error("accepted an empty server")
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("rejected input left %s behind: %v", path, err)
	}
}

// clientFromKubeconfig builds the TLS client a kubeconfig describes, the way
// client-go does: trust only the embedded CA, present the embedded pair.
func clientFromKubeconfig(t *testing.T, path string) *http.Client {
	t.Helper()
	_, ca, cert, key := readKubeconfig(t, path)
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca) {
		t.Fatal("no CA in kubeconfig")
	}
	pair, err := tls.X509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: roots, Certificates: []tls.Certificate{pair},
	}}}
}

func TestTLSHandshakeWithKubeconfig(t *testing.T) {
	b := mustEnsure(t, testRequest(t.TempDir()))
	srv := startAPIServer(t, b)
	dir := t.TempDir()

	for id, want := range map[string]string{
		Admin:            "CN=kubernetes-admin O=system:masters",
		NodeID("node-b"): "CN=system:node:node-b O=system:nodes",
	} {
		path := filepath.Join(dir, id+".kubeconfig")
		// srv.URL is https://127.0.0.1:port, so this also checks the IP SAN.
		if err := WriteKubeconfig(path, srv.URL, b.CACert, b.Clients[id]); err != nil {
			t.Fatal(err)
		}
		got, err := get(t, clientFromKubeconfig(t, path), srv.URL)
		if err != nil || got != want {
			t.Errorf("%s: server saw %q (%v), want %q", id, got, err, want)
		}
	}

	// A certificate from another CA must not get in, nor must no certificate.
	other := mustEnsure(t, testRequest(t.TempDir()))
	path := filepath.Join(dir, "other.kubeconfig")
	if err := WriteKubeconfig(path, srv.URL, b.CACert, other.Clients[Admin]); err != nil {
		t.Fatal(err)
	}
	if got, err := get(t, clientFromKubeconfig(t, path), srv.URL); err == nil {
		t.Errorf("foreign client certificate accepted, server saw %q", got)
	}
	anonymous := clientFromKubeconfig(t, path)
	anonymous.Transport.(*http.Transport).TLSClientConfig.Certificates = nil
	if got, err := get(t, anonymous, srv.URL); err == nil {
		t.Errorf("client without certificate accepted, server saw %q", got)
	}
}
