package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/record"

	"github.com/kovn-io/kovn/go-controller/pkg/config"
	"github.com/kovn-io/kovn/go-controller/pkg/controller/queue"
	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
)

// verifyQuiet is how long every queue must stay empty before the pass
// counts as finished: long enough for a sync to enqueue keys of another
// controller.
const verifyQuiet = time.Second

// pending is what a verify pass would have written.
type pending struct {
	rows   client.Client // names the rows operations touch by UUID
	mu     sync.Mutex
	nb     []string // one line per NB transaction
	nbOps  int
	api    []string // one line per API write (Events are not recorded)
	errors int      // failed syncs
}

func (p *pending) recordNB(desc string, ops []ovsdb.Operation) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nbOps += len(ops)
	parts := make([]string, 0, len(ops))
	for _, op := range ops {
		parts = append(parts, p.opSummary(op))
	}
	p.nb = append(p.nb, fmt.Sprintf("%s (%d ops): %s", desc, len(ops), strings.Join(parts, "; ")))
}

func (p *pending) recordAPI(method, path string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.api = append(p.api, method+" "+path)
}

// converged tells whether the pass found nothing to do.
func (p *pending) converged() bool { return len(p.nb) == 0 && len(p.api) == 0 && p.errors == 0 }

func (p *pending) report(w io.Writer) {
	sort.Strings(p.nb)
	sort.Strings(p.api)
	fmt.Fprintf(w, "NB: %d transactions, %d operations to send\n", len(p.nb), p.nbOps)
	for _, l := range p.nb {
		fmt.Fprintln(w, "  "+l)
	}
	fmt.Fprintf(w, "API: %d writes to send\n", len(p.api))
	for _, l := range p.api {
		fmt.Fprintln(w, "  "+l)
	}
	fmt.Fprintf(w, "failed syncs: %d\n", p.errors)
	if p.converged() {
		fmt.Fprintln(w, "converged: NB and the API are what kovn computes from the API")
	}
}

// opSummary names an operation by its table and the row it touches: the
// row's name when it has one (from the operation, or from the NB cache for
// a row picked by UUID), else the operation's conditions.
func (p *pending) opSummary(op ovsdb.Operation) string {
	s := op.Op + " " + op.Table
	if name, ok := op.Row["name"]; ok {
		return s + fmt.Sprintf(" %v", name)
	}
	for _, c := range op.Where {
		if u, ok := c.Value.(ovsdb.UUID); ok && c.Column == "_uuid" && p.rows != nil {
			if name := rowName(p.rows, op.Table, u.GoUUID); name != "" {
				s += " " + name
				continue
			}
		}
		s += fmt.Sprintf(" %s%s%v", c.Column, c.Function, c.Value)
	}
	return s
}

// rowName is the name column of a cached row, or "".
func rowName(c client.Client, table, uuid string) string {
	tc := c.Cache().Table(table)
	if tc == nil {
		return ""
	}
	m := tc.Row(uuid)
	if m == nil {
		return ""
	}
	info, err := c.Cache().DatabaseModel().NewModelInfo(m)
	if err != nil {
		return ""
	}
	v, err := info.FieldByColumn("name")
	if err != nil {
		return ""
	}
	if name, ok := v.(string); ok {
		return name
	}
	return ""
}

// verify runs every controller once against the live API and NB, as the
// leader would after a restart, but with every NB transaction and every
// API write recorded instead of sent (API writes go out as server-side
// dry runs, so admission still checks them). It needs no lease and may run
// beside the replicas. A converged cluster needs nothing: verify then
// prints so and returns nil; otherwise it lists what it would write and
// returns an error.
func verify(ctx context.Context, cfg *config.Controller, w io.Writer, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	p := &pending{}
	cc := kube.ClientConfig{Kubeconfig: cfg.Kubeconfig, QPS: cfg.KubeQPS, Burst: cfg.KubeBurst, UserAgent: "kovn-controller-verify", DryRun: p.recordAPI}
	kc, _, err := kube.NewClientset(cc)
	if err != nil {
		return err
	}
	dc, err := kube.NewDynamic(cc)
	if err != nil {
		return err
	}
	nb, err := nbops.NewClient(ctx, cfg.NBAddresses, nbops.ClientOptions{CertFile: cfg.NBCert, KeyFile: cfg.NBKey, CAFile: cfg.NBCACert})
	if err != nil {
		return fmt.Errorf("connect to NB %v: %w", cfg.NBAddresses, err)
	}
	defer nb.Close()
	p.rows = nb
	// Events say what a controller could not do; they are not state, and
	// a broadcaster without a sink drops them.
	recorder := record.NewBroadcaster().NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kovn-controller-verify"})
	reg := prometheus.NewRegistry()
	_, queues, err := startControllers(ctx, cfg, kc, dc, nb, reg, recorder, nbops.WithDryRun(p.recordNB))
	if err != nil {
		return err
	}
	if !queue.WaitIdle(ctx, verifyQuiet, queues...) {
		return fmt.Errorf("verify: the controllers did not finish within %s", timeout)
	}
	p.errors = failedSyncs(reg)
	cancel()
	p.report(w)
	if !p.converged() {
		return fmt.Errorf("not converged: %d NB transactions, %d API writes, %d failed syncs", len(p.nb), len(p.api), p.errors)
	}
	return nil
}

// failedSyncs reads kovn_controller_syncs_total{result="error"} from reg.
func failedSyncs(reg *prometheus.Registry) int {
	mfs, err := reg.Gather()
	if err != nil {
		return 0
	}
	n := 0
	for _, mf := range mfs {
		if mf.GetName() != "kovn_controller_syncs_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == "error" {
					n += int(m.GetCounter().GetValue())
				}
			}
		}
	}
	return n
}
