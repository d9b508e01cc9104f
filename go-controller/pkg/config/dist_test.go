package config

// The manifests in dist/ pass flags and --config files to kovn-controller
// and kovn-node. These tests hold them to the flags defined here, so a
// renamed or removed flag fails `go test` instead of crash-looping a pod.

import (
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/urfave/cli/v2"
)

// distImage is the one image every workload runs; kustomize's images:
// replaces it, so it must be spelled the same everywhere.
const distImage = "ghcr.io/kovn-io/kovn:dev"

func distDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "dist")
}

// distManifests are the documents of dist/manifests, by kind.
func distManifests(t *testing.T) map[string][][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(distDir(), "manifests", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	byKind := map[string][][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range regexp.MustCompile(`(?m)^---$`).Split(string(b), -1) {
			var meta struct{ Kind string }
			if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			byKind[meta.Kind] = append(byKind[meta.Kind], []byte(doc))
		}
	}
	return byKind
}

// distPods are the pod templates of the Deployments, DaemonSets and
// StatefulSets, by workload name; unknown fields are an error.
func distPods(t *testing.T) map[string]corev1.PodSpec {
	t.Helper()
	pods := map[string]corev1.PodSpec{}
	m := distManifests(t)
	for _, doc := range m["Deployment"] {
		var d appsv1.Deployment
		strict(t, doc, &d)
		pods[d.Name] = d.Spec.Template.Spec
	}
	for _, doc := range m["DaemonSet"] {
		var d appsv1.DaemonSet
		strict(t, doc, &d)
		pods[d.Name] = d.Spec.Template.Spec
	}
	for _, doc := range m["StatefulSet"] {
		var s appsv1.StatefulSet
		strict(t, doc, &s)
		pods[s.Name] = s.Spec.Template.Spec
	}
	for _, want := range []string{"kovn-controller", "kovn-node", "ovn-central"} {
		if _, ok := pods[want]; !ok {
			t.Fatalf("no workload %s in dist/manifests", want)
		}
	}
	return pods
}

func strict(t *testing.T, doc []byte, into any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(doc, into); err != nil {
		t.Fatalf("%v in:\n%s", err, doc)
	}
}

// kovnConfig is the data of the ConfigMap kovn-config.
func kovnConfig(t *testing.T) map[string]string {
	t.Helper()
	for _, doc := range distManifests(t)["ConfigMap"] {
		var cm corev1.ConfigMap
		strict(t, doc, &cm)
		if cm.Name == "kovn-config" {
			return cm.Data
		}
	}
	t.Fatal("no ConfigMap kovn-config in dist/manifests")
	return nil
}

func flagNames(flags []cli.Flag) map[string]bool {
	names := map[string]bool{}
	for _, f := range flags {
		for _, n := range f.Names() {
			names[n] = true
		}
	}
	return names
}

func TestDistImages(t *testing.T) {
	for name, pod := range distPods(t) {
		for _, c := range append(pod.InitContainers, pod.Containers...) {
			if c.Image != distImage {
				t.Errorf("%s/%s: image %q, want %q", name, c.Name, c.Image, distImage)
			}
		}
	}
}

// TestDistCommands: every flag a manifest passes exists, and every daemon
// it asks kovn-ovn-run for is one the script runs.
func TestDistCommands(t *testing.T) {
	flags := map[string]map[string]bool{"kovn-controller": flagNames(ControllerFlags()), "kovn-node": flagNames(NodeFlags())}
	script, err := os.ReadFile(filepath.Join(distDir(), "images", "kovn-ovn-run"))
	if err != nil {
		t.Fatal(err)
	}
	daemons := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^  ([a-z| -]+)\)`).FindAllStringSubmatch(string(script), -1) {
		for _, d := range strings.Split(m[1], "|") {
			daemons[strings.TrimSpace(d)] = true
		}
	}
	for name, pod := range distPods(t) {
		for _, c := range append(pod.InitContainers, pod.Containers...) {
			if len(c.Command) == 0 {
				t.Errorf("%s/%s: no command (the image has no entrypoint)", name, c.Name)
				continue
			}
			switch bin := c.Command[0]; bin {
			case "kovn-controller", "kovn-node":
				for _, a := range append(c.Command[1:], c.Args...) {
					flag, _, ok := strings.Cut(strings.TrimPrefix(a, "--"), "=")
					if !strings.HasPrefix(a, "--") || !ok || !flags[bin][flag] {
						t.Errorf("%s/%s: %q is not --FLAG=VALUE with a flag of %s", name, c.Name, a, bin)
					}
				}
			case "kovn-ovn-run":
				if len(c.Command) != 2 || !daemons[c.Command[1]] {
					t.Errorf("%s/%s: kovn-ovn-run %v: the script runs %v", name, c.Name, c.Command[1:], daemons)
				}
			default:
				t.Errorf("%s/%s: unexpected command %v", name, c.Name, c.Command)
			}
		}
	}
}

// TestDistConfig: the --config files in kovn-config use only flag names
// and pass the binaries' own validation, and every key a pod takes from
// the ConfigMap exists.
func TestDistConfig(t *testing.T) {
	data := kovnConfig(t)
	dir := t.TempDir()
	for _, c := range []struct {
		key   string
		flags []cli.Flag
		run   func(file string) error
	}{
		{"controller.yaml", ControllerFlags(), func(f string) error { _, err := runController(t, "--config", f); return err }},
		{"node.yaml", NodeFlags(), func(f string) error { _, err := runNode(t, "--config", f, "--node-name", "n1"); return err }},
	} {
		var keys map[string]any
		if err := yaml.UnmarshalStrict([]byte(data[c.key]), &keys); err != nil || len(keys) == 0 {
			t.Fatalf("%s: %v", c.key, err)
		}
		names := flagNames(c.flags)
		for k := range keys {
			if !names[k] || k == "config" {
				t.Errorf("%s: %q is not a flag", c.key, k)
			}
		}
		file := filepath.Join(dir, c.key)
		if err := os.WriteFile(file, []byte(data[c.key]), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := c.run(file); err != nil {
			t.Errorf("%s: %v", c.key, err)
		}
	}
	for name, pod := range distPods(t) {
		var refs []string
		for _, c := range append(pod.InitContainers, pod.Containers...) {
			for _, e := range c.Env {
				if r := e.ValueFrom; r != nil && r.ConfigMapKeyRef != nil && r.ConfigMapKeyRef.Name == "kovn-config" {
					refs = append(refs, r.ConfigMapKeyRef.Key)
				}
			}
			for _, m := range c.VolumeMounts {
				if m.SubPath != "" && configVolume(pod, m.Name) {
					refs = append(refs, m.SubPath)
				}
			}
		}
		for _, k := range refs {
			if _, ok := data[k]; !ok {
				t.Errorf("%s: key %q is not in kovn-config", name, k)
			}
		}
	}
}

func configVolume(pod corev1.PodSpec, name string) bool {
	for _, v := range pod.Volumes {
		if v.Name == name {
			return v.ConfigMap != nil && v.ConfigMap.Name == "kovn-config"
		}
	}
	return false
}
