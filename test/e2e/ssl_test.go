package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kovn-io/kovn/go-controller/pkg/lab"
)

// TestOVNOverSSL connects to OVN central the way hosts do, from the
// control-plane host's network: ovn-nbctl, ovn-sbctl and kovnctl reach NB
// and SB over SSL with the lab's OVN admin certificate, and are refused
// with a certificate of another CA (the Kubernetes admin's), when they do
// not trust the server's CA, and in plain TCP.
func TestOVNOverSSL(t *testing.T) {
	e := setup(t)
	if e.lab.OVNPlainTCP {
		t.Skip("the lab serves OVN over plain TCP (kovn-lab up --ovn-plain-tcp)")
	}
	admin, err := e.lab.OVNClientTLS("admin")
	if err != nil {
		t.Fatal(err)
	}
	nb, sb := strings.Join(e.lab.OVNRemotes("nb"), ","), strings.Join(e.lab.OVNRemotes("sb"), ",")
	k8sPKI := filepath.Join(e.lab.StateDir, "pki")
	inCP := func(argv ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + lab.NetNSPath("cp"), "--"}, argv...)...).CombinedOutput()
		return string(out), err
	}
	tls := func(key, cert, ca string) []string {
		return []string{"--private-key=" + key, "--certificate=" + cert, "--ca-cert=" + ca}
	}

	t.Run("accepted with the OVN admin certificate", func(t *testing.T) {
		out, err := inCP(append([]string{"ovn-nbctl", "--timeout=10", "--db=" + nb}, append(admin.CtlArgs(), "ls-list")...)...)
		if err != nil || !strings.Contains(out, "kovn") {
			t.Fatalf("ovn-nbctl over SSL: %v: %s", err, out)
		}
		out, err = inCP(append([]string{"ovn-sbctl", "--timeout=10", "--db=" + sb}, append(admin.CtlArgs(), "show")...)...)
		if err != nil || !strings.Contains(out, e.lab.NodeNames[0]) {
			t.Fatalf("ovn-sbctl over SSL: %v: %s", err, out)
		}
		kovnctl := filepath.Join(filepath.Dir(e.labBin), "kovnctl")
		out, err = inCP(append([]string{kovnctl, "--kubeconfig=" + filepath.Join(k8sPKI, "admin.kubeconfig"),
			"--nb=" + nb, "--sb=" + sb}, append(admin.CtlArgs(), "status")...)...)
		if err != nil {
			t.Fatalf("kovnctl status over SSL: %v:\n%s", err, out)
		}
	})
	refused := []struct {
		name string
		db   string
		args []string
	}{
		{"a client certificate of another CA", nb, tls(filepath.Join(k8sPKI, "admin.key"), filepath.Join(k8sPKI, "admin.crt"), admin.CACert)},
		{"a client that does not trust the server's CA", nb, tls(admin.PrivateKey, admin.Certificate, filepath.Join(k8sPKI, "ca.crt"))},
		{"plain TCP", strings.ReplaceAll(nb, "ssl:", "tcp:"), nil},
	}
	for _, r := range refused {
		t.Run("refused: "+r.name, func(t *testing.T) {
			out, err := inCP(append([]string{"ovn-nbctl", "--timeout=3", "--db=" + r.db}, append(r.args, "ls-list")...)...)
			if err == nil {
				t.Fatalf("ovn-nbctl answered: %s", out)
			}
			t.Logf("refused: %s", firstLine(out))
		})
	}
}
