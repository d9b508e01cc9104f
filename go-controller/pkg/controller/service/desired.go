// Package service turns Services and their EndpointSlices into OVN load
// balancers, so that no kube-proxy is needed. docs/services.md describes
// the rows; Desired computes them, the Controller applies them.
package service

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// DefaultAffinityTimeout is Kubernetes' default for sessionAffinity
// ClientIP (3 hours); maxAffinityTimeout is OVN's limit.
const (
	DefaultAffinityTimeout = 10800
	maxAffinityTimeout     = 65535
)

// Inputs are everything one service's rows depend on.
type Inputs struct {
	Service *corev1.Service // nil: the service is gone
	Slices  []*discoveryv1.EndpointSlice
	// Nodes matter only to services with per-node load balancers (a
	// Local traffic policy, or NodePorts with ClientIP affinity:
	// NeedsNodes); the controller fills them in only for those.
	Nodes []Node
}

// Node is what per-node load balancers need to know about a node.
type Node struct {
	Name string
	// Switch: the node's logical switch exists, so a per-node load
	// balancer can be attached to it.
	Switch bool
	// GatewayIP is the node IP, valid only when the node's gateway router
	// exists (per-node NodePort load balancers live there).
	GatewayIP netip.Addr
}

// LB is one desired load balancer and where it must be attached.
type LB struct {
	Row *nbdb.LoadBalancer
	// Group: a member of own.ClusterLBGroup, so on every node switch and
	// gateway router.
	Group    bool
	Switches []string // node switches holding it in load_balancer
	Routers  []string // gateway routers holding it in load_balancer
}

// Problem is bad input in the service: reported, and the rest programmed.
type Problem struct {
	Reason, Message string
}

// Rows are a service's desired load balancers, sorted by name.
type Rows struct {
	LBs      []*LB
	Problems []Problem
}

// HasLoadBalancers tells whether a service gets any load balancer at all:
// headless and ExternalName services are DNS only.
func HasLoadBalancers(svc *corev1.Service) bool {
	return svc != nil && svc.Spec.Type != corev1.ServiceTypeExternalName &&
		svc.Spec.ClusterIP != corev1.ClusterIPNone && svc.Spec.ClusterIP != ""
}

// NeedsNodes tells whether a service has per-node load balancers, whose
// rows change when nodes come, go or change their gateway.
func NeedsNodes(svc *corev1.Service) bool {
	return HasLoadBalancers(svc) && (itpLocal(svc) || hasNodePorts(svc) && (etpLocal(svc) || clientIPAffinity(svc)))
}

func clientIPAffinity(svc *corev1.Service) bool {
	return svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP
}

// nodePortsPerNode tells whether the cluster-wide NodePorts are written as
// one load balancer per node, with the node's IP, instead of the template.
// OVN 23.03's northd builds the affinity flows of a template VIP as if it
// were IPv6 (xxreg0 = ip6.dst, backends without ports), so they never
// match and every connection is balanced anew; with the node IP written
// out, affinity works.
func nodePortsPerNode(svc *corev1.Service) bool {
	return clientIPAffinity(svc) && !etpLocal(svc)
}

func itpLocal(svc *corev1.Service) bool {
	p := svc.Spec.InternalTrafficPolicy
	return p != nil && *p == corev1.ServiceInternalTrafficPolicyLocal
}

func exposesNodePorts(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer
}

func etpLocal(svc *corev1.Service) bool {
	return exposesNodePorts(svc) && svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
}

func hasNodePorts(svc *corev1.Service) bool {
	if !exposesNodePorts(svc) {
		return false
	}
	return slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.NodePort != 0 })
}

// protocols are those OVN load-balances, in the order they are built.
func protocols() []corev1.Protocol {
	return []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP}
}

// Desired computes a service's load balancers: a pure function of in.
func Desired(in Inputs) Rows {
	svc := in.Service
	if !HasLoadBalancers(svc) {
		return Rows{}
	}
	d := &desired{svc: svc, key: svc.Namespace + "/" + svc.Name, lbs: map[string]*LB{}}
	d.parseIPs()
	ports := d.parsePorts()
	eps := d.endpoints(in.Slices)
	for _, proto := range protocols() {
		var pp []svcPort
		for _, p := range ports {
			if p.proto == proto {
				pp = append(pp, p)
			}
		}
		if len(pp) > 0 {
			d.protocol(proto, pp, eps, in.Nodes)
		}
	}
	var r Rows
	for _, name := range slices.Sorted(maps.Keys(d.lbs)) {
		r.LBs = append(r.LBs, d.lbs[name])
	}
	r.Problems = d.problems
	return r
}

// desired holds one computation's state.
type desired struct {
	svc       *corev1.Service
	key       string
	clusterIP []netip.Addr
	external  []netip.Addr // external IPs and load-balancer ingress IPs
	lbs       map[string]*LB
	problems  []Problem
}

func (d *desired) problem(reason, format string, args ...any) {
	p := Problem{Reason: reason, Message: fmt.Sprintf(format, args...)}
	if !slices.Contains(d.problems, p) {
		d.problems = append(d.problems, p)
	}
}

// svcPort is one service port with the numbers that are usable.
type svcPort struct {
	name     string
	proto    corev1.Protocol
	port     int32
	nodePort int32 // 0: none (or not exposed)
}

func (d *desired) parsePorts() []svcPort {
	var out []svcPort
	for _, p := range d.svc.Spec.Ports {
		proto := p.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		if !slices.Contains(protocols(), proto) {
			d.problem("UnsupportedProtocol", "port %q: protocol %q is not TCP, UDP or SCTP; skipped", p.Name, proto)
			continue
		}
		if !validPort(p.Port) {
			d.problem("InvalidPort", "port %q: %d is not in 1-65535; skipped", p.Name, p.Port)
			continue
		}
		if p.TargetPort.IntVal != 0 && !validPort(p.TargetPort.IntVal) {
			// Backends use the EndpointSlice's number, not this one: the
			// slice controller resolves targetPort, and we do not guess.
			d.problem("InvalidTargetPort", "port %q: targetPort %d is not in 1-65535", p.Name, p.TargetPort.IntVal)
		}
		sp := svcPort{name: p.Name, proto: proto, port: p.Port}
		if exposesNodePorts(d.svc) && p.NodePort != 0 {
			if validPort(p.NodePort) {
				sp.nodePort = p.NodePort
			} else {
				d.problem("InvalidNodePort", "port %q: nodePort %d is not in 1-65535; only its cluster VIPs are programmed", p.Name, p.NodePort)
			}
		}
		out = append(out, sp)
	}
	return out
}

func validPort(p int32) bool { return p >= 1 && p <= 65535 }

// parseIPs reads the VIP addresses; kovn serves IPv4 only.
func (d *desired) parseIPs() {
	spec := d.svc.Spec
	cips := spec.ClusterIPs
	if len(cips) == 0 {
		cips = []string{spec.ClusterIP}
	}
	for _, s := range cips {
		d.clusterIP = d.addIP(d.clusterIP, s, "InvalidClusterIP", "clusterIP")
	}
	for _, s := range spec.ExternalIPs {
		d.external = d.addIP(d.external, s, "InvalidExternalIP", "externalIP")
	}
	for _, ing := range d.svc.Status.LoadBalancer.Ingress {
		if ing.IP == "" {
			continue // a hostname-only ingress has nothing to program
		}
		if ing.IPMode != nil && *ing.IPMode == corev1.LoadBalancerIPModeProxy {
			// The load balancer proxies to the nodes itself; like
			// kube-proxy, do not capture its IP inside the cluster.
			continue
		}
		d.external = d.addIP(d.external, ing.IP, "InvalidLoadBalancerIP", "load-balancer ingress IP")
	}
}

func (d *desired) addIP(to []netip.Addr, s, reason, what string) []netip.Addr {
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil || a.Zone() != "":
		d.problem(reason, "%s %q is not an IP address; skipped", what, s)
	case !a.Unmap().Is4():
		d.problem("IPv6Unsupported", "%s %s skipped: the cluster is IPv4-only", what, s)
	case !slices.Contains(to, a.Unmap()):
		to = append(to, a.Unmap())
	}
	return to
}

// endpoint is one backend address of one service port.
type endpoint struct {
	addr                        string // "ip:port"
	node                        string
	ready, serving, terminating bool
}

type portKey struct {
	name  string
	proto corev1.Protocol
}

// endpoints collects each service port's backends from the slices: the
// port number comes from the slice's own port of that name and protocol,
// so a named targetPort may resolve to different numbers in different
// slices. Only the first address of an endpoint counts, as in kube-proxy.
func (d *desired) endpoints(in []*discoveryv1.EndpointSlice) map[portKey][]endpoint {
	out := map[portKey][]endpoint{}
	for _, es := range in {
		if es.AddressType != discoveryv1.AddressTypeIPv4 {
			// IPv6 backends can only serve IPv6 VIPs, already reported;
			// FQDN slices are not a kube-proxy input either.
			continue
		}
		for _, sp := range es.Ports {
			if sp.Port == nil {
				continue // "all ports": not meaningful for a service port
			}
			pk := portKey{proto: corev1.ProtocolTCP}
			if sp.Name != nil {
				pk.name = *sp.Name
			}
			if sp.Protocol != nil {
				pk.proto = *sp.Protocol
			}
			if !validPort(*sp.Port) {
				d.problem("InvalidTargetPort", "EndpointSlice %s port %q: %d is not in 1-65535; skipped", es.Name, pk.name, *sp.Port)
				continue
			}
			for _, ep := range es.Endpoints {
				if e, ok := newEndpoint(ep, *sp.Port); ok {
					out[pk] = append(out[pk], e)
				}
			}
		}
	}
	return out
}

func newEndpoint(ep discoveryv1.Endpoint, port int32) (endpoint, bool) {
	if len(ep.Addresses) == 0 {
		return endpoint{}, false
	}
	a, err := netip.ParseAddr(ep.Addresses[0])
	if err != nil || !a.Unmap().Is4() {
		return endpoint{}, false
	}
	c := ep.Conditions
	e := endpoint{
		addr:        netip.AddrPortFrom(a.Unmap(), uint16(port)).String(),
		ready:       c.Ready == nil || *c.Ready,
		serving:     c.Serving == nil || *c.Serving,
		terminating: c.Terminating != nil && *c.Terminating,
	}
	if ep.NodeName != nil {
		e.node = *ep.NodeName
	}
	return e, true
}

// backends picks, among eps that pass keep, the ready ones or, when none
// is ready, the serving and terminating ones (so connections drain to
// pods shutting down rather than fail); deduplicated and sorted, since
// the value is compared as a string.
func backends(eps []endpoint, keep func(endpoint) bool) string {
	var ready, fallback []string
	for _, e := range eps {
		if !keep(e) {
			continue
		}
		if e.ready {
			ready = append(ready, e.addr)
		} else if e.serving && e.terminating {
			fallback = append(fallback, e.addr)
		}
	}
	pick := ready
	if len(pick) == 0 {
		pick = fallback
	}
	slices.Sort(pick)
	return strings.Join(slices.Compact(pick), ",")
}

func all(endpoint) bool { return true }

func onNode(node string) func(endpoint) bool {
	return func(e endpoint) bool { return e.node == node }
}

func vip(a netip.Addr, port int32) string { return netip.AddrPortFrom(a, uint16(port)).String() }

// protocol builds the load balancers of one protocol.
func (d *desired) protocol(proto corev1.Protocol, ports []svcPort, eps map[portKey][]endpoint, nodes []Node) {
	ns, name, p := d.svc.Namespace, d.svc.Name, string(proto)
	cluster := d.lb(own.ServiceLB(ns, name, p), own.ServiceLBID(p), proto, nil)
	cluster.Group = true
	tmpl := d.lb(own.ServiceNodePortLB(ns, name, p), own.ServiceNodePortLBID(p), proto,
		map[string]string{"template": "true", "address-family": "ipv4"})
	tmpl.Group = true
	for _, sp := range ports {
		pe := eps[portKey{sp.name, proto}]
		be := backends(pe, all)
		if !itpLocal(d.svc) {
			for _, a := range d.clusterIP {
				cluster.Row.Vips[vip(a, sp.port)] = be
			}
		}
		for _, a := range d.external {
			cluster.Row.Vips[vip(a, sp.port)] = be
		}
		if sp.nodePort != 0 && !etpLocal(d.svc) && !nodePortsPerNode(d.svc) {
			tmpl.Row.Vips[own.NodeIPTemplateVIP(sp.nodePort)] = be
		}
	}
	d.keep(cluster, tmpl)
	for _, n := range nodes {
		d.nodeLBs(proto, ports, eps, n)
	}
}

// nodeLBs builds one node's load balancers: NodePorts of ClientIP-affinity
// services, and those of the Local policies.
func (d *desired) nodeLBs(proto corev1.Protocol, ports []svcPort, eps map[portKey][]endpoint, n Node) {
	ns, name, p := d.svc.Namespace, d.svc.Name, string(proto)
	if nodePortsPerNode(d.svc) && n.GatewayIP.Is4() {
		// Where the template would apply with this node's IP: its
		// gateway router and, for its own pods, its switch.
		np := d.lb(own.ServiceNodePortNodeLB(ns, name, p, n.Name), own.ServiceNodePortNodeLBID(p, n.Name), proto, nil)
		np.Routers = []string{own.GatewayRouter(n.Name)}
		if n.Switch {
			np.Switches = []string{own.NodeSwitch(n.Name)}
		}
		for _, sp := range ports {
			if sp.nodePort != 0 {
				np.Row.Vips[vip(n.GatewayIP, sp.nodePort)] = backends(eps[portKey{sp.name, proto}], all)
			}
		}
		d.keep(np)
	}
	if etpLocal(d.svc) && n.GatewayIP.Is4() {
		// On the gateway router for traffic from outside, and on the
		// node switch for the node's own pods, which would otherwise
		// reach it through the router and get replies they cannot match.
		local := d.lb(own.ServiceLocalLB(ns, name, p, n.Name), own.ServiceLocalLBID(p, n.Name), proto,
			map[string]string{"skip_snat": "true"})
		local.Routers = []string{own.GatewayRouter(n.Name)}
		if n.Switch {
			local.Switches = []string{own.NodeSwitch(n.Name)}
		}
		for _, sp := range ports {
			if sp.nodePort != 0 {
				local.Row.Vips[vip(n.GatewayIP, sp.nodePort)] = backends(eps[portKey{sp.name, proto}], onNode(n.Name))
			}
		}
		d.keep(local)
	}
	if itpLocal(d.svc) && n.Switch {
		local := d.lb(own.ServiceITPLocalLB(ns, name, p, n.Name), own.ServiceITPLocalLBID(p, n.Name), proto, nil)
		local.Switches = []string{own.NodeSwitch(n.Name)}
		for _, sp := range ports {
			for _, a := range d.clusterIP {
				local.Row.Vips[vip(a, sp.port)] = backends(eps[portKey{sp.name, proto}], onNode(n.Name))
			}
		}
		d.keep(local)
	}
}

// lb starts a load balancer with the options every one of a service has.
func (d *desired) lb(name, id string, proto corev1.Protocol, extra map[string]string) *LB {
	opts := map[string]string{
		// Applies only to VIPs without backends: a client gets a TCP
		// reset or ICMP unreachable at once instead of a timeout.
		"reject": "true",
		"event":  "false",
	}
	if t, ok := d.affinity(); ok {
		opts["affinity_timeout"] = strconv.Itoa(t)
	}
	maps.Copy(opts, extra)
	lp := strings.ToLower(string(proto))
	return &LB{Row: &nbdb.LoadBalancer{
		Name:     name,
		Protocol: &lp,
		// Backends are chosen by a hash of these fields while OVS
		// translates the flow, not by the datapath's dp_hash, which costs
		// one more recirculation. The userspace datapath drops a packet
		// after 6: a NodePort answered by a backend on the same node
		// (gateway router NAT and load balancing, then the pod's switch)
		// needs every one it can save.
		SelectionFields: []string{nbdb.LoadBalancerSelectionFieldsIPSrc, nbdb.LoadBalancerSelectionFieldsIPDst,
			nbdb.LoadBalancerSelectionFieldsTpSrc, nbdb.LoadBalancerSelectionFieldsTpDst},
		Vips:        map[string]string{},
		Options:     opts,
		ExternalIDs: own.IDs(own.KindService, d.key, id),
	}}
}

// keep records the load balancers that have VIPs; one without any is not
// wanted (and deleted if it exists).
func (d *desired) keep(lbs ...*LB) {
	for _, lb := range lbs {
		if len(lb.Row.Vips) > 0 {
			d.lbs[lb.Row.Name] = lb
		}
	}
}

func (d *desired) affinity() (int, bool) {
	if !clientIPAffinity(d.svc) {
		return 0, false
	}
	t := DefaultAffinityTimeout
	if c := d.svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
		t = int(*c.ClientIP.TimeoutSeconds)
	}
	if t > maxAffinityTimeout {
		d.problem("AffinityTimeoutTooLong", "sessionAffinityConfig timeout %ds is above OVN's maximum; using %ds", t, maxAffinityTimeout)
		t = maxAffinityTimeout
	}
	if t < 1 {
		t = DefaultAffinityTimeout
	}
	return t, true
}
