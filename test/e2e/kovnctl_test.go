package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"context"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// kovnctl runs the kovnctl next to kovn-lab against the lab, the way an
// operator does after `eval $(kovn-lab env)`; it returns the output and
// the exit code.
func (e *env) kovnctl(t *testing.T, args ...string) (string, int) {
	t.Helper()
	bin := filepath.Join(filepath.Dir(e.labBin), "kovnctl")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("kovnctl not found at %s: run make build", bin)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(),
		"KUBECONFIG="+e.lab.StateDir+"/kubeconfig",
		"OVN_NB_DB="+e.lab.OVNUnixRemote("nb"),
		"OVN_SB_DB="+e.lab.OVNUnixRemote("sb"))
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("kovnctl %s: %v", strings.Join(args, " "), err)
	}
	return string(out), code
}

// TestKovnctlTrace: with a policy that lets only app=b reach app=a on TCP
// 80, kovnctl trace must name that policy for b → a and the isolation
// (and the policy that isolates a) for c → a, agreeing with real probes.
func TestKovnctlTrace(t *testing.T) {
	e := setup(t)
	requireController(t, e)
	requireKovnCNI(t, e)
	ns := e.namespace(t, "kovnctl")
	nodes := e.lab.NodeNames
	pods := e.createRunning(t, 2*time.Minute,
		e.testServerPod(ns, "a", nodes[0]), e.testServerPod(ns, "b", nodes[1%len(nodes)]), e.testServerPod(ns, "c", nodes[0]))
	a := pods[0]
	port := intstr.FromInt32(80)
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "only-b"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "a"}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "b"}}}},
				Ports: []networkingv1.NetworkPolicyPort{{Port: &port}},
			}},
		},
	}
	if _, err := e.cs.NetworkingV1().NetworkPolicies(ns).Create(context.Background(), np, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	target := a.Status.PodIP + ":80"
	if err := poll(30*time.Second, func() error {
		if _, err := e.probe(t, ns+"/c", target, "tcp"); err == nil {
			return fmt.Errorf("c still reaches a")
		}
		_, err := e.probe(t, ns+"/b", target, "tcp")
		return err
	}); err != nil {
		t.Fatalf("the policy never took effect: %v", err)
	}

	out, code := e.kovnctl(t, "trace", "--from", ns+"/b", "--to", ns+"/a", "--port", "80")
	t.Logf("kovnctl trace b → a:\n%s", out)
	if code != 0 || !strings.Contains(out, "verdict: DELIVERED") || !strings.Contains(out, "allowed by NetworkPolicy "+ns+"/only-b") {
		t.Errorf("trace b → a (exit %d) should be delivered and name NetworkPolicy %s/only-b as what allows it", code, ns)
	}
	out, code = e.kovnctl(t, "trace", "--from", ns+"/c", "--to", ns+"/a", "--port", "80")
	t.Logf("kovnctl trace c → a:\n%s", out)
	if code != 0 || !strings.Contains(out, "verdict: DROPPED") || !strings.Contains(out, "isolated for ingress by NetworkPolicy "+ns+"/only-b") {
		t.Errorf("trace c → a (exit %d) should be dropped and name NetworkPolicy %s/only-b as what isolates a", code, ns)
	}
	out, code = e.kovnctl(t, "show", "-n", ns, "policy", "only-b")
	t.Logf("kovnctl show policy:\n%s", out)
	if code != 0 || !strings.Contains(out, ns+"_a") {
		t.Errorf("show policy (exit %d) should list a's port %s_a", code, ns)
	}
}

// TestKovnctlStatus: a healthy lab has no problem (once earlier tests'
// leftovers are gone).
func TestKovnctlStatus(t *testing.T) {
	e := setup(t)
	requireController(t, e)
	// Earlier tests' namespaces may still be going away: their rows are
	// rightly reported until the controller has deleted them.
	var out string
	var code int
	_ = poll(60*time.Second, func() error {
		out, code = e.kovnctl(t, "status")
		if code != 0 || !strings.Contains(out, "no problems found") {
			return fmt.Errorf("exit %d", code)
		}
		return nil
	})
	t.Logf("kovnctl status:\n%s", out)
	if code != 0 || !strings.Contains(out, "no problems found") {
		t.Errorf("kovnctl status on a healthy lab exited %d", code)
	}
}

// TestKovnctlStatusNodeStopped: with one kovn-node stopped, status names
// that node (its heartbeat Lease expires 40 s after the last renewal) and
// exits 1; once it runs again, status is clean.
func TestKovnctlStatusNodeStopped(t *testing.T) {
	e := setup(t)
	requireController(t, e)
	node := e.lab.NodeNames[len(e.lab.NodeNames)-1]
	if _, err := e.labCmd(t, nil, "stop", "node:"+node); err != nil {
		t.Fatal(err)
	}
	started := false
	start := func() {
		if !started {
			started = true
			if _, err := e.labCmd(t, nil, "start", "node:"+node); err != nil {
				t.Error(err)
			}
		}
	}
	defer start()
	var out string
	var code int
	want := "node/" + node + ": kovn-node silent"
	err := poll(90*time.Second, func() error {
		out, code = e.kovnctl(t, "status")
		if code != 1 || !strings.Contains(out, want) {
			return fmt.Errorf("exit %d, no %q yet", code, want)
		}
		return nil
	})
	t.Logf("kovnctl status with kovn-node on %s stopped:\n%s", node, out)
	if err != nil {
		t.Errorf("status never reported the stopped kovn-node: %v", err)
	}
	start()
	err = poll(60*time.Second, func() error {
		out, code = e.kovnctl(t, "status")
		if code != 0 {
			return fmt.Errorf("exit %d", code)
		}
		return nil
	})
	if err != nil {
		t.Errorf("status not clean after kovn-node on %s came back:\n%s", node, out)
	}
}
