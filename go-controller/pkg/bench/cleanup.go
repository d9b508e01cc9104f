package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kovn-io/kovn/go-controller/pkg/lab"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// CleanupResult times the deletion of everything the benchmark made,
// which exercises the controller's teardown paths.
type CleanupResult struct {
	Pods                  int      `json:"pods"`
	Nodes                 int      `json:"nodes"`
	Namespaces            int      `json:"namespaces"`
	APIDeleteSeconds      float64  `json:"apiDeleteSeconds"`      // pod deletes sent → answered
	PortsGoneSeconds      float64  `json:"portsGoneSeconds"`      // pod deletes sent → every pod LSP gone from NB
	NodesGoneSeconds      float64  `json:"nodesGoneSeconds"`      // node deletes sent → node switches and GRs gone
	NamespacesGoneSeconds float64  `json:"namespacesGoneSeconds"` // namespace deletes sent → gone from the API
	LoadBalancers         int      `json:"loadBalancers"`         // of services in the namespaces
	PortGroups            int      `json:"portGroups"`            // of policies and isolations in the namespaces
	ServicesGoneSeconds   float64  `json:"servicesGoneSeconds"`   // namespace deletes sent → their services' LBs gone from NB
	PoliciesGoneSeconds   float64  `json:"policiesGoneSeconds"`   // namespace deletes sent → their policies' port groups gone
	NBTransactions        float64  `json:"nbTransactions"`        // leader's counter over the cleanup
	NBOperations          float64  `json:"nbOperations"`
	LookupWaitSeconds     float64  `json:"lookupWaitSeconds"` // waited out the API server's namespace live-lookup window
	Warnings              []string `json:"warnings,omitempty"`
}

// Cleanup deletes the benchmark's namespaces (pods first, without grace:
// no kubelet would confirm) and simulated nodes, and waits until NB has
// forgotten them. It deletes everything it can even when a wait fails.
func Cleanup(ctx context.Context, l *lab.Lab, cs kubernetes.Interface, timeout time.Duration) (*CleanupResult, error) {
	nss, err := cs.CoreV1().Namespaces().List(ctx, benchSelector())
	if err != nil {
		return nil, err
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, benchSelector())
	if err != nil {
		return nil, err
	}
	res := &CleanupResult{Nodes: len(nodes.Items), Namespaces: len(nss.Items)}
	var ports, nodeRows, routers []string
	for _, ns := range nss.Items {
		pods, err := cs.CoreV1().Pods(ns.Name).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		for _, p := range pods.Items {
			ports = append(ports, own.PodPort(p.Namespace, p.Name))
		}
	}
	res.Pods = len(ports)
	for _, n := range nodes.Items {
		nodeRows = append(nodeRows, own.NodeSwitch(n.Name), own.ExternalSwitch(n.Name))
		routers = append(routers, own.GatewayRouter(n.Name))
	}
	w, err := NewWatcher(ctx, "unix:"+l.NBSocket(), &nbdb.LoadBalancer{}, &nbdb.PortGroup{})
	if err != nil {
		return nil, err
	}
	defer w.Close()
	inBench := map[string]bool{}
	for _, ns := range nss.Items {
		inBench[ns.Name] = true
	}
	lbs := ownedRows(w, nbdb.LoadBalancerTable, inBench, own.KindService)
	pgs := ownedRows(w, nbdb.PortGroupTable, inBench, own.KindNetworkPolicy, own.KindPolicyIsolation)
	res.LoadBalancers, res.PortGroups = len(lbs), len(pgs)
	sc := NewScraper()
	leader, lerr := Leader(ctx, l, cs)
	var before Metrics
	if lerr == nil {
		before, _ = sc.Scrape(ctx, leader)
	}

	var errs []error
	portsWait := w.Expect(nbdb.LogicalSwitchPortTable, ports, true)
	start := time.Now()
	zero := int64(0)
	errs = append(errs, parallel(len(nss.Items), len(nss.Items), func(i int) error {
		return cs.CoreV1().Pods(nss.Items[i].Name).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{})
	}))
	res.APIDeleteSeconds = secs(time.Since(start))
	// Deleting a namespace deletes its services, slices and policies.
	lbWait := w.Expect(nbdb.LoadBalancerTable, lbs, true)
	pgWait := w.Expect(nbdb.PortGroupTable, pgs, true)
	nsStart := time.Now()
	errs = append(errs, parallel(len(nss.Items), len(nss.Items), func(i int) error {
		return cs.CoreV1().Namespaces().Delete(ctx, nss.Items[i].Name, metav1.DeleteOptions{})
	}))
	if err := w.Until(ctx, portsWait, timeout); err != nil {
		errs = append(errs, err)
	} else {
		times, _ := w.Times(portsWait)
		res.PortsGoneSeconds = secs(lastOr(times, start).Sub(start))
	}
	for wt, gone := range map[*Wait]*float64{lbWait: &res.ServicesGoneSeconds, pgWait: &res.PoliciesGoneSeconds} {
		if err := w.Until(ctx, wt, timeout); err != nil {
			errs = append(errs, err)
			continue
		}
		times, _ := w.Times(wt)
		*gone = secs(lastOr(times, nsStart).Sub(nsStart))
	}

	switchWait := w.Expect(nbdb.LogicalSwitchTable, nodeRows, true)
	grWait := w.Expect(nbdb.LogicalRouterTable, routers, true)
	nodeStart := time.Now()
	errs = append(errs, parallel(len(nodes.Items), 16, func(i int) error {
		return cs.CoreV1().Nodes().Delete(ctx, nodes.Items[i].Name, metav1.DeleteOptions{})
	}))
	var last time.Time
	for _, wt := range []*Wait{switchWait, grWait} {
		if err := w.Until(ctx, wt, timeout); err != nil {
			errs = append(errs, err)
			continue
		}
		times, _ := w.Times(wt)
		if t := lastOr(times, nodeStart); t.After(last) {
			last = t
		}
	}
	if !last.IsZero() {
		res.NodesGoneSeconds = secs(last.Sub(nodeStart))
	}
	defer func() { res.LookupWaitSeconds = secs(waitLookupWindow(ctx, nsStart, len(nss.Items))) }()
	if err := waitNamespacesGone(ctx, cs, timeout); err != nil {
		errs = append(errs, err)
	} else {
		res.NamespacesGoneSeconds = secs(time.Since(nsStart))
	}
	if before != nil {
		if after, err := sc.Scrape(ctx, leader); err == nil {
			res.NBTransactions = after.Sum("kovn_nb_transactions_total") - before.Sum("kovn_nb_transactions_total")
			res.NBOperations = after.Sum("kovn_nb_operations_total") - before.Sum("kovn_nb_operations_total")
		}
	} else {
		res.Warnings = append(res.Warnings, fmt.Sprintf("no NB figures: %v", lerr))
	}
	return res, errors.Join(errs...)
}

// ownedRows are the names of rows of table whose owner kind is one of
// kinds and whose owner ("ns/name", or "ns" for a namespace's own rows)
// is in one of namespaces.
func ownedRows(w *Watcher, table string, namespaces map[string]bool, kinds ...string) []string {
	var out []string
	for _, m := range w.Rows(table) {
		kind, owner := own.OwnerOf(externalIDs(m))
		ns, _, _ := strings.Cut(owner, "/")
		if slices.Contains(kinds, kind) && namespaces[ns] {
			out = append(out, rowName(m))
		}
	}
	return out
}

// namespaceLookupTTL is how long kube-apiserver's NamespaceLifecycle
// admission, after a namespace is deleted, looks that name up in etcd on
// every write into it (forceLiveLookupTTL, 30 s) — even once a namespace of
// that name exists again. W1 reuses ns0…ns9, so a run started sooner
// would pay one quorum read per create and per patch.
const namespaceLookupTTL = 31 * time.Second

// waitLookupWindow sleeps until the window opened by namespace deletes
// sent at start has closed, and returns how long it slept.
func waitLookupWindow(ctx context.Context, start time.Time, deleted int) time.Duration {
	left := time.Until(start.Add(namespaceLookupTTL))
	if deleted == 0 || left <= 0 {
		return 0
	}
	select {
	case <-ctx.Done():
	case <-time.After(left):
	}
	return left
}

// lastOr is the latest time, or start when nothing had to go.
func lastOr(times map[string]time.Time, start time.Time) time.Time {
	if t := Last(times); t.After(start) {
		return t
	}
	return start
}

func waitNamespacesGone(ctx context.Context, cs kubernetes.Interface, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		nss, err := cs.CoreV1().Namespaces().List(ctx, benchSelector())
		if err != nil {
			return err
		}
		if len(nss.Items) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d benchmark namespaces still exist after %v (e.g. %s, %s)", len(nss.Items), timeout, nss.Items[0].Name, nss.Items[0].Status.Phase)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (r *CleanupResult) rows() []row {
	rows := []row{
		{"cleanup", fmt.Sprintf("%d pods, %d namespaces, %d nodes", r.Pods, r.Namespaces, r.Nodes)},
		{"  pod deletes answered", fs(r.APIDeleteSeconds)},
		{"  all pod LSPs gone", fs(r.PortsGoneSeconds)},
		{"  service LBs gone (from namespace deletes)", fmt.Sprintf("%s (%d)", fs(r.ServicesGoneSeconds), r.LoadBalancers)},
		{"  policy port groups gone (from namespace deletes)", fmt.Sprintf("%s (%d)", fs(r.PoliciesGoneSeconds), r.PortGroups)},
		{"  node switches and GRs gone", fs(r.NodesGoneSeconds)},
		{"  namespaces gone from the API", fs(r.NamespacesGoneSeconds)},
		{"  NB transactions / operations", fmt.Sprintf("%.0f / %.0f", r.NBTransactions, r.NBOperations)},
		{"  then waited (namespace live lookups)", fs(r.LookupWaitSeconds)},
	}
	for _, w := range r.Warnings {
		rows = append(rows, row{"  WARNING", w})
	}
	return rows
}
