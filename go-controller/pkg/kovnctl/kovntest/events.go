package kovntest

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/kovn-io/kovn/go-controller/pkg/ipam"
	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/metrics"
	"github.com/kovn-io/kovn/go-controller/pkg/testenv"
)

// RefusedIP is what RefusedPod asks for: outside n2's subnet.
var RefusedIP = netip.MustParseAddr("10.200.0.5")

// RefusedPod is team-b/bad on n2, asking (kovn.io/ip-address) for an
// address outside n2's subnet: kovn-controller gives it no address and no
// port, and records a Warning Event (RecordRefusal).
func RefusedPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-b", Name: "bad", UID: types.UID("uid-team-b-bad"),
			Annotations:       map[string]string{kube.PodIPRequestAnnotation: RefusedIP.String()},
			CreationTimestamp: metav1.NewTime(time.Now().Add(-time.Hour))},
		Spec:   corev1.PodSpec{NodeName: "n2"},
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}
}

// Refusal is the message of kovn-controller's Warning Event when it
// refuses owner (a pod's key, "ExternalPort:" + an external port's) the
// address ip of subnet: the allocator's own error, which the controllers
// record as it is.
func Refusal(subnet netip.Prefix, owner string, ip netip.Addr) string {
	a, err := ipam.NewIPAllocator(subnet, ipam.GatewayIP(subnet))
	if err != nil {
		panic(err)
	}
	if err := a.AllocateStatic(owner, ip); err != nil {
		return err.Error()
	}
	panic(fmt.Sprintf("%s allocated in %s", ip, subnet))
}

// RecordWarning records a Warning Event on obj into kc the way
// kovn-controller does (metrics.Problems through kube.NewEventRecorder, as
// kube.ControllerComponent), and waits until kc holds it.
func RecordWarning(t *testing.T, kc kubernetes.Interface, obj runtime.Object, kind, reason, message string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	rec, stop := kube.NewEventRecorder(ctx, kc, kube.ControllerComponent)
	defer stop()
	metrics.NewProblems(rec, nil).Report(obj, kind, reason, message)
	m, ok := obj.(metav1.Object)
	if !ok {
		t.Fatalf("%T has no object metadata", obj)
	}
	testenv.WaitFor(t, Timeout, func() error {
		l, err := kc.CoreV1().Events(m.GetNamespace()).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for _, e := range l.Items {
			if e.InvolvedObject.Name == m.GetName() && e.Reason == reason {
				return nil
			}
		}
		return fmt.Errorf("no Event %s on %s/%s yet", reason, m.GetNamespace(), m.GetName())
	})
}
