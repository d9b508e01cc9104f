// Package pki generates the certificates and keys with which the lab's
// Kubernetes control plane, kubelets and controllers authenticate to each
// other. Everything lives in one directory, and Ensure keeps whatever is still
// valid for the request, so restarting the lab does not invalidate
// kubeconfigs or service-account tokens that components already hold.
package pki

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Keys of Bundle.Clients for the fixed control-plane identities; nodes and
// extra users are keyed by NodeID and UserID.
const (
	Admin                  = "admin"
	ControllerManager      = "controller-manager"
	Scheduler              = "scheduler"
	APIServerKubeletClient = "apiserver-kubelet-client"
)

// NodeID is the Bundle.Clients key of a node's kubelet client certificate.
func NodeID(node string) string { return "node:" + node }

// UserID is the Bundle.Clients key of an extra user's client certificate.
func UserID(user string) string { return "user:" + user }

// Request describes the material Ensure must provide.
type Request struct {
	// Dir is where all files are written; it is created if missing.
	Dir string
	// APIServerIPs and APIServerNames are the IP and DNS SANs of the
	// kube-apiserver serving certificate. Order does not matter.
	APIServerIPs   []net.IP
	APIServerNames []string
	// Nodes each get a kubelet client certificate for the Node authorizer.
	Nodes []string
	// ExtraUsers each get a client certificate with their name and groups.
	ExtraUsers []User
}

// User is a client identity: the certificate CN is the user name and the O
// attributes are the groups, as kube-apiserver's x509 authenticator reads them.
type User struct {
	Name   string
	Groups []string
}

// ClientCert holds the paths of a PEM certificate and its PEM private key.
type ClientCert struct {
	Cert, Key string
}

// Bundle holds the paths of everything Ensure wrote or kept.
type Bundle struct {
	CACert, CAKey               string
	APIServerCert, APIServerKey string
	// ServiceAccountKey is the PEM private key for kube-apiserver
	// --service-account-signing-key-file and kube-controller-manager
	// --service-account-private-key-file; ServiceAccountPub is the PEM public
	// key for kube-apiserver --service-account-key-file.
	ServiceAccountKey, ServiceAccountPub string
	// Clients is keyed by Admin, ControllerManager, Scheduler,
	// APIServerKubeletClient, NodeID(node) and UserID(user).
	Clients map[string]ClientCert
}

// Ensure makes Dir hold a CA, a kube-apiserver serving certificate, a
// service-account key pair and a client certificate for every identity in
// req. Files that still parse, are not about to expire, are signed by the
// current CA and match the request are kept byte for byte; anything else is
// regenerated. A new CA therefore regenerates every certificate.
func Ensure(req Request) (*Bundle, error) {
	if err := req.validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(req.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("pki: create %s: %w", req.Dir, err)
	}
	now := time.Now()
	path := func(name string) string { return filepath.Join(req.Dir, name) }

	b := &Bundle{
		CACert:            path("ca.crt"),
		CAKey:             path("ca.key"),
		APIServerCert:     path("apiserver.crt"),
		APIServerKey:      path("apiserver.key"),
		ServiceAccountKey: path("sa.key"),
		ServiceAccountPub: path("sa.pub"),
		Clients:           map[string]ClientCert{},
	}
	ca, err := ensureCA(b.CACert, b.CAKey, now)
	if err != nil {
		return nil, err
	}
	if err := ensureServiceAccountKey(b.ServiceAccountKey, b.ServiceAccountPub); err != nil {
		return nil, err
	}
	serving := leafSpec{
		cn:     "kube-apiserver",
		server: true,
		dns:    req.APIServerNames,
		ips:    req.APIServerIPs,
	}
	if err := ensureLeaf(ca, b.APIServerCert, b.APIServerKey, serving, now); err != nil {
		return nil, err
	}
	for _, c := range req.clients() {
		cc := ClientCert{Cert: path(c.file + ".crt"), Key: path(c.file + ".key")}
		if err := ensureLeaf(ca, cc.Cert, cc.Key, c.spec, now); err != nil {
			return nil, err
		}
		b.Clients[c.id] = cc
	}
	return b, nil
}

type client struct {
	id, file string
	spec     leafSpec
}

func (r Request) clients() []client {
	cs := []client{
		{Admin, "admin", clientSpec("kubernetes-admin", "system:masters")},
		{ControllerManager, "controller-manager", clientSpec("system:kube-controller-manager")},
		{Scheduler, "scheduler", clientSpec("system:kube-scheduler")},
		// system:masters because the apiserver's exec/logs/port-forward calls
		// are authorized by the kubelet's webhook against this identity.
		{APIServerKubeletClient, "apiserver-kubelet-client", clientSpec("kube-apiserver-kubelet-client", "system:masters")},
	}
	for _, n := range r.Nodes {
		cs = append(cs, client{NodeID(n), "node-" + n, clientSpec("system:node:"+n, "system:nodes")})
	}
	for _, u := range r.ExtraUsers {
		cs = append(cs, client{UserID(u.Name), "user-" + u.Name, clientSpec(u.Name, u.Groups...)})
	}
	return cs
}

func clientSpec(cn string, orgs ...string) leafSpec {
	return leafSpec{cn: cn, orgs: orgs}
}

func (r Request) validate() error {
	if r.Dir == "" {
		return errors.New("pki: Request.Dir is empty")
	}
	if len(r.APIServerIPs) == 0 && len(r.APIServerNames) == 0 {
		return errors.New("pki: the apiserver certificate needs at least one IP or DNS SAN")
	}
	for _, ip := range r.APIServerIPs {
		if len(ip) != net.IPv4len && len(ip) != net.IPv6len {
			return fmt.Errorf("pki: invalid apiserver IP %v", ip)
		}
	}
	for _, n := range r.APIServerNames {
		if n == "" {
			return errors.New("pki: empty apiserver DNS name")
		}
	}
	nodes := map[string]bool{}
	for _, n := range r.Nodes {
		if err := checkName("node", n, nodes); err != nil {
			return err
		}
	}
	users := map[string]bool{}
	for _, u := range r.ExtraUsers {
		if err := checkName("user", u.Name, users); err != nil {
			return err
		}
	}
	return nil
}

// checkName rejects names that cannot safely become part of a file name, and
// duplicates, which would silently share one file.
func checkName(kind, name string, seen map[string]bool) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("pki: invalid %s name %q", kind, name)
	}
	if seen[name] {
		return fmt.Errorf("pki: duplicate %s name %q", kind, name)
	}
	seen[name] = true
	return nil
}
