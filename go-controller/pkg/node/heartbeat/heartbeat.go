// Package heartbeat is kovn-node's sign of life: a coordination.k8s.io/v1
// Lease per node, kovn-system/kovn-node-<node>, renewed every 10 s and
// valid for 40 s, as kubelet keeps its node lease. Nothing else kovn-node
// leaves behind changes when it stops (its Node annotation, the chassis,
// the management port, the CNI conflist all stay), so `kovnctl status`
// reads this Lease to tell a running kovn-node from a stopped one.
package heartbeat

import (
	"context"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

const (
	// Namespace holds the Leases.
	Namespace = "kovn-system"
	// Interval is how often kovn-node renews its Lease.
	Interval = 10 * time.Second
	// Duration is the Lease's leaseDurationSeconds: four renewals, so one
	// or two failed renewals (an API server restart) are not a silence.
	Duration = 40 * time.Second

	// ComponentLabel = Component marks every kovn-node Lease, NodeLabel
	// names the node: `kubectl -n kovn-system get leases -l
	// app.kubernetes.io/component=kovn-node -L kovn.io/node`.
	ComponentLabel = "app.kubernetes.io/component"
	Component      = "kovn-node"
	NodeLabel      = "kovn.io/node"
)

// LeaseName is the name of the node's Lease in Namespace.
func LeaseName(node string) string { return "kovn-node-" + node }

// Heartbeat renews one node's Lease. The zero values of Namespace,
// Interval, Duration and Clock mean the package defaults (a real clock).
type Heartbeat struct {
	Client    kubernetes.Interface
	Node      string
	Namespace string
	Interval  time.Duration
	Duration  time.Duration
	Clock     clock.WithTicker
}

// New is the heartbeat of node with the defaults.
func New(kc kubernetes.Interface, node string) *Heartbeat {
	return &Heartbeat{Client: kc, Node: node}
}

func (h *Heartbeat) defaults() Heartbeat {
	c := *h
	if c.Namespace == "" {
		c.Namespace = Namespace
	}
	if c.Interval <= 0 {
		c.Interval = Interval
	}
	if c.Duration <= 0 {
		c.Duration = Duration
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	return c
}

// Run renews the Lease at once, then every Interval until ctx ends; it
// creates the Lease when it is missing (also when deleted meanwhile).
// Errors are logged and retried on the next tick, a conflicting update
// too (the Lease is then read again): they never stop Run, nor the agent.
// When ctx ends Run stops renewing and leaves the Lease as it is, so it
// expires Duration after the last renewal.
func (h *Heartbeat) Run(ctx context.Context) {
	c := h.defaults()
	t := c.Clock.NewTicker(c.Interval)
	defer t.Stop()
	key := c.Namespace + "/" + LeaseName(c.Node)
	klog.InfoS("kovn-node heartbeat started", "node", c.Node, "lease", key, "interval", c.Interval, "duration", c.Duration)
	var last *coordinationv1.Lease // as last written; nil: read it first
	failing := false
	for {
		bctx, cancel := context.WithTimeout(ctx, c.Interval)
		l, err := c.beat(bctx, last)
		cancel()
		switch {
		case ctx.Err() != nil:
			klog.InfoS("kovn-node heartbeat stopped", "node", c.Node, "lease", key)
			return
		case err != nil:
			klog.ErrorS(err, "kovn-node heartbeat: cannot renew the Lease, retrying on the next tick", "node", c.Node, "lease", key)
			failing = true
		case failing:
			klog.InfoS("kovn-node heartbeat: Lease renewed again", "node", c.Node, "lease", key)
			failing = false
		}
		last = l
		select {
		case <-ctx.Done():
			klog.InfoS("kovn-node heartbeat stopped", "node", c.Node, "lease", key)
			return
		case <-t.C():
		}
	}
}

// beat renews the Lease once, starting from last (nil: read it first),
// and returns it as written, or nil after an error (read it again).
func (h *Heartbeat) beat(ctx context.Context, last *coordinationv1.Lease) (*coordinationv1.Lease, error) {
	leases := h.Client.CoordinationV1().Leases(h.Namespace)
	if last == nil {
		l, err := leases.Get(ctx, LeaseName(h.Node), metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return h.create(ctx)
		case err != nil:
			return nil, fmt.Errorf("get: %w", err)
		}
		last = l
	}
	l := last.DeepCopy()
	h.fill(l)
	out, err := leases.Update(ctx, l, metav1.UpdateOptions{FieldManager: Component})
	switch {
	case apierrors.IsNotFound(err): // deleted since the last renewal
		return h.create(ctx)
	case apierrors.IsConflict(err):
		return nil, fmt.Errorf("update: changed by someone else since read: %w", err)
	case err != nil:
		return nil, fmt.Errorf("update: %w", err)
	}
	return out, nil
}

func (h *Heartbeat) create(ctx context.Context) (*coordinationv1.Lease, error) {
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: h.Namespace, Name: LeaseName(h.Node)}}
	h.fill(l)
	out, err := h.Client.CoordinationV1().Leases(h.Namespace).Create(ctx, l, metav1.CreateOptions{FieldManager: Component})
	if err != nil {
		return nil, fmt.Errorf("create: %w", err)
	}
	klog.InfoS("kovn-node heartbeat: created the Lease", "node", h.Node, "lease", h.Namespace+"/"+l.Name)
	return out, nil
}

// fill makes l this node's, renewed now.
func (h *Heartbeat) fill(l *coordinationv1.Lease) {
	now := metav1.NewMicroTime(h.Clock.Now())
	if l.Labels == nil {
		l.Labels = map[string]string{}
	}
	l.Labels[ComponentLabel] = Component
	// A label value has at most 63 characters, a node name up to 253:
	// such a node's Lease goes without the label rather than not at all.
	if len(validation.IsValidLabelValue(h.Node)) == 0 {
		l.Labels[NodeLabel] = h.Node
	}
	if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != h.Node || l.Spec.AcquireTime == nil {
		holder := h.Node
		l.Spec.HolderIdentity = &holder
		l.Spec.AcquireTime = &now
	}
	d := int32(h.Duration / time.Second)
	l.Spec.LeaseDurationSeconds = &d
	l.Spec.RenewTime = &now
}
