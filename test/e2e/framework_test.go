// Package e2e holds kovn's end-to-end tests. They run against a lab that
// `kovn-lab up` brought up (make test-e2e does it), with real kubelets,
// containerd, OVN and packets.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"

	"github.com/kovn-io/kovn/go-controller/pkg/lab"
	"github.com/kovn-io/kovn/go-controller/pkg/lab/probe"
)

// env is the lab a test runs against.
type env struct {
	lab    *lab.Lab
	cs     *kubernetes.Clientset
	labBin string
}

// setup loads the lab, or skips when end-to-end tests were not asked for.
// KOVN_E2E=1 (set by make test) turns a missing lab into a failure, so CI
// can never pass by skipping.
func setup(t *testing.T) *env {
	t.Helper()
	stateDir := os.Getenv("KOVN_LAB_STATE")
	if stateDir == "" {
		stateDir = "/var/lib/kovn-lab"
	}
	l, err := lab.Load(stateDir)
	if err != nil {
		if os.Getenv("KOVN_E2E") == "1" {
			t.Fatalf("KOVN_E2E=1 but no lab: %v", err)
		}
		t.Skipf("no lab (%v); run make test-e2e", err)
	}
	cs, err := l.Client()
	if err != nil {
		t.Fatal(err)
	}
	return &env{lab: l, cs: cs, labBin: labBinary(t)}
}

// labBinary is the kovn-lab built by make build; the tests drive the CLI
// the way an operator does.
func labBinary(t *testing.T) string {
	if p := os.Getenv("KOVN_LAB_BIN"); p != "" {
		return p
	}
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(file), "..", "..", "_output", "bin", "kovn-lab")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("kovn-lab binary not found at %s: run make build", p)
	}
	return p
}

// labCmd runs kovn-lab with args and returns stdout; stdin may be nil.
func (e *env) labCmd(t *testing.T, stdin []byte, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(e.labBin, append([]string{"--state-dir", e.lab.StateDir}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("kovn-lab %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), err
}

// probe runs `kovn-lab probe` and decodes the server's reply.
func (e *env) probe(t *testing.T, from, to, proto string) (probe.Reply, error) {
	t.Helper()
	out, err := e.labCmd(t, nil, "probe", "--from", from, "--to", to, "--proto", proto, "--timeout", "3s")
	var r probe.Reply
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &r); err != nil {
		return r, fmt.Errorf("reply %q: %w", out, err)
	}
	return r, nil
}

// namespace creates a throwaway namespace, deleted when the test ends.
func (e *env) namespace(t *testing.T, prefix string) string {
	t.Helper()
	name := prefix + "-" + rand.String(5)
	ctx := context.Background()
	_, err := e.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.cs.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	// Pods are refused until kube-controller-manager has made the
	// namespace's default ServiceAccount; right after an API server
	// restart its informers may take many seconds to catch up.
	if err := poll(2*time.Minute, func() error {
		_, err := e.cs.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		return err
	}); err != nil {
		t.Fatalf("namespace %s: no default ServiceAccount: %v", name, err)
	}
	return name
}

// testServerPod is a pod running the lab's test server on a given node.
func (e *env) testServerPod(ns, name, node string) *corev1.Pod {
	fieldEnv := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{
			NodeName:                      node,
			TerminationGracePeriodSeconds: new(int64),
			Tolerations:                   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Containers: []corev1.Container{{
				Name:            "server",
				Image:           e.lab.Images["test-server"],
				ImagePullPolicy: corev1.PullNever,
				Env: []corev1.EnvVar{
					fieldEnv("POD_NAMESPACE", "metadata.namespace"),
					fieldEnv("POD_NAME", "metadata.name"),
					fieldEnv("NODE_NAME", "spec.nodeName"),
				},
			}},
		},
	}
}

// createRunning creates pods and waits until each runs with an IP.
func (e *env) createRunning(t *testing.T, timeout time.Duration, pods ...*corev1.Pod) []*corev1.Pod {
	t.Helper()
	ctx := context.Background()
	for _, p := range pods {
		if _, err := e.cs.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var out []*corev1.Pod
	for _, p := range pods {
		var got *corev1.Pod
		err := poll(timeout, func() error {
			cur, err := e.cs.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if cur.Status.Phase != corev1.PodRunning || cur.Status.PodIP == "" {
				return fmt.Errorf("pod %s/%s is %s (ip %q)", p.Namespace, p.Name, cur.Status.Phase, cur.Status.PodIP)
			}
			got = cur
			return nil
		})
		if err != nil {
			e.describePod(t, p.Namespace, p.Name)
			t.Fatal(err)
		}
		out = append(out, got)
	}
	return out
}

// describePod logs a pod's events, for a failure that explains itself.
func (e *env) describePod(t *testing.T, ns, name string) {
	evs, err := e.cs.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
	if err != nil {
		return
	}
	for _, ev := range evs.Items {
		t.Logf("event %s/%s: %s %s: %s", ns, name, ev.Type, ev.Reason, ev.Message)
	}
}

// poll retries f until it succeeds or the timeout passes.
func poll(timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(250 * time.Millisecond)
	}
}
