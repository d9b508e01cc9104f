package e2e

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kovn-io/kovn/go-controller/pkg/lab"
)

// canI is one `kubectl auth can-i` question and the answer least
// privilege requires.
type canI struct {
	verb, resource, ns string
	want               bool
}

// TestRBACLeastPrivilege asks the API server's authorizer, through
// `kubectl auth can-i`, what each kovn identity may do: the
// ServiceAccounts the manifests deploy and the lab's client-certificate
// users. Each may do what its component needs and none may read Secrets,
// run commands in pods or write what it does not own.
func TestRBACLeastPrivilege(t *testing.T) {
	e := setup(t)
	never := []canI{
		{"get", "secrets", "kovn-system", false},
		{"list", "secrets", "", false},
		{"watch", "secrets", "default", false},
		{"create", "pods", "default", false},
		{"delete", "pods", "default", false},
		{"create", "pods/exec", "default", false},
		{"delete", "nodes", "", false},
		{"create", "serviceaccounts/token", "kovn-system", false},
		{"impersonate", "users", "", false},
		{"create", "clusterrolebindings", "", false},
		{"update", "services", "default", false},
		{"update", "endpointslices.discovery.k8s.io", "default", false},
		{"update", "networkpolicies.networking.k8s.io", "default", false},
		{"delete", "leases.coordination.k8s.io", "kovn-system", false},
		{"get", "configmaps", "kube-system", false},
		{"create", "externalports.kovn.io", "default", false},
	}
	controller := append([]canI{
		{"patch", "pods", "default", true},
		{"patch", "nodes", "", true},
		{"list", "networkpolicies.networking.k8s.io", "", true},
		{"list", "endpointslices.discovery.k8s.io", "", true},
		{"patch", "externalports.kovn.io/status", "default", true},
		{"update", "leases.coordination.k8s.io", "kovn-system", true},
		{"update", "leases.coordination.k8s.io", "default", false},
		{"create", "events", "default", true},
	}, never...)
	node := append([]canI{
		{"list", "pods", "", true},
		{"patch", "nodes", "", true},
		{"update", "leases.coordination.k8s.io", "kovn-system", true},
		{"create", "leases.coordination.k8s.io", "default", false},
		{"patch", "pods", "default", false},
		{"list", "networkpolicies.networking.k8s.io", "", false},
		{"patch", "externalports.kovn.io/status", "default", false},
	}, never...)
	identities := []struct {
		name string
		as   []string
		want []canI
	}{
		{"ServiceAccount kovn-controller", []string{"--as=system:serviceaccount:kovn-system:kovn-controller"}, controller},
		{"ServiceAccount kovn-node", []string{"--as=system:serviceaccount:kovn-system:kovn-node"}, node},
		{"lab user kovn-controller", []string{"--as=kovn-controller"}, controller},
		{"lab user " + lab.KovnNodeUser("node1"), []string{"--as=" + lab.KovnNodeUser("node1"), "--as-group=" + lab.KovnNodesGroup}, node},
	}
	for _, id := range identities {
		t.Run(id.name, func(t *testing.T) {
			for _, q := range id.want {
				resource, sub, _ := strings.Cut(q.resource, "/")
				args := append([]string{"--kubeconfig=" + e.lab.KubeconfigPath(), "auth", "can-i", q.verb, resource}, id.as...)
				if sub != "" {
					args = append(args, "--subresource="+sub)
				}
				if q.ns != "" {
					args = append(args, "--namespace="+q.ns)
				} else {
					args = append(args, "--all-namespaces")
				}
				out, err := exec.Command(e.lab.KubectlPath(), args...).CombinedOutput()
				answer := strings.TrimSpace(string(out))
				// can-i exits 1 for "no"; anything else that fails is an error.
				if err != nil && answer != "no" {
					t.Fatalf("kubectl %s: %v: %s", strings.Join(args, " "), err, out)
				}
				if got := answer == "yes"; got != q.want {
					t.Errorf("can-i %s %s (ns %q) = %s, want %v", q.verb, q.resource, q.ns, answer, q.want)
				}
			}
		})
	}
}

// TestNodeScopedCredentials writes, as server-side dry runs, with the
// credentials a node agent holds: a lab host's own user, and a
// ServiceAccount token bound to a Node as a DaemonSet pod's projected
// token is. The kovn-node-scope admission policy must let each touch only
// its own Node's kovn.io/ annotations and its own heartbeat Lease.
func TestNodeScopedCredentials(t *testing.T) {
	e := setup(t)
	if len(e.lab.NodeNames) < 2 {
		t.Skip("needs two nodes")
	}
	self, other := e.lab.NodeNames[0], e.lab.NodeNames[1]
	ctx := context.Background()
	base, err := clientcmd.BuildConfigFromFlags("", e.lab.KubeconfigPath())
	if err != nil {
		t.Fatal(err)
	}
	impersonated := func(user string) *kubernetes.Clientset {
		cfg := rest.CopyConfig(base)
		cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{lab.KovnNodesGroup}}
		return kubernetes.NewForConfigOrDie(cfg)
	}
	boundToken := func(node string) *kubernetes.Clientset {
		req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(600))}}
		if node != "" {
			n, err := e.cs.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			req.Spec.BoundObjectRef = &authenticationv1.BoundObjectReference{Kind: "Node", APIVersion: "v1", Name: node, UID: n.UID}
		}
		tok, err := e.cs.CoreV1().ServiceAccounts("kovn-system").CreateToken(ctx, "kovn-node", req, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cfg := rest.AnonymousClientConfig(base)
		cfg.BearerToken = tok.Status.Token
		return kubernetes.NewForConfigOrDie(cfg)
	}
	dry := metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}}
	patchNode := func(cs *kubernetes.Clientset, node, patch string) error {
		_, err := cs.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, []byte(patch), dry)
		return err
	}
	writeLease := func(cs *kubernetes.Clientset, name string) error {
		l, err := e.cs.CoordinationV1().Leases("kovn-system").Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			l = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "kovn-system"}}
			_, err = cs.CoordinationV1().Leases("kovn-system").Create(ctx, l, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			return err
		}
		if err != nil {
			t.Fatal(err)
		}
		l.Spec.HolderIdentity = ptr("someone-else")
		_, err = cs.CoordinationV1().Leases("kovn-system").Update(ctx, l, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}})
		return err
	}
	kovnAnnotation := `{"metadata":{"annotations":{"kovn.io/e2e-scope":"x"}}}`
	type attempt struct {
		what    string
		do      func(*kubernetes.Clientset) error
		allowed bool
	}
	for _, id := range []struct {
		name string
		cs   *kubernetes.Clientset
	}{
		{"lab user " + lab.KovnNodeUser(self), impersonated(lab.KovnNodeUser(self))},
		{"ServiceAccount token bound to Node " + self, boundToken(self)},
	} {
		t.Run(id.name, func(t *testing.T) {
			for _, a := range []attempt{
				{"kovn.io annotation on its own Node", func(cs *kubernetes.Clientset) error { return patchNode(cs, self, kovnAnnotation) }, true},
				{"kovn.io annotation on another Node", func(cs *kubernetes.Clientset) error { return patchNode(cs, other, kovnAnnotation) }, false},
				{"a label on its own Node", func(cs *kubernetes.Clientset) error {
					return patchNode(cs, self, `{"metadata":{"labels":{"e2e-scope":"x"}}}`)
				}, false},
				{"another annotation on its own Node", func(cs *kubernetes.Clientset) error {
					return patchNode(cs, self, `{"metadata":{"annotations":{"e2e-scope":"x"}}}`)
				}, false},
				{"a taint on its own Node", func(cs *kubernetes.Clientset) error {
					return patchNode(cs, self, `{"spec":{"taints":[{"key":"e2e-scope","effect":"NoSchedule"}]}}`)
				}, false},
				{"its own heartbeat Lease", func(cs *kubernetes.Clientset) error { return writeLease(cs, "kovn-node-"+self) }, true},
				{"another node's heartbeat Lease", func(cs *kubernetes.Clientset) error { return writeLease(cs, "kovn-node-"+other) }, false},
				{"the controller's leader Lease", func(cs *kubernetes.Clientset) error { return writeLease(cs, "kovn-controller") }, false},
			} {
				checkAttempt(t, a.what, a.do(id.cs), a.allowed)
			}
		})
	}
	t.Run("ServiceAccount token bound to no node", func(t *testing.T) {
		cs := boundToken("")
		checkAttempt(t, "its would-be heartbeat Lease", writeLease(cs, "kovn-node-"+self), false)
		checkAttempt(t, "a Node", patchNode(cs, self, kovnAnnotation), false)
	})
	if len(e.lab.ExternalHostNames) > 0 {
		bm := e.lab.ExternalHostNames[0]
		t.Run("lab user "+lab.KovnNodeUser(bm)+" (bare-metal host)", func(t *testing.T) {
			cs := impersonated(lab.KovnNodeUser(bm))
			checkAttempt(t, "its own heartbeat Lease", writeLease(cs, "kovn-node-"+bm), true)
			checkAttempt(t, "a Node's annotation", patchNode(cs, self, kovnAnnotation), false)
			checkAttempt(t, "a node's heartbeat Lease", writeLease(cs, "kovn-node-"+self), false)
		})
	}
}

// checkAttempt requires an allowed write to succeed and a refused one to
// be Forbidden, not failing for another reason.
func checkAttempt(t *testing.T, what string, err error, allowed bool) {
	t.Helper()
	switch {
	case allowed && err != nil:
		t.Errorf("%s: refused: %v", what, err)
	case !allowed && err == nil:
		t.Errorf("%s: allowed, want refused", what)
	case !allowed && !apierrors.IsForbidden(err) && !apierrors.IsInvalid(err):
		t.Errorf("%s: failed with %v, want Forbidden", what, err)
	case !allowed:
		t.Logf("%s: refused: %s", what, firstLine(err.Error()))
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func ptr[T any](v T) *T { return &v }
