package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"sigs.k8s.io/yaml"
)

// KubeconfigName is the name of the single cluster, user and context in a
// kubeconfig written by WriteKubeconfig.
const KubeconfigName = "kovn-lab"

// The kubeconfig v1 schema, limited to the fields WriteKubeconfig sets. It is
// spelled out here rather than taken from client-go's clientcmd so that this
// package needs only sigs.k8s.io/yaml; []byte fields marshal as base64, as
// the *-data fields require.
type kubeconfig struct {
	APIVersion     string         `json:"apiVersion"`
	Kind           string         `json:"kind"`
	Clusters       []namedCluster `json:"clusters"`
	Users          []namedUser    `json:"users"`
	Contexts       []namedContext `json:"contexts"`
	CurrentContext string         `json:"current-context"`
}

type namedCluster struct {
	Name    string      `json:"name"`
	Cluster clusterInfo `json:"cluster"`
}

type clusterInfo struct {
	Server                   string `json:"server"`
	CertificateAuthorityData []byte `json:"certificate-authority-data"`
}

type namedUser struct {
	Name string   `json:"name"`
	User authInfo `json:"user"`
}

type authInfo struct {
	ClientCertificateData []byte `json:"client-certificate-data"`
	ClientKeyData         []byte `json:"client-key-data"`
}

type namedContext struct {
	Name    string      `json:"name"`
	Context contextInfo `json:"context"`
}

type contextInfo struct {
	Cluster string `json:"cluster"`
	User    string `json:"user"`
}

// WriteKubeconfig writes to path a kubeconfig for server (e.g.
// "https://172.18.0.2:6443") that embeds the CA certificate at caCert and the
// client's certificate and key, so the file stays usable wherever it is
// copied. It is written atomically with mode 0600 since it holds a key.
func WriteKubeconfig(path, server, caCert string, client ClientCert) error {
	if server == "" {
		return errors.New("pki: kubeconfig server is empty")
	}
	ca, err := os.ReadFile(caCert)
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(ca) {
		return fmt.Errorf("pki: %s holds no PEM certificate", caCert)
	}
	cert, err := os.ReadFile(client.Cert)
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	key, err := os.ReadFile(client.Key)
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	// Failing here beats a kubeconfig that every client rejects later.
	if _, err := tls.X509KeyPair(cert, key); err != nil {
		return fmt.Errorf("pki: %s and %s: %w", client.Cert, client.Key, err)
	}
	data, err := yaml.Marshal(kubeconfig{
		APIVersion: "v1",
		Kind:       "Config",
		Clusters: []namedCluster{{Name: KubeconfigName, Cluster: clusterInfo{
			Server: server, CertificateAuthorityData: ca,
		}}},
		Users: []namedUser{{Name: KubeconfigName, User: authInfo{
			ClientCertificateData: cert, ClientKeyData: key,
		}}},
		Contexts: []namedContext{{Name: KubeconfigName, Context: contextInfo{
			Cluster: KubeconfigName, User: KubeconfigName,
		}}},
		CurrentContext: KubeconfigName,
	})
	if err != nil {
		return fmt.Errorf("pki: marshal kubeconfig: %w", err)
	}
	return writeFileAtomic(path, data, keyMode)
}
