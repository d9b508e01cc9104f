package show

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/tree"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// Service shows a service's load balancers: VIPs and backends, options,
// and what makes them apply (the cluster load balancer group, or the
// node switches and gateway routers holding a per-node one).
func (s *Shower) Service(ctx context.Context, ns, name string) (*tree.Node, error) {
	root := tree.New("Service", ns+"/"+name)
	if s.Kube != nil {
		svc, err := s.Kube.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
		if apiState(root, true, err) {
			serviceFacts(root, svc)
		}
	} else {
		apiState(root, false, nil)
	}
	key := ns + "/" + name
	var lbs []*nbdb.LoadBalancer
	for _, lb := range s.NB.LBs {
		if kind, owner := own.OwnerOf(lb.ExternalIDs); kind == own.KindService && owner == key {
			lbs = append(lbs, lb)
		}
	}
	if len(lbs) == 0 {
		root.Set("nb", "no load balancers (headless and ExternalName services have none; otherwise kovn-controller has not programmed it)")
	}
	for _, lb := range lbs {
		s.loadBalancer(root, lb)
	}
	return root, nil
}

func serviceFacts(n *tree.Node, svc *corev1.Service) {
	n.Set("type", string(svc.Spec.Type)).Set("clusterIPs", svc.Spec.ClusterIPs).Set("externalIPs", svc.Spec.ExternalIPs)
	var ports []string
	for _, p := range svc.Spec.Ports {
		s := fmt.Sprintf("%d/%s → %s", p.Port, p.Protocol, p.TargetPort.String())
		if p.Name != "" {
			s = p.Name + " " + s
		}
		if p.NodePort != 0 {
			s += fmt.Sprintf(" (nodePort %d)", p.NodePort)
		}
		ports = append(ports, s)
	}
	n.Set("ports", ports)
	if svc.Spec.ExternalTrafficPolicy != "" && svc.Spec.Type != corev1.ServiceTypeClusterIP {
		n.Set("externalTrafficPolicy", string(svc.Spec.ExternalTrafficPolicy))
	}
	if p := svc.Spec.InternalTrafficPolicy; p != nil && *p != corev1.ServiceInternalTrafficPolicyCluster {
		n.Set("internalTrafficPolicy", string(*p))
	}
	if svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		n.Set("sessionAffinity", "ClientIP")
	}
}

func (s *Shower) loadBalancer(parent *tree.Node, lb *nbdb.LoadBalancer) {
	n := parent.Child("Load_Balancer", lb.Name).Set("uuid", lb.UUID)
	if lb.Protocol != nil {
		n.Set("protocol", *lb.Protocol)
	}
	var vips []string
	for _, vip := range slices.Sorted(maps.Keys(lb.Vips)) {
		backends := lb.Vips[vip]
		if backends == "" {
			backends = "(no backends: rejected)"
		}
		vips = append(vips, vip+" → "+strings.ReplaceAll(backends, ",", ", "))
	}
	n.Set("vips", vips).Set("options", lb.Options).Set("external_ids", lb.ExternalIDs)
	for _, g := range s.NB.GroupsWithLB(lb.UUID) {
		n.Child("Load_Balancer_Group", g.Name).
			Set("switches", s.NB.SwitchesWithGroup(g.UUID)).Set("routers", s.NB.RoutersWithGroup(g.UUID))
	}
	n.Set("switches", s.NB.SwitchesWithLB(lb.UUID)).Set("routers", s.NB.RoutersWithLB(lb.UUID))
	if len(n.Children) == 0 && len(s.NB.SwitchesWithLB(lb.UUID)) == 0 && len(s.NB.RoutersWithLB(lb.UUID)) == 0 {
		n.Set("note", "referenced by no group, switch or router: it applies nowhere")
	}
}
