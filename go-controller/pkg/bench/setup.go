package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kovn-io/kovn/go-controller/pkg/ipam"
	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

func benchSelector() metav1.ListOptions {
	return metav1.ListOptions{LabelSelector: BenchLabel + "=true"}
}

// Preflight refuses to run on top of a previous run's objects or on
// namespaces someone else owns: the figures would not mean anything, and
// cleanup would delete what is not ours.
func Preflight(ctx context.Context, cs kubernetes.Interface) error {
	nss, err := cs.CoreV1().Namespaces().List(ctx, benchSelector())
	if err != nil {
		return err
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, benchSelector())
	if err != nil {
		return err
	}
	if n := len(nss.Items) + len(nodes.Items); n > 0 {
		return fmt.Errorf("%d namespaces and %d nodes of an earlier run are left: run kovn-bench cleanup first", len(nss.Items), len(nodes.Items))
	}
	for j := 0; j < Namespaces; j++ {
		_, err := cs.CoreV1().Namespaces().Get(ctx, NamespaceName(j), metav1.GetOptions{})
		if err == nil {
			return fmt.Errorf("namespace %s exists and is not the benchmark's; W1 needs its name", NamespaceName(j))
		}
		if !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}

// parallel runs f(0…n-1) on up to workers goroutines and returns the
// first error; after one, the remaining items are skipped.
func parallel(n, workers int, f func(i int) error) error {
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		next  = make(chan int)
		stop  = make(chan struct{})
	)
	for w := 0; w < min(workers, n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				// The feeder may hand out one more index after the
				// first error; it must not start.
				select {
				case <-stop:
					continue
				default:
				}
				if err := f(i); err != nil {
					once.Do(func() { first = err; close(stop) })
				}
			}
		}()
	}
feed:
	for i := 0; i < n; i++ {
		// select picks at random among ready cases, so look at stop
		// first: after an error no further index is handed out.
		select {
		case <-stop:
			break feed
		default:
		}
		select {
		case next <- i:
		case <-stop:
			break feed
		}
	}
	close(next)
	wg.Wait()
	return first
}

// SetupNodes creates the simulated nodes and waits until the controller
// recorded every subnet and built every node's switch and gateway router,
// so the pod phase measures pods only.
func SetupNodes(ctx context.Context, cs kubernetes.Interface, w *Watcher, n, writers int, timeout time.Duration) (time.Duration, error) {
	var switches, routers []string
	for i := 0; i < n; i++ {
		switches = append(switches, own.NodeSwitch(SimNodeName(i)))
		routers = append(routers, own.GatewayRouter(SimNodeName(i)))
	}
	lsWait := w.Expect(nbdb.LogicalSwitchTable, switches, false)
	grWait := w.Expect(nbdb.LogicalRouterTable, routers, false)
	start := time.Now()
	err := parallel(n, writers, func(i int) error {
		_, err := cs.CoreV1().Nodes().Create(ctx, SimNode(i), metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("create nodes: %w", err)
	}
	if err := waitSubnets(ctx, cs, n, timeout); err != nil {
		return 0, err
	}
	for _, wt := range []*Wait{lsWait, grWait} {
		if err := w.Until(ctx, wt, timeout); err != nil {
			return 0, fmt.Errorf("node rows: %w", err)
		}
	}
	return time.Since(start), nil
}

func waitSubnets(ctx context.Context, cs kubernetes.Interface, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		nodes, err := cs.CoreV1().Nodes().List(ctx, benchSelector())
		if err != nil {
			return err
		}
		done := 0
		for _, nd := range nodes.Items {
			if nd.Annotations[kube.NodeSubnetsAnnotation] != "" {
				done++
			}
		}
		if done == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d simulated nodes have no %s after %v", n-done, n, kube.NodeSubnetsAnnotation, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// SetupNamespaces creates ns0…ns9 and waits for their address sets, which
// the namespace controller makes before any pod needs them.
func SetupNamespaces(ctx context.Context, cs kubernetes.Interface, w *Watcher, timeout time.Duration) (time.Duration, error) {
	var sets []string
	for j := 0; j < Namespaces; j++ {
		sets = append(sets, own.NamespaceAddressSet(NamespaceName(j), "v4"))
	}
	wt := w.Expect(nbdb.AddressSetTable, sets, false)
	start := time.Now()
	err := parallel(Namespaces, Namespaces, func(j int) error {
		_, err := cs.CoreV1().Namespaces().Create(ctx, NamespaceObj(j), metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("create namespaces: %w", err)
	}
	if err := w.Until(ctx, wt, timeout); err != nil {
		return 0, fmt.Errorf("namespace address sets: %w", err)
	}
	return time.Since(start), nil
}

// CheckCapacity fails fast when a node's subnet cannot hold the pods the
// workload binds to it: those pods would never get a port, and the run
// would only end at its timeout.
func CheckCapacity(ctx context.Context, cs kubernetes.Interface, wl Workload) error {
	perNode := map[string]int{}
	for _, p := range wl.PodList() {
		perNode[p.Node]++
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, benchSelector())
	if err != nil {
		return err
	}
	for _, n := range nodes.Items {
		subnets, err := kube.ParseNodeSubnets(n.Annotations[kube.NodeSubnetsAnnotation])
		if err != nil || len(subnets) == 0 {
			return fmt.Errorf("node %s: no subnet: %v", n.Name, err)
		}
		// The controller's own allocator, so the count matches its view.
		a, err := ipam.NewIPAllocator(subnets[0], ipam.GatewayIP(subnets[0]), ipam.ManagementIP(subnets[0]))
		if err != nil {
			return err
		}
		if want := perNode[n.Name]; want > a.Free() {
			return fmt.Errorf("the workload binds %d pods to %s, whose subnet %s holds %d: use more nodes, or a controller with a shorter --host-subnet-length (ovn-kubernetes defaults to /23)",
				want, n.Name, subnets[0], a.Free())
		}
	}
	return nil
}
