package namespace

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kovn-io/kovn/go-controller/pkg/controller/internal/ctltest"
	"github.com/kovn-io/kovn/go-controller/pkg/controller/queue"
	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// harness is a fake API and an NB database that outlive controller instances.
type harness struct {
	t *testing.T
	*ctltest.Env
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	return &harness{t: t, Env: ctltest.NewEnv(t)}
}

type instance struct {
	*ctltest.Instance
	c *Controller
}

func (h *harness) startNoRun() *instance {
	h.t.Helper()
	i := &instance{Instance: h.NewInstance()}
	nss := i.Factory.Core().V1().Namespaces()
	i.c = New(nss.Lister(), i.NB, i.Tx, 2, queue.NewMetrics(i.Reg))
	i.AddHandler(nss.Informer(), i.c.Queue.Handler())
	i.Start(i.c.Queue, i.c.Start)
	return i
}

func (h *harness) start() *instance {
	h.t.Helper()
	return ctltest.Running(h.startNoRun())
}

func (h *harness) createNamespace(name string, mods ...func(*corev1.Namespace)) {
	h.t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	for _, m := range mods {
		m(ns)
	}
	ctltest.Create(h.t, h.KC.CoreV1().Namespaces(), ns)
}

func (h *harness) deleteNamespace(name string) {
	h.t.Helper()
	ctltest.Delete(h.t, h.KC.CoreV1().Namespaces(), name)
}

// addSet writes an address set directly, as an earlier run (or someone
// else) left it.
func (h *harness) addSet(as *nbdb.AddressSet) {
	h.t.Helper()
	ops, _, err := nbops.EnsureAddressSet(h.NB, as)
	h.Write("test set "+as.Name, ops, err)
}

func nsSet(ns string, addrs ...string) *nbdb.AddressSet {
	return &nbdb.AddressSet{Name: own.NamespaceAddressSet(ns, "v4"), Addresses: addrs, ExternalIDs: own.IDs(own.KindNamespace, ns, "v4")}
}

func (h *harness) waitSet(name string, present bool) *nbdb.AddressSet {
	h.t.Helper()
	var as *nbdb.AddressSet
	ctltest.WaitFor(h.t, func() (err error) {
		as, err = nbops.GetAddressSet(h.NB, name)
		if (err == nil) != present {
			return fmt.Errorf("address set %s: present=%v, want %v (%v)", name, err == nil, present, err)
		}
		return nil
	})
	return as
}
