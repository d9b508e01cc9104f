package kovntest

import (
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"

	"github.com/kovn-io/kovn/go-controller/pkg/kube"
)

// Dynamic is a fake dynamic client serving eps, as kovnctl reads
// ExternalPorts.
func Dynamic(t *testing.T, eps ...*kube.ExternalPort) *dynamicfake.FakeDynamicClient {
	t.Helper()
	var objs []runtime.Object
	for _, ep := range eps {
		u, err := ep.Unstructured()
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, u)
	}
	return dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{kube.ExternalPortResource(): "ExternalPortList"}, objs...)
}
