package k8sbuild

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestKubernetesVersion(t *testing.T) {
	got, err := KubernetesVersion("v0.34.2")
	if err != nil || got != "v1.34.2" {
		t.Fatalf("got %q, %v", got, err)
	}
	for _, bad := range []string{"v1.34.2", "v0.34.2-rc.1", "v0.0.0-20250101000000-abcdef", ""} {
		if _, err := KubernetesVersion(bad); err == nil {
			t.Errorf("%q should be refused", bad)
		}
	}
}

func TestLdflagsStampVersion(t *testing.T) {
	fl := ldflags("v1.34.2")
	for _, want := range []string{
		"k8s.io/component-base/version.gitVersion=v1.34.2",
		"k8s.io/component-base/version.gitMinor=34",
		"k8s.io/client-go/pkg/version.gitMajor=1",
	} {
		if !strings.Contains(fl, want) {
			t.Errorf("ldflags lack %s: %s", want, fl)
		}
	}
}

func TestStagingModulesFromGoMod(t *testing.T) {
	mod := `module k8s.io/kubernetes

require k8s.io/api v0.0.0

replace (
	github.com/x/y => github.com/x/y v1.0.0
	k8s.io/api => ./staging/src/k8s.io/api
	k8s.io/client-go => ./staging/src/k8s.io/client-go
)
replace k8s.io/kubelet => ./staging/src/k8s.io/kubelet
`
	p := filepath.Join(t.TempDir(), "go.mod")
	if err := os.WriteFile(p, []byte(mod), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := stagingModules(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"k8s.io/api", "k8s.io/client-go", "k8s.io/kubelet"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v want %v", got, want)
	}
}
