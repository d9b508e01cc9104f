package pki

import (
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestEnsureReplacesInvalidFiles(t *testing.T) {
	clientFiles := func(b *Bundle) []string {
		var out []string
		for _, cc := range b.Clients {
			out = append(out, filepath.Base(cc.Cert), filepath.Base(cc.Key))
		}
		return out
	}
	tests := []struct {
		name string
		// spoil damages the files in b; want returns the files that must
		// change as a result.
		spoil func(t *testing.T, b *Bundle)
		want  func(b *Bundle) []string
	}{{
		name:  "garbage certificate",
		spoil: func(t *testing.T, b *Bundle) { write(t, b.Clients[Admin].Cert, "not a cert") },
		want:  func(*Bundle) []string { return []string{"admin.crt", "admin.key"} },
	}, {
		name: "truncated key",
		spoil: func(t *testing.T, b *Bundle) {
			data, _ := os.ReadFile(b.Clients[NodeID("node-a")].Key)
			write(t, b.Clients[NodeID("node-a")].Key, string(data[:len(data)/2]))
		},
		want: func(*Bundle) []string { return []string{"node-node-a.crt", "node-node-a.key"} },
	}, {
		name: "key of another certificate",
		spoil: func(t *testing.T, b *Bundle) {
			data, _ := os.ReadFile(b.Clients[Scheduler].Key)
			write(t, b.Clients[Admin].Key, string(data))
		},
		want: func(*Bundle) []string { return []string{"admin.crt", "admin.key"} },
	}, {
		name: "pair of another identity",
		spoil: func(t *testing.T, b *Bundle) {
			copyPair(t, b.Clients[Scheduler], b.Clients[ControllerManager])
		},
		want: func(*Bundle) []string { return []string{"controller-manager.crt", "controller-manager.key"} },
	}, {
		name: "pair signed by another CA",
		spoil: func(t *testing.T, b *Bundle) {
			other := mustEnsure(t, testRequest(t.TempDir()))
			copyPair(t, other.Clients[Admin], b.Clients[Admin])
		},
		want: func(*Bundle) []string { return []string{"admin.crt", "admin.key"} },
	}, {
		name: "expired certificate",
		spoil: func(t *testing.T, b *Bundle) {
			cert, key, err := loadPair(b.CACert, b.CAKey)
			if err != nil {
				t.Fatal(err)
			}
			spec := clientSpec("kubernetes-admin", "system:masters")
			der, leafKey, err := issue(&authority{cert, key}, spec, time.Now().Add(-2*validity))
			if err != nil {
				t.Fatal(err)
			}
			cc := b.Clients[Admin]
			if err := writePair(cc.Cert, cc.Key, der, leafKey); err != nil {
				t.Fatal(err)
			}
		},
		want: func(*Bundle) []string { return []string{"admin.crt", "admin.key"} },
	}, {
		name:  "mismatched service-account public key",
		spoil: func(t *testing.T, b *Bundle) { copyFile(t, b.APIServerKey, b.ServiceAccountKey) },
		want:  func(*Bundle) []string { return []string{"sa.key", "sa.pub"} },
	}, {
		name:  "corrupt CA key",
		spoil: func(t *testing.T, b *Bundle) { write(t, b.CAKey, "") },
		// Every certificate hangs off the CA; the service-account key does not.
		want: func(b *Bundle) []string {
			return append(clientFiles(b), "apiserver.crt", "apiserver.key", "ca.crt", "ca.key")
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := testRequest(t.TempDir())
			b := mustEnsure(t, req)
			tt.spoil(t, b)
			spoiled := snapshot(t, req.Dir)

			repaired := mustEnsure(t, req)
			after := snapshot(t, req.Dir)
			want := tt.want(b)
			slices.Sort(want)
			if got := changed(spoiled, after); !slices.Equal(got, want) {
				t.Errorf("regenerated %v, want %v", got, want)
			}
			if err := verify(t, repaired, repaired.APIServerCert, x509.ExtKeyUsageServerAuth, "kubernetes"); err != nil {
				t.Errorf("apiserver: %v", err)
			}
			for id, cc := range repaired.Clients {
				if err := verify(t, repaired, cc.Cert, x509.ExtKeyUsageClientAuth, ""); err != nil {
					t.Errorf("%s: %v", id, err)
				}
			}
			mustEnsure(t, req)
			if diff := changed(after, snapshot(t, req.Dir)); len(diff) != 0 {
				t.Errorf("Ensure after the repair changed %v", diff)
			}
		})
	}
}

func TestEnsureRejectsInvalidRequests(t *testing.T) {
	dir := t.TempDir()
	ok := testRequest(dir)
	tests := map[string]func(r *Request){
		"no dir":         func(r *Request) { r.Dir = "" },
		"no SANs":        func(r *Request) { r.APIServerIPs, r.APIServerNames = nil, nil },
		"bad IP":         func(r *Request) { r.APIServerIPs = []net.IP{{1, 2, 3}} },
		"empty DNS name": func(r *Request) { r.APIServerNames = []string{""} },
		"slash in node":  func(r *Request) { r.Nodes = []string{"a/b"} },
		"dot-dot node":   func(r *Request) { r.Nodes = []string{".."} },
		"duplicate node": func(r *Request) { r.Nodes = []string{"a", "a"} },
		"empty user":     func(r *Request) { r.ExtraUsers = []User{{}} },
		"duplicate user": func(r *Request) { r.ExtraUsers = []User{{Name: "u"}, {Name: "u", Groups: []string{"g"}}} },
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			r := ok
			mutate(&r)
			if _, err := Ensure(r); err == nil || !strings.HasPrefix(err.Error(), "pki: ") {
				t.Errorf("Ensure: %v, want a pki error", err)
			}
		})
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("rejected requests wrote %d files", len(entries))
	}
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	write(t, to, string(data))
}

func copyPair(t *testing.T, from, to ClientCert) {
	t.Helper()
	copyFile(t, from.Cert, to.Cert)
	copyFile(t, from.Key, to.Key)
}
