// Package status is `kovnctl status`: one pass over the API, NB and SB
// that reports, one line per object, whatever keeps kovn from working —
// no leader, a database out of reach, a node without chassis or gateway,
// a kovn-node whose heartbeat Lease is stale, a pod whose port is not
// installed, rows whose owner is gone. It reads only; every check works
// from what the components record, since kovnctl may run far from the
// nodes.
package status

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/events"
	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/nbview"
	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/sbview"
	"github.com/kovn-io/kovn/go-controller/pkg/node/heartbeat"
)

// Config tunes the checks.
type Config struct {
	// LeaseNamespace/LeaseName: kovn-controller's leader-election Lease
	// (its --lease-namespace and --lease-name).
	LeaseNamespace, LeaseName string
	// Grace is how long a pod may be on its node without an installed
	// port, and a chassis behind NB's nb_cfg, before it is a problem:
	// both are normal for a few seconds.
	Grace time.Duration
	Now   func() time.Time
}

// DefaultConfig matches kovn-controller's defaults.
func DefaultConfig() Config {
	return Config{LeaseNamespace: "kovn-system", LeaseName: "kovn-controller", Grace: 30 * time.Second, Now: time.Now}
}

// Inputs are the sources, each possibly missing with the reason.
type Inputs struct {
	Kube           kubernetes.Interface
	NBAddr, SBAddr string
	NB             *nbview.View
	NBErr          error
	SB             *sbview.View
	SBErr          error
}

// Check is one line of the report.
type Check struct {
	Object  string `json:"object"`
	OK      bool   `json:"ok"`
	Message string `json:"message"`
}

// Report is the result.
type Report struct {
	Checks []Check   `json:"checks"`
	Notes  []string  `json:"notes,omitempty"`
	Time   time.Time `json:"time"`
}

func (r *Report) ok(obj, format string, args ...any) {
	r.Checks = append(r.Checks, Check{Object: obj, OK: true, Message: fmt.Sprintf(format, args...)})
}

func (r *Report) problem(obj, format string, args ...any) {
	r.Checks = append(r.Checks, Check{Object: obj, Message: fmt.Sprintf(format, args...)})
}

// Problems are the failed checks.
func (r *Report) Problems() []Check {
	var out []Check
	for _, c := range r.Checks {
		if !c.OK {
			out = append(out, c)
		}
	}
	return out
}

// cluster is the API state the checks share, listed once.
type cluster struct {
	nodes      []corev1.Node
	pods       []corev1.Pod
	namespaces map[string]bool
	services   map[string]bool
	policies   map[string]*networkingv1.NetworkPolicy
	// leases are kovn-node's heartbeat Leases by name (heartbeat.LeaseName);
	// leaseErr says why they could not be listed.
	leases   map[string]*coordinationv1.Lease
	leaseErr error
	// withChassis are the nodes whose chassis is in SB (filled by the
	// node checks): only there can an unplugged port blame kovn-node.
	withChassis map[string]bool
	// kube reads kovn-controller's Events on pods when a pod needs them
	// (podWarnings); warningsRead says they have been read.
	kube         kubernetes.Interface
	warnings     *events.Warnings
	warningsRead bool
}

// Run performs every check whose inputs are there.
func Run(ctx context.Context, cfg Config, in Inputs) *Report {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Report{Time: cfg.Now()}
	reach(r, "nb", in.NBAddr, in.NBErr)
	reach(r, "sb", in.SBAddr, in.SBErr)
	if in.Kube == nil {
		r.problem("api", "no kubeconfig: leader, nodes, pods and stale rows are not checked")
		return r
	}
	leader(ctx, r, cfg, in.Kube)
	cl, err := list(ctx, in.Kube)
	if err != nil {
		r.problem("api", "cannot list the cluster: %v", err)
		return r
	}
	if cl.leaseErr != nil {
		r.problem("api", "cannot list kovn-node's heartbeat Leases in %s: %v", heartbeat.Namespace, cl.leaseErr)
	}
	if in.NB != nil {
		nodes(r, cfg, cl, in.NB, in.SB)
		pods(ctx, r, cfg, cl, in.NB, in.SB)
		stale(r, cl, in.NB)
	} else {
		// kovn-node's heartbeat needs only the API.
		for i := range cl.nodes {
			obj := "node/" + cl.nodes[i].Name
			if f := nodeHeartbeat(r, cfg, obj, cl.nodes[i].Name, cl); f != "" {
				r.ok(obj, "%s", f)
			}
		}
	}
	return r
}

func reach(r *Report, db, addr string, err error) {
	switch {
	case addr == "":
		r.problem(db, "no address given (--%s or KOVN_%s / OVN_%s_DB)", db, strings.ToUpper(db), strings.ToUpper(db))
	case err != nil:
		r.problem(db, "%s unreachable: %v", addr, err)
	default:
		r.ok(db, "%s reachable", addr)
	}
}

// leader reads the controller's Lease: the holder is the replica writing
// NB; a lease not renewed within its duration means none is.
func leader(ctx context.Context, r *Report, cfg Config, kc kubernetes.Interface) {
	name := cfg.LeaseNamespace + "/" + cfg.LeaseName
	l, err := kc.CoordinationV1().Leases(cfg.LeaseNamespace).Get(ctx, cfg.LeaseName, metav1.GetOptions{})
	if err != nil {
		r.problem("leader", "Lease %s: %v (kovn-controller not running, or running without --leader-elect)", name, err)
		return
	}
	holder := ""
	if l.Spec.HolderIdentity != nil {
		holder = *l.Spec.HolderIdentity
	}
	if holder == "" {
		r.problem("leader", "Lease %s has no holder: no kovn-controller is leading", name)
		return
	}
	if l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
		r.problem("leader", "Lease %s held by %s has no renew time or duration", name, holder)
		return
	}
	age := cfg.Now().Sub(l.Spec.RenewTime.Time)
	dur := time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second
	if age > dur {
		r.problem("leader", "Lease %s held by %s expired %s ago: the leader stopped renewing", name, holder, (age - dur).Round(time.Second))
		return
	}
	r.ok("leader", "%s held by %s, renewed %s ago", name, holder, age.Round(time.Second))
}

func list(ctx context.Context, kc kubernetes.Interface) (*cluster, error) {
	cl := &cluster{namespaces: map[string]bool{}, services: map[string]bool{}, policies: map[string]*networkingv1.NetworkPolicy{},
		withChassis: map[string]bool{}, kube: kc}
	nodes, err := kc.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	cl.nodes = nodes.Items
	pods, err := kc.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	cl.pods = pods.Items
	nss, err := kc.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	for _, n := range nss.Items {
		cl.namespaces[n.Name] = true
	}
	svcs, err := kc.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	for _, s := range svcs.Items {
		cl.services[s.Namespace+"/"+s.Name] = true
	}
	nps, err := kc.NetworkingV1().NetworkPolicies("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	for i := range nps.Items {
		np := &nps.Items[i]
		cl.policies[np.Namespace+"/"+np.Name] = np
	}
	// One list for every node's heartbeat; without it the other checks
	// still run.
	leases, err := kc.CoordinationV1().Leases(heartbeat.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		cl.leaseErr = err
		return cl, nil
	}
	cl.leases = map[string]*coordinationv1.Lease{}
	for i := range leases.Items {
		cl.leases[leases.Items[i].Name] = &leases.Items[i]
	}
	return cl, nil
}

// WriteText prints one line per check, problems marked, then the notes
// and a count.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	for _, c := range r.Checks {
		mark := "ok     "
		if !c.OK {
			mark = "PROBLEM"
		}
		fmt.Fprintf(&b, "%s %s: %s\n", mark, c.Object, c.Message)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note    %s\n", n)
	}
	switch n := len(r.Problems()); n {
	case 0:
		b.WriteString("no problems found\n")
	case 1:
		b.WriteString("1 problem found\n")
	default:
		fmt.Fprintf(&b, "%d problems found\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
