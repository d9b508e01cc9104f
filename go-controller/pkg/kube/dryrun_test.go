package kube

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

func TestDryRunWrites(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]string{} // method → dryRun query parameter the server got
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Method] = r.URL.Query().Get("dryRun")
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"ns"}}`))
	}))
	defer srv.Close()
	var recorded []string
	cfg := &rest.Config{Host: srv.URL}
	DryRunWrites(cfg, func(method, path string) { recorded = append(recorded, method+" "+path) })
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := cs.CoreV1().Pods("ns").Get(ctx, "p", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Pods("ns").Patch(ctx, "p", types.MergePatchType, []byte(`{}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if seen[http.MethodGet] != "" || seen[http.MethodPatch] != "All" {
		t.Errorf("server saw dryRun %q on GET and %q on PATCH", seen[http.MethodGet], seen[http.MethodPatch])
	}
	if len(recorded) != 1 || recorded[0] != "PATCH /api/v1/namespaces/ns/pods/p" {
		t.Errorf("recorded %q", recorded)
	}
}
