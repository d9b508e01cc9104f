package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// TestManifestsServerDryRun sends what a user applies from dist/ — with
// -f, with -k, and with the RAFT component — to the lab's API server as
// server-side dry runs: schemas, strict field validation and admission
// all run and nothing is stored. The pod templates are also sent as Pods,
// since Pod admission (Pod Security, priority classes, ServiceAccounts)
// does not look at a Deployment. Any error or warning fails the test with
// kubectl's output.
func TestManifestsServerDryRun(t *testing.T) {
	e := setup(t)
	_, file, _, _ := runtime.Caller(0)
	dist := filepath.Join(filepath.Dir(file), "..", "..", "dist")
	kubectl := func(stdin []byte, args ...string) string {
		t.Helper()
		cmd := exec.Command(e.lab.KubectlPath(), append([]string{"--kubeconfig=" + e.lab.KubeconfigPath()}, args...)...)
		cmd.Dir = dist
		if stdin != nil {
			cmd.Stdin = bytes.NewReader(stdin)
		}
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		if err != nil || strings.Contains(errb.String(), "Warning:") {
			t.Fatalf("kubectl %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
		}
		return out.String()
	}

	// A dry run never makes a CRD Established, so a custom resource in the
	// same run as its CRD would fail with "no matches for kind". kovn-lab
	// up applies dist/crds for real: they must be served already.
	kubectl(nil, "wait", "--for=condition=Established", "--timeout=10s", "-f", "crds")

	// RAFT is a component, enabled from an overlay outside dist/ (kustomize
	// loads no overlay below its base), as docs/install.md shows.
	raft := t.TempDir()
	rel, err := filepath.Rel(raft, dist)
	if err != nil {
		t.Fatal(err)
	}
	overlay := "resources: [" + rel + "]\ncomponents: [" + filepath.Join(rel, "ovn-raft") + "]\n"
	if err := os.WriteFile(filepath.Join(raft, "kustomization.yaml"), []byte(overlay), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, args := range [][]string{
		{"-f", "crds", "-f", "manifests"},
		{"-k", "."},
		{"-k", raft},
	} {
		out := kubectl(nil, append([]string{"apply", "--dry-run=server"}, args...)...)
		t.Logf("kubectl apply --dry-run=server %s:\n%s", strings.Join(args, " "), out)
	}
	if out := kubectl(nil, "kustomize", raft); !strings.Contains(out, "replicas: 3") {
		t.Fatalf("the RAFT overlay does not make three OVN central members:\n%s", out)
	}

	pods := podsOf(t, kubectl(nil, "kustomize", "."))
	out := kubectl(pods, "create", "--dry-run=server", "-f", "-")
	if n := strings.Count(out, "created (server dry run)"); n != 3 {
		t.Fatalf("want 3 pods created, got %d:\n%s", n, out)
	}
	t.Logf("pod templates as Pods:\n%s", out)
}

// podsOf turns the pod templates of the workloads in a YAML stream into
// Pods, one YAML stream.
func podsOf(t *testing.T, stream string) []byte {
	t.Helper()
	var pods [][]byte
	for _, doc := range regexp.MustCompile(`(?m)^---$`).Split(stream, -1) {
		// Deployments, DaemonSets and StatefulSets all keep their pod in
		// spec.template.
		var w struct {
			Kind     string            `json:"kind"`
			Metadata metav1.ObjectMeta `json:"metadata"`
			Spec     struct {
				Template corev1.PodTemplateSpec `json:"template"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal([]byte(doc), &w); err != nil {
			t.Fatal(err)
		}
		if w.Kind != "Deployment" && w.Kind != "DaemonSet" && w.Kind != "StatefulSet" {
			continue
		}
		b, err := yaml.Marshal(corev1.Pod{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			ObjectMeta: metav1.ObjectMeta{Namespace: w.Metadata.Namespace, Name: "dry-run-" + w.Metadata.Name, Labels: w.Spec.Template.Labels},
			Spec:       w.Spec.Template.Spec,
		})
		if err != nil {
			t.Fatal(err)
		}
		pods = append(pods, b)
	}
	return bytes.Join(pods, []byte("---\n"))
}
