package pod

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"

	"github.com/kovn-io/kovn/go-controller/pkg/controller/internal/ctltest"
	"github.com/kovn-io/kovn/go-controller/pkg/controller/namespace"
	"github.com/kovn-io/kovn/go-controller/pkg/controller/node"
	"github.com/kovn-io/kovn/go-controller/pkg/controller/queue"
	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/metrics"
	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/sbdb"
	"github.com/kovn-io/kovn/go-controller/pkg/testenv"
)

// TestControllersWithOVN runs the node, namespace and pod controllers the
// way kovn-controller wires them, against a real ovsdb-server and
// ovn-northd, and checks that northd accepts what they wrote.
func TestControllersWithOVN(t *testing.T) {
	o := testenv.StartOVN(t)
	env := ctltest.NewEnvAt(t, o.NBAddr)
	nb, kc := env.NB, env.KC
	cfg := testConfig()
	tx := nbops.NewTransactor(nb, nil)
	problems := metrics.NewProblems(nil, nil)
	qm := queue.NewMetrics(nil)

	factory := informers.NewSharedInformerFactory(kc, 0)
	core := factory.Core().V1()
	nodeCtl, err := node.New(cfg, kc, core.Nodes().Lister(), nb, tx, problems, qm)
	if err != nil {
		t.Fatal(err)
	}
	podCtl := New(cfg, kc, Listers{Pods: core.Pods().Lister(), Nodes: core.Nodes().Lister(), Namespaces: core.Namespaces().Lister()}, nb, tx, problems, qm)
	nsCtl := namespace.New(core.Namespaces().Lister(), nb, tx, 1, qm)
	if _, err := core.Nodes().Informer().AddEventHandler(nodeCtl.Queue.Handler()); err != nil {
		t.Fatal(err)
	}
	if _, err := core.Pods().Informer().AddEventHandler(podCtl.Handler()); err != nil {
		t.Fatal(err)
	}
	if _, err := core.Namespaces().Informer().AddEventHandler(nsCtl.Queue.Handler()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	for _, start := range []func(context.Context) error{nodeCtl.Start, nsCtl.Start, podCtl.Start} {
		if err := start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	queues := []*queue.Controller{nodeCtl.Queue, nsCtl.Queue, podCtl.Queue}
	done := make(chan struct{}, len(queues))
	for _, q := range queues {
		go func() { q.Run(ctx); done <- struct{}{} }()
	}
	t.Cleanup(func() {
		for _, q := range queues {
			ctltest.WaitIdle(q)
		}
		cancel()
		for range queues {
			<-done
		}
		factory.Shutdown()
	})

	gw := &kube.NodeGateway{ChassisID: "chassis-n1", IP: "172.18.0.2/16", NextHop: "172.18.0.1", MAC: "02:42:ac:12:00:02"}
	if _, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	n1 := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Annotations: map[string]string{kube.NodeGatewayAnnotation: gw.Marshal()}}}
	if _, err := kc.CoreV1().Nodes().Create(ctx, n1, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, cfg: cfg, Env: env, uid: map[string]int{}} // for its pod helpers
	var subnet netip.Prefix
	ctltest.WaitFor(t, func() error {
		n, err := kc.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
		if err != nil {
			return err
		}
		s, err := kube.ParseNodeSubnets(n.Annotations[kube.NodeSubnetsAnnotation])
		if err != nil || len(s) != 1 {
			return fmt.Errorf("no subnet yet: %v", err)
		}
		subnet = s[0]
		_, err = nbops.GetSwitch(nb, "n1")
		return err
	})
	pods := []string{"web-0", "web-1", "db-0"}
	for _, name := range pods {
		h.createPod("demo", name, "n1")
	}
	var ips []string
	for _, name := range pods {
		ip := h.waitReady("demo", name)
		if !subnet.Contains(ip) {
			t.Errorf("%s got %s outside %s", name, ip, subnet)
		}
		ips = append(ips, ip.String())
	}

	// northd turned every logical port into a port binding.
	sb := o.SB(t)
	want := []string{"demo_web-0", "demo_web-1", "demo_db-0", "kovn-mp-n1",
		"rtos-n1", "stos-n1", "rtoj-GR_n1", "jtor-GR_n1", "rtoe-GR_n1", "etor-GR_n1", "lnet-n1",
		"rtoj-kovn_cluster_router", "jtor-kovn_cluster_router"}
	ctltest.WaitFor(t, func() error {
		var pbs []*sbdb.PortBinding
		if err := sb.List(context.Background(), &pbs); err != nil {
			return err
		}
		have := map[string]bool{}
		for _, pb := range pbs {
			have[pb.LogicalPort] = true
		}
		var missing []string
		for _, p := range want {
			if !have[p] {
				missing = append(missing, p)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("no Port_Binding for %v", missing)
		}
		return nil
	})
	for _, line := range strings.Split(o.NorthdLog(t), "\n") {
		if strings.Contains(line, "|ERR|") || strings.Contains(line, "|EMER|") {
			t.Errorf("northd: %s", line)
		}
	}

	routes := o.NBCtl(t, "lr-route-list", "GR_n1")
	if !lineWith(routes, "0.0.0.0/0", "172.18.0.1", "rtoe-GR_n1") {
		t.Errorf("GR_n1 has no default route via 172.18.0.1 out of rtoe-GR_n1:\n%s", routes)
	}
	if !lineWith(routes, "10.128.0.0/14", "100.64.0.1") {
		t.Errorf("GR_n1 has no cluster route via 100.64.0.1:\n%s", routes)
	}
	if nat := o.NBCtl(t, "lr-nat-list", "GR_n1"); !lineWith(nat, "snat", "172.18.0.2", subnet.String()) {
		t.Errorf("GR_n1 has no SNAT of %s to 172.18.0.2:\n%s", subnet, nat)
	}
	if cr := o.NBCtl(t, "lr-route-list", "kovn_cluster_router"); !lineWith(cr, subnet.String(), "src-ip") {
		t.Errorf("cluster router has no src-ip route for %s:\n%s", subnet, cr)
	}
	set := strings.Fields(strings.NewReplacer(`"`, " ", ",", " ", "[", " ", "]", " ").Replace(
		o.NBCtl(t, "--bare", "--columns=addresses", "find", "address_set", "name=kovn_ns_demo_v4")))
	slices.Sort(set)
	slices.Sort(ips)
	if !slices.Equal(set, ips) {
		t.Errorf("address set of demo %v, want %v", set, ips)
	}
	if n := problems.Count("Pod", "NodeSubnetExhausted") + problems.Count("Node", "InvalidGateway"); n != 0 {
		t.Errorf("%v problems reported", n)
	}
}

// lineWith tells whether one line of out contains every word.
func lineWith(out string, words ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		ok := true
		for _, w := range words {
			if !strings.Contains(line, w) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}
