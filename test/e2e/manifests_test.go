package e2e

import (
	"bytes"
	"context"
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

// TestDeployedFromManifests runs on a lab brought up with --deploy
// manifests (test/e2e/run.sh's last phase): kovn and OVN must run as the
// pods dist/ describes, from the image built from dist/images, with no
// process of theirs started by the lab; every node a chassis and Ready.
// The other tests of that phase then show the network those pods make.
func TestDeployedFromManifests(t *testing.T) {
	e := setup(t)
	if !e.lab.FromManifests() {
		t.Skip("the lab runs kovn as processes (kovn-lab up --deploy manifests runs it from dist/)")
	}
	for _, name := range e.lab.Supervisor().Names() {
		for _, own := range []string{"kovn-controller", "kovn-node", "ovn-controller", "ovs-vswitchd", "ovsdb-server", "northd", "nb", "sb"} {
			if name == own || strings.HasPrefix(name, own+":") {
				t.Errorf("the lab supervises %s itself; with --deploy manifests it must come from dist/", name)
			}
		}
	}
	ctx := context.Background()
	pods, err := e.cs.CoreV1().Pods("kovn-system").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	perComponent := map[string][]string{}
	for _, p := range pods.Items {
		c := p.Labels["app.kubernetes.io/component"]
		perComponent[c] = append(perComponent[c], p.Spec.NodeName)
		for _, ctr := range p.Spec.Containers {
			if ctr.Image != e.lab.Images["kovn"] {
				t.Errorf("%s/%s runs image %s, want the lab's build %s", p.Name, ctr.Name, ctr.Image, e.lab.Images["kovn"])
			}
		}
		for _, st := range p.Status.ContainerStatuses {
			if !st.Ready {
				t.Errorf("%s/%s on %s is not ready", p.Name, st.Name, p.Spec.NodeName)
			}
		}
	}
	if got := perComponent["ovn-central"]; len(got) != 1 {
		t.Errorf("ovn-central pods on %v, want one", got)
	}
	if got := perComponent["kovn-controller"]; len(got) != 2 || got[0] == got[1] {
		t.Errorf("kovn-controller pods on %v, want two on different nodes", got)
	}
	if got := perComponent["kovn-node"]; len(got) != len(e.lab.NodeNames) {
		t.Errorf("kovn-node pods on %v, want one on each of %v", got, e.lab.NodeNames)
	}
	// The Lease holder is one of the Deployment's pods (--identity=$(POD_NAME)).
	if holder := e.leaderName(t); !strings.HasPrefix(holder, "kovn-controller-") {
		t.Errorf("Lease kovn-system/kovn-controller held by %q, want a kovn-controller pod", holder)
	}
	chassis, err := e.lab.Chassis()
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := e.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Items {
		if _, ok := chassis[n.Name]; !ok {
			t.Errorf("node %s has no chassis in SB", n.Name)
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status != corev1.ConditionTrue {
				t.Errorf("node %s is not Ready: %s", n.Name, c.Message)
			}
		}
	}
}
