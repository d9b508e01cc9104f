package pod

import (
	"context"
	"net/netip"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"

	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// Start rebuilds the allocators from the pods' annotations and from the
// NB ports together, so that no address is handed out twice after a
// restart, then deletes ports of pods that are gone and addresses that no
// pod holds — in one transaction, and none when nothing is stale.
func (c *Controller) Start(ctx context.Context) error {
	pods, err := c.l.Pods.List(labels.Everything())
	if err != nil {
		return err
	}
	live := map[string]*corev1.Pod{}
	for _, pod := range pods {
		if !wantsPort(pod) {
			continue
		}
		key := pod.Namespace + "/" + pod.Name
		live[key] = pod
		if pn, err := kube.ParsePodNetwork(pod.Annotations[kube.PodNetworkAnnotation]); err == nil && len(pn.Addrs()) > 0 {
			c.reserve(key, pod.Spec.NodeName, pn.Addrs()[0])
		}
	}
	ports := nbops.Owned[nbdb.LogicalSwitchPort](c.nb, own.KindPod)
	var ops []ovsdb.Operation
	for _, lsp := range ports {
		_, key := own.OwnerOf(lsp.ExternalIDs)
		pod, ok := live[key]
		if !ok {
			del, err := nbops.DeleteSwitchPort(c.nb, lsp.Name)
			if err != nil {
				return err
			}
			ops = append(ops, del...)
			continue
		}
		// A port whose pod lost its annotation still holds its address
		// until the pod's sync replaces it; nobody else may take it.
		if ip, ok := nbops.PortIP(lsp); ok {
			c.reserve(key, pod.Spec.NodeName, ip)
		}
	}
	held := map[string]map[string]bool{} // address set → addresses pods hold
	c.mu.Lock()
	for key, a := range c.tracked {
		ns, _, _ := strings.Cut(key, "/")
		set := own.NamespaceAddressSet(ns, family(a.ip))
		if held[set] == nil {
			held[set] = map[string]bool{}
		}
		held[set][a.ip.String()] = true
	}
	c.mu.Unlock()
	// External ports are namespace members too; their controller owns them.
	for _, lsp := range nbops.Owned[nbdb.LogicalSwitchPort](c.nb, own.KindExternalPort) {
		_, key := own.OwnerOf(lsp.ExternalIDs)
		ns, _, _ := strings.Cut(key, "/")
		if ip, ok := nbops.PortIP(lsp); ok {
			set := own.NamespaceAddressSet(ns, family(ip))
			if held[set] == nil {
				held[set] = map[string]bool{}
			}
			held[set][ip.String()] = true
		}
	}
	for _, as := range nbops.Owned[nbdb.AddressSet](c.nb, own.KindNamespace) {
		var stale []string
		for _, a := range as.Addresses {
			if !held[as.Name][a] {
				stale = append(stale, a)
			}
		}
		if len(stale) > 0 {
			rm, err := nbops.AddressSetRemove(c.nb, as.Name, stale...)
			if err != nil {
				return err
			}
			ops = append(ops, rm...)
		}
	}
	return c.tx.Transact(ctx, "stale pod ports and addresses", ops)
}

// reserve records an address a pod already holds.
func (c *Controller) reserve(key, node string, ip netip.Addr) {
	ni, err := c.nodeIPAM(node)
	if err != nil {
		return
	}
	if err := ni.alloc.AllocateStatic(key, ip); err != nil {
		klog.InfoS("address held twice; the pod's sync will report or replace it", "pod", key, "ip", ip, "err", err)
		return
	}
	c.mu.Lock()
	c.tracked[key] = assigned{node: node, ip: ip}
	c.mu.Unlock()
}
