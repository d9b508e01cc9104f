package policy

import (
	"context"
	"maps"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"

	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// External ports are members of policies as if they were pods: a policy's
// podSelector, and a peer's podSelector, match their labels. In the index
// they live beside pods under a key no pod can have (pod names hold no
// ':'), and they have no named ports.

// externalPortIndexKey is an external port's key in the index.
func externalPortIndexKey(ns, name string) string { return ns + "/ep:" + name }

// externalPortChanged: only labels and the address matter to policies.
func externalPortChanged(o, n interface{}) bool {
	a, aok := o.(*unstructured.Unstructured)
	b, bok := n.(*unstructured.Unstructured)
	if !aok || !bok {
		return true
	}
	ai, _, _ := unstructured.NestedStringSlice(a.Object, "status", "ips")
	bi, _, _ := unstructured.NestedStringSlice(b.Object, "status", "ips")
	return !maps.Equal(a.GetLabels(), b.GetLabels()) || !slices.Equal(ai, bi)
}

// syncExternalPort is syncPod for an external port (key: ns/name).
func (c *Controller) syncExternalPort(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil || c.extPorts == nil {
		return nil
	}
	var info *podInfo
	obj, err := c.extPorts.Get(key)
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return err
	default:
		ep, err := kube.ExternalPortFromUnstructured(obj)
		if err != nil {
			return nil // the external port controller reports it
		}
		info = c.externalPortInfo(ep)
	}
	return c.syncMember(ctx, externalPortIndexKey(ns, name), ns, info, "policy members of external port "+key)
}

// externalPortInfo reads an external port's labels, and its address and
// port UUID from its NB port: that is where the address is in effect.
func (c *Controller) externalPortInfo(ep *kube.ExternalPort) *podInfo {
	p := &podInfo{key: externalPortIndexKey(ep.Namespace, ep.Name), ns: ep.Namespace,
		labels: labels.Set(maps.Clone(ep.Labels))}
	if ep.DeletionTimestamp != nil {
		return p
	}
	lsp, err := nbops.GetSwitchPort(c.nb, own.ExternalPortPort(ep.Namespace, ep.Name))
	if err != nil {
		return p
	}
	if ip, ok := nbops.PortIP(lsp); ok && ip.Is4() {
		p.ip, p.lsp = ip, lsp.UUID
	}
	return p
}

// externalPortInfos lists every external port's info, for Start.
func (c *Controller) externalPortInfos() ([]*podInfo, error) {
	if c.extPorts == nil {
		return nil, nil
	}
	objs, err := c.extPorts.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	var out []*podInfo
	for _, o := range objs {
		if ep, err := kube.ExternalPortFromUnstructured(o); err == nil {
			out = append(out, c.externalPortInfo(ep))
		}
	}
	return out, nil
}
