package namespace

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kovn-io/kovn/go-controller/pkg/controller/queue"
	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
	"github.com/kovn-io/kovn/go-controller/pkg/testenv"
)

const waitTimeout = 10 * time.Second

// harness is a fake API and an NB database that outlive controller instances.
type harness struct {
	t      *testing.T
	kc     *fake.Clientset
	nbAddr string
	nb     client.Client
	tx     *nbops.Transactor // the test's own writes
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	db := testenv.StartInMemoryNB(t)
	nb := connectNB(t, db.Addr)
	return &harness{t: t, kc: fake.NewClientset(), nbAddr: db.Addr, nb: nb, tx: nbops.NewTransactor(nb, nil)}
}

func connectNB(t *testing.T, addr string) client.Client {
	t.Helper()
	m, err := nbops.ClientDBModel()
	if err != nil {
		t.Fatal(err)
	}
	return testenv.Connect(t, addr, m)
}

type instance struct {
	c    *Controller
	tx   *nbops.Transactor
	reg  *prometheus.Registry
	stop func()
	run  func()
}

func (h *harness) startNoRun() *instance {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	nb := connectNB(h.t, h.nbAddr)
	factory := informers.NewSharedInformerFactory(h.kc, 0)
	nss := factory.Core().V1().Namespaces()
	i := &instance{tx: nbops.NewTransactor(nb, nil), reg: prometheus.NewRegistry()}
	i.c = New(nss.Lister(), nb, i.tx, 2, queue.NewMetrics(i.reg))
	if _, err := nss.Informer().AddEventHandler(i.c.Queue.Handler()); err != nil {
		h.t.Fatal(err)
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	runDone := make(chan struct{})
	var ran bool
	i.stop = sync.OnceFunc(func() {
		if ran {
			waitIdle(i.c.Queue) // see the pod package: rpc2 races on abandoned requests
		}
		cancel()
		if ran {
			<-runDone
		}
		factory.Shutdown()
	})
	h.t.Cleanup(i.stop)
	if err := i.c.Start(ctx); err != nil {
		h.t.Fatalf("Start: %v", err)
	}
	i.run = func() {
		ran = true
		go func() { defer close(runDone); i.c.Queue.Run(ctx) }()
	}
	return i
}

func (h *harness) start() *instance {
	h.t.Helper()
	i := h.startNoRun()
	i.run()
	return i
}

func waitIdle(q *queue.Controller) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	queue.WaitIdle(ctx, 50*time.Millisecond, q)
}

// waitSynced waits for n successful syncs and an idle queue.
func (i *instance) waitSynced(t *testing.T, n int) {
	t.Helper()
	testenv.WaitFor(t, waitTimeout, func() error {
		var ok float64
		mfs, _ := i.reg.Gather()
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if mf.GetName() == "kovn_controller_syncs_total" && l.GetName() == "result" && l.GetValue() == "ok" {
						ok = m.GetCounter().GetValue()
					}
				}
			}
		}
		if ok < float64(n) || i.c.Queue.Len() > 0 || i.c.Queue.Busy() {
			return fmt.Errorf("%v of %d syncs ok, %d queued", ok, n, i.c.Queue.Len())
		}
		return nil
	})
}

func (h *harness) createNamespace(name string, mods ...func(*corev1.Namespace)) {
	h.t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	for _, m := range mods {
		m(ns)
	}
	if _, err := h.kc.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) deleteNamespace(name string) {
	h.t.Helper()
	if err := h.kc.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

// addSet writes an address set directly, as an earlier run (or someone
// else) left it.
func (h *harness) addSet(as *nbdb.AddressSet) {
	h.t.Helper()
	ops, _, err := nbops.EnsureAddressSet(h.nb, as)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.tx.Transact(context.Background(), "test set "+as.Name, ops); err != nil {
		h.t.Fatal(err)
	}
}

func nsSet(ns string, addrs ...string) *nbdb.AddressSet {
	return &nbdb.AddressSet{Name: own.NamespaceAddressSet(ns, "v4"), Addresses: addrs, ExternalIDs: own.IDs(own.KindNamespace, ns, "v4")}
}

func (h *harness) waitSet(name string, present bool) *nbdb.AddressSet {
	h.t.Helper()
	var as *nbdb.AddressSet
	testenv.WaitFor(h.t, waitTimeout, func() (err error) {
		as, err = nbops.GetAddressSet(h.nb, name)
		if (err == nil) != present {
			return fmt.Errorf("address set %s: present=%v, want %v (%v)", name, err == nil, present, err)
		}
		return nil
	})
	return as
}
