package policy

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kovn-io/kovn/go-controller/pkg/config"
	"github.com/kovn-io/kovn/go-controller/pkg/controller/internal/ctltest"
	"github.com/kovn-io/kovn/go-controller/pkg/controller/queue"
	"github.com/kovn-io/kovn/go-controller/pkg/ipam"
	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/metrics"
	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

type ovsdbOp = ovsdb.Operation

// harness is a fake API and an NB database that outlive controller
// instances; the test plays the pod controller (annotations and ports).
type harness struct {
	t *testing.T
	*ctltest.Env
	ls  string // UUID of the node switch pod ports live on
	uid int
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	return newHarnessOn(t, ctltest.NewEnv(t))
}

func newHarnessOn(t *testing.T, env *ctltest.Env) *harness {
	t.Helper()
	h := &harness{t: t, Env: env}
	h.apply("node switch", func() ([]ovsdbOp, error) {
		ops, _, err := nbops.EnsureSwitch(h.NB, &nbdb.LogicalSwitch{Name: "n1", ExternalIDs: own.IDs(own.KindNode, "n1", "")})
		return ops, err
	})
	ctltest.WaitFor(t, func() error {
		ls, err := nbops.GetSwitch(h.NB, "n1")
		if err == nil {
			h.ls = ls.UUID
		}
		return err
	})
	return h
}

func (h *harness) apply(desc string, build func() ([]ovsdbOp, error)) {
	h.t.Helper()
	ops, err := build()
	h.Write(desc, ops, err)
}

type instance struct {
	*ctltest.Instance
	c        *Controller
	problems *metrics.Problems
}

func (h *harness) startNoRun() *instance {
	h.t.Helper()
	i := &instance{Instance: h.NewInstance(), problems: metrics.NewProblems(nil, nil)}
	var err error
	i.c, err = New(&config.Controller{PodWorkers: 4}, i.Factory, nil, i.NB, i.Tx, i.problems, queue.NewMetrics(i.Reg))
	if err != nil {
		h.t.Fatal(err)
	}
	i.Start(i.c.Queue, i.c.Start)
	return i
}

func (h *harness) start() *instance {
	h.t.Helper()
	return ctltest.Running(h.startNoRun())
}

func (h *harness) namespace(name string, lbls map[string]string, ann map[string]string) {
	h.t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls, Annotations: ann}}
	ctltest.Create(h.t, h.KC.CoreV1().Namespaces(), ns)
}

func (h *harness) updateNamespace(name string, mod func(*corev1.Namespace)) {
	h.t.Helper()
	ns, err := h.KC.CoreV1().Namespaces().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	mod(ns)
	ctltest.Update(h.t, h.KC.CoreV1().Namespaces(), ns)
}

type podSpec struct {
	ns, name, ip string
	labels       map[string]string
	ports        []corev1.ContainerPort
	noPort       bool // no logical switch port yet
}

func namedPort(name string, n int32) corev1.ContainerPort {
	return corev1.ContainerPort{Name: name, ContainerPort: n, Protocol: corev1.ProtocolTCP}
}

// pod creates a pod as the pod controller leaves it: annotated with its
// address, and (unless noPort) with its logical switch port.
func (h *harness) pod(p podSpec) {
	h.t.Helper()
	h.uid++
	ip := netip.MustParseAddr(p.ip)
	pn := &kube.PodNetwork{IPs: []string{p.ip + "/24"}, MAC: ipam.MACFromIP(ip).String(), Gateway: []string{"10.128.0.1"}, MTU: 1400}
	ann, err := pn.Marshal()
	if err != nil {
		h.t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: p.ns, Name: p.name, Labels: p.labels, UID: types.UID(fmt.Sprintf("uid-%d", h.uid)),
			Annotations: map[string]string{kube.PodNetworkAnnotation: ann}},
		Spec:   corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Ports: p.ports}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
	ctltest.Create(h.t, h.KC.CoreV1().Pods(p.ns), pod)
	if !p.noPort {
		h.port(p.ns, p.name)
	}
}

// port creates a pod's logical switch port, as the pod controller does.
func (h *harness) port(ns, name string) {
	h.t.Helper()
	pod, err := h.KC.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	ids := own.IDs(own.KindPod, ns+"/"+name, "")
	ids[own.PodUIDKey] = string(pod.UID)
	h.apply("port "+name, func() ([]ovsdbOp, error) {
		ops, _, err := nbops.EnsureSwitchPort(h.NB, h.ls, &nbdb.LogicalSwitchPort{Name: own.PodPort(ns, name), ExternalIDs: ids})
		return ops, err
	})
	ctltest.WaitFor(h.t, func() error { _, err := nbops.GetSwitchPort(h.NB, own.PodPort(ns, name)); return err })
}

func (h *harness) relabelPod(ns, name string, lbls map[string]string) {
	h.t.Helper()
	pod, err := h.KC.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	pod.Labels = lbls
	ctltest.Update(h.t, h.KC.CoreV1().Pods(ns), pod)
}

func (h *harness) deletePod(ns, name string) {
	h.t.Helper()
	ctltest.Delete(h.t, h.KC.CoreV1().Pods(ns), name)
	h.apply("delete port "+name, func() ([]ovsdbOp, error) { return nbops.DeleteSwitchPort(h.NB, own.PodPort(ns, name)) })
}

func (h *harness) policy(p *networkingv1.NetworkPolicy) {
	h.t.Helper()
	ctltest.Create(h.t, h.KC.NetworkingV1().NetworkPolicies(p.Namespace), p)
}

func (h *harness) updatePolicy(p *networkingv1.NetworkPolicy) {
	h.t.Helper()
	ctltest.Update(h.t, h.KC.NetworkingV1().NetworkPolicies(p.Namespace), p)
}

func (h *harness) deletePolicy(ns, name string) {
	h.t.Helper()
	ctltest.Delete(h.t, h.KC.NetworkingV1().NetworkPolicies(ns), name)
}

// members returns the pods (ns_name) in a port group, or nil and false
// when it does not exist.
func (h *harness) members(pg string) ([]string, bool) {
	g, err := nbops.GetPortGroup(h.NB, pg)
	if err != nil {
		return nil, false
	}
	var out []string
	for _, u := range g.Ports {
		lsp := &nbdb.LogicalSwitchPort{UUID: u}
		if err := h.NB.Get(context.Background(), lsp); err == nil {
			out = append(out, lsp.Name)
		}
	}
	slices.Sort(out)
	return out, true
}

// waitMembers waits until pg exists and holds exactly these ports.
func (h *harness) waitMembers(pg string, want ...string) {
	h.t.Helper()
	slices.Sort(want)
	ctltest.WaitFor(h.t, func() error {
		got, ok := h.members(pg)
		if !ok || !slices.Equal(got, want) {
			return fmt.Errorf("port group %s: %v (exists %v), want %v", pg, got, ok, want)
		}
		return nil
	})
}

// waitNoGroup waits until pg does not exist.
func (h *harness) waitNoGroup(pg string) {
	h.t.Helper()
	ctltest.WaitFor(h.t, func() error {
		if got, ok := h.members(pg); ok {
			return fmt.Errorf("port group %s still exists (%v)", pg, got)
		}
		return nil
	})
}

// waitAddrs waits until an address set exists and holds exactly want.
func (h *harness) waitAddrs(name string, want ...string) {
	h.t.Helper()
	slices.Sort(want)
	ctltest.WaitFor(h.t, func() error {
		as, err := nbops.GetAddressSet(h.NB, name)
		if err != nil {
			return err
		}
		if got := slices.Sorted(slices.Values(as.Addresses)); !slices.Equal(got, want) {
			return fmt.Errorf("address set %s: %v, want %v", name, got, want)
		}
		return nil
	})
}

// waitNoSet waits until an address set does not exist.
func (h *harness) waitNoSet(name string) {
	h.t.Helper()
	ctltest.WaitFor(h.t, func() error {
		if as, err := nbops.GetAddressSet(h.NB, name); err == nil {
			return fmt.Errorf("address set %s still exists (%v)", name, as.Addresses)
		}
		return nil
	})
}

// acls returns the ACLs of a port group by id.
func (h *harness) acls(pg string) map[string]*nbdb.ACL {
	out := map[string]*nbdb.ACL{}
	g, err := nbops.GetPortGroup(h.NB, pg)
	if err != nil {
		return out
	}
	for _, u := range g.ACLs {
		a := &nbdb.ACL{UUID: u}
		if err := h.NB.Get(context.Background(), a); err == nil {
			out[a.ExternalIDs[own.IDKey]] = a
		}
	}
	return out
}

// waitACL waits until pg's ACL id satisfies ok (a nil ACL: absent).
func (h *harness) waitACL(pg, id string, ok func(*nbdb.ACL) error) *nbdb.ACL {
	h.t.Helper()
	var a *nbdb.ACL
	ctltest.WaitFor(h.t, func() error {
		a = h.acls(pg)[id]
		return ok(a)
	})
	return a
}

func matchIs(want string) func(*nbdb.ACL) error {
	return func(a *nbdb.ACL) error {
		if a == nil || a.Match != want {
			return fmt.Errorf("ACL %v, want match %q", a, want)
		}
		return nil
	}
}

func absent(a *nbdb.ACL) error {
	if a != nil {
		return fmt.Errorf("ACL %s still there", a.Match)
	}
	return nil
}

func ctxBG() context.Context { return context.Background() }
