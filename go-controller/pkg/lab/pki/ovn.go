package pki

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"
)

// OVNRequest describes the certificates of OVN's NB and SB databases.
// They come from a CA of their own, so that no Kubernetes credential
// (a kubelet's, an admin's) is ever accepted by OVSDB, and no OVSDB
// credential by the API server.
type OVNRequest struct {
	Dir string
	// ServerIPs are the addresses clients dial: every RAFT member's.
	ServerIPs []net.IP
	// Clients each get a client certificate whose CN is the name, e.g.
	// "kovn-controller" or "ovn-controller:node1".
	Clients []string
}

// OVNBundle holds the paths of the OVN certificates.
type OVNBundle struct {
	CACert string
	// Server is what every ovsdb-server of OVN central presents; it also
	// authenticates a RAFT member to the others.
	Server  ClientCert
	Clients map[string]ClientCert
}

// EnsureOVN makes Dir hold the OVN CA, the OVN central certificate and a
// client certificate per name, keeping what is still valid as Ensure does.
func EnsureOVN(req OVNRequest) (*OVNBundle, error) {
	if req.Dir == "" {
		return nil, errors.New("pki: OVNRequest.Dir is empty")
	}
	if len(req.ServerIPs) == 0 {
		return nil, errors.New("pki: the OVN central certificate needs at least one IP")
	}
	seen := map[string]bool{}
	for _, c := range req.Clients {
		if err := checkName("OVN client", c, seen); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(req.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("pki: create %s: %w", req.Dir, err)
	}
	now := time.Now()
	path := func(name string) string { return filepath.Join(req.Dir, name) }
	b := &OVNBundle{
		CACert:  path("ca.crt"),
		Server:  ClientCert{Cert: path("ovn-central.crt"), Key: path("ovn-central.key")},
		Clients: map[string]ClientCert{},
	}
	ca, err := ensureCA(b.CACert, path("ca.key"), now)
	if err != nil {
		return nil, err
	}
	server := leafSpec{cn: "ovn-central", server: true, peer: true, ips: req.ServerIPs}
	if err := ensureLeaf(ca, b.Server.Cert, b.Server.Key, server, now); err != nil {
		return nil, err
	}
	for _, c := range req.Clients {
		cc := ClientCert{Cert: path("client-" + c + ".crt"), Key: path("client-" + c + ".key")}
		if err := ensureLeaf(ca, cc.Cert, cc.Key, clientSpec(c), now); err != nil {
			return nil, err
		}
		b.Clients[c] = cc
	}
	return b, nil
}
