package pki

// These checks use client-go's own kubeconfig loader, the one every
// component of the lab reads our files with.

import (
	"os"
	"path/filepath"
	"testing"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

func TestKubeconfigLoadsWithClientcmd(t *testing.T) {
	b := mustEnsure(t, testRequest(t.TempDir()))
	srv := startAPIServer(t, b)
	path := filepath.Join(t.TempDir(), "admin.kubeconfig")
	if err := WriteKubeconfig(path, srv.URL, b.CACert, b.Clients[Admin]); err != nil {
		t.Fatal(err)
	}

	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CurrentContext != KubeconfigName {
		t.Errorf("current context %q", cfg.CurrentContext)
	}
	if c := cfg.Clusters[KubeconfigName]; c == nil || c.Server != srv.URL {
		t.Errorf("cluster %+v, want server %s", c, srv.URL)
	}
	if u := cfg.AuthInfos[KubeconfigName]; u == nil || len(u.ClientCertificateData) == 0 || len(u.ClientKeyData) == 0 {
		t.Errorf("user %+v lacks embedded credentials", u)
	}

	rc, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	if rc.Host != srv.URL {
		t.Errorf("host %q, want %q", rc.Host, srv.URL)
	}
	for file, got := range map[string][]byte{
		b.CACert: rc.TLSClientConfig.CAData, b.Clients[Admin].Cert: rc.TLSClientConfig.CertData, b.Clients[Admin].Key: rc.TLSClientConfig.KeyData,
	} {
		if want, err := os.ReadFile(file); err != nil || string(got) != string(want) {
			t.Errorf("rest.Config data for %s differs from the file", filepath.Base(file))
		}
	}

	client, err := rest.HTTPClientFor(rc)
	if err != nil {
		t.Fatal(err)
	}
	got, err := get(t, client, srv.URL)
	if want := "CN=kubernetes-admin O=system:masters"; err != nil || got != want {
		t.Errorf("server saw %q (%v), want %q", got, err, want)
	}
}
