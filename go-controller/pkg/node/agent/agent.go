// Package agent is kovn-node: it configures the host's OVS for OVN, moves
// the node IP onto br-ex, sets up the management port, publishes the node's
// gateway for the controller, installs the CNI plugin and serves CNI, and
// keeps the node's heartbeat Lease (pkg/node/heartbeat) while it serves.
package agent

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/kovn-io/kovn/go-controller/pkg/cni"
	"github.com/kovn-io/kovn/go-controller/pkg/config"
	"github.com/kovn-io/kovn/go-controller/pkg/ipam"
	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/node/gateway"
	"github.com/kovn-io/kovn/go-controller/pkg/node/heartbeat"
	"github.com/kovn-io/kovn/go-controller/pkg/node/hostnet"
	"github.com/kovn-io/kovn/go-controller/pkg/node/ovs"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// Management port: the host's way into the pod network without NAT.
const mgmtPortName = "kovn-mp0"

// Run runs the agent until ctx ends. m (from NewMetrics; nil for none)
// receives the agent's metrics and readiness.
func Run(ctx context.Context, cfg *config.Node, kc kubernetes.Interface, m *Metrics) error {
	if m == nil {
		m = NewMetrics(nil)
	}
	o, err := ovs.Connect(ctx, cfg.OVSDB)
	if err != nil {
		return fmt.Errorf("local OVS %s: %w", cfg.OVSDB, err)
	}
	defer o.Close()
	m.ovs.Store(o)
	defer m.ovs.Store(nil)

	factory := informers.NewSharedInformerFactoryWithOptions(kc, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", cfg.NodeName).String()
		}))
	pods := factory.Core().V1().Pods()
	waiter := newPodWaiter(pods.Lister())
	if _, err := pods.Informer().AddEventHandler(waiter.handler()); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())

	if err := setupChassis(ctx, cfg, o); err != nil {
		return err
	}
	gw, err := setupGateway(ctx, cfg, o)
	if err != nil {
		return err
	}
	chassisID, err := o.ChassisID(ctx)
	if err != nil {
		return err
	}
	// The agent may start before kubelet registered the Node.
	if _, err := waitNode(ctx, kc, cfg.NodeName, func(*corev1.Node) bool { return true }); err != nil {
		return err
	}
	if !gw.NextHop.IsValid() {
		// The route is gone (OVS bounced br-ex) after an earlier run moved
		// it: the next hop is the one that run published.
		if gw.NextHop, err = publishedNextHop(ctx, kc, cfg.NodeName); err != nil {
			return err
		}
	}
	if err := publishGateway(ctx, kc, cfg.NodeName, chassisID, gw, cfg.GatewayInterface); err != nil {
		return err
	}
	var subnet netip.Prefix
	if cfg.Mode == "overlay" {
		// Underlay mode has no node subnet and no management port: pods
		// are on the physical network, which the host reaches directly.
		if subnet, err = waitNodeSubnet(ctx, kc, cfg.NodeName); err != nil {
			return err
		}
		if err := setupManagementPort(ctx, cfg, o, subnet); err != nil {
			return err
		}
	}
	changes, err := hostnet.Changes(ctx)
	if err != nil {
		return err
	}
	// OVS may bounce kovn-mp0 right after it was configured, taking its
	// connected route along: restore until it holds, woken by the kernel's
	// change reports.
	restore := hostRestorer(cfg, gw, subnet)
	deadline := time.After(30 * time.Second)
	for err := restore(); err != nil; err = restore() {
		select {
		case <-changes:
		case <-time.After(500 * time.Millisecond):
		case <-deadline:
			return fmt.Errorf("host routes: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	go keepHostNetwork(ctx, cfg, o, gw, restore, changes)
	startFlowPurger(ctx, cfg, m)
	if err := removeStalePorts(ctx, o, pods.Lister()); err != nil {
		klog.ErrorS(err, "start-up cleanup of pod ports")
	}
	h := newCNIHandler(cfg, o, waiter, m)
	srv := cni.NewServer(cfg.SocketPath, h, cni.ServerOptions{Metrics: m.cni, AddTimeout: cfg.AnnotationTimeout + cfg.InstallTimeout + 10*time.Second})
	if err := srv.Listen(); err != nil {
		return err
	}
	// The runtime calls the network ready when the conflist appears: only
	// once the socket answers.
	if err := installCNI(cfg); err != nil {
		return err
	}
	klog.InfoS("kovn-node ready", "node", cfg.NodeName, "chassis", chassisID, "subnet", subnet, "gateway", gw.IP)
	m.serving.Store(true)
	defer m.serving.Store(false)
	// From here, where /readyz turns ready, until Run returns, the node's
	// Lease says kovn-node is alive (kovnctl status reads it).
	hbCtx, stopHeartbeat := context.WithCancel(ctx)
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		heartbeat.New(kc, cfg.NodeName).Run(hbCtx)
	}()
	defer func() { stopHeartbeat(); <-hbDone }()
	return srv.Serve(ctx)
}

// setupChassis writes what ovn-controller needs to register the chassis.
func setupChassis(ctx context.Context, cfg *config.Node, o *ovs.Client) error {
	systemID := cfg.SystemID
	if systemID == "" {
		if id, err := o.ChassisID(ctx); err == nil && id != "" {
			systemID = id
		} else {
			systemID = cfg.NodeName
		}
	}
	encapIP := cfg.EncapIP
	if encapIP == "" {
		if g, err := hostnet.ReadGateway(cfg.GatewayInterface); err == nil {
			encapIP = g.IP.Addr().String()
		} else if g, err := hostnet.ReadGateway("br-ex"); err == nil {
			encapIP = g.IP.Addr().String() // a restart: the address already moved
		} else {
			return fmt.Errorf("no --encap-ip and no address on %s or br-ex", cfg.GatewayInterface)
		}
	}
	return o.EnsureChassis(ctx, ovs.ChassisConfig{
		SystemID: systemID, Hostname: cfg.NodeName, OVNRemote: cfg.OVNRemote,
		EncapType: "geneve", EncapIP: encapIP,
		BridgeMappings: own.PhysicalNetwork + ":br-ex", DatapathType: cfg.DatapathType,
	})
}

// setupGateway moves the NIC into br-ex, with its addresses and routes.
func setupGateway(ctx context.Context, cfg *config.Node, o *ovs.Client) (*hostnet.Gateway, error) {
	nic, err := hostnet.WaitLink(cfg.GatewayInterface, 5*time.Second)
	if err != nil {
		return nil, err
	}
	// br-ex keeps the NIC's MAC, so neighbours' ARP caches stay right.
	other := map[string]string{"hwaddr": nic.Attrs().HardwareAddr.String()}
	if err := o.EnsureBridge(ctx, "br-ex", cfg.DatapathType, other); err != nil {
		return nil, err
	}
	if err := o.EnsureSystemPort(ctx, "br-ex", cfg.GatewayInterface); err != nil {
		return nil, err
	}
	if _, err := hostnet.WaitLink("br-ex", 10*time.Second); err != nil {
		return nil, err
	}
	// Read the next hop before the move: OVS may bounce br-ex right after,
	// and the kernel then drops the route that was just moved onto it.
	// It is also recorded on br-ex, which outlives this process: a run
	// that stops between the move and publishing the gateway leaves the
	// node with no default route anywhere, and the next run finds the
	// next hop there (before this, it crash-looped on such a node).
	nextHop := hostnet.DefaultNextHop(cfg.GatewayInterface)
	if nextHop.IsValid() {
		if err := o.SetBridgeExternalIDs(ctx, "br-ex", map[string]string{nextHopKey: nextHop.String()}); err != nil {
			return nil, err
		}
	}
	if err := hostnet.MoveAddresses(cfg.GatewayInterface, "br-ex"); err != nil {
		return nil, err
	}
	if cfg.DatapathType == "netdev" {
		if err := hostnet.IsolateNIC(cfg.GatewayInterface); err != nil {
			return nil, fmt.Errorf("isolate %s from the host stack: %w", cfg.GatewayInterface, err)
		}
	}
	gw, err := hostnet.ReadGateway("br-ex")
	if err != nil {
		return nil, err
	}
	// The tap behind br-ex may still carry its random MAC until
	// ovs-vswitchd applies hwaddr; the MAC the gateway router must share
	// is the one br-ex is configured with, not the one seen this instant.
	gw.MAC = nic.Attrs().HardwareAddr
	if !gw.NextHop.IsValid() {
		gw.NextHop = nextHop
	}
	if !gw.NextHop.IsValid() {
		recorded, err := o.BridgeExternalID(ctx, "br-ex", nextHopKey)
		if err != nil {
			return nil, err
		}
		if a, err := netip.ParseAddr(recorded); err == nil {
			gw.NextHop = a
		}
	}
	return gw, nil
}

// nextHopKey is the br-ex external_ids key that keeps the host's default
// next hop across kovn-node restarts.
const nextHopKey = "kovn.io/next-hop"

// publishGateway records the chassis and gateway on the Node.
func publishGateway(ctx context.Context, kc kubernetes.Interface, node, chassisID string, gw *hostnet.Gateway, nic string) error {
	val := (&kube.NodeGateway{ChassisID: chassisID, IP: gw.IP.String(), NextHop: gw.NextHop.String(), MAC: gw.MAC.String(), Interface: nic}).Marshal()
	n, err := kc.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if n.Annotations[kube.NodeGatewayAnnotation] == val {
		return nil
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, kube.NodeGatewayAnnotation, val)
	_, err = kc.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: "kovn-node"})
	return err
}

// waitNodeSubnet waits for the controller to record the node's subnet.
func waitNodeSubnet(ctx context.Context, kc kubernetes.Interface, node string) (netip.Prefix, error) {
	n, err := waitNode(ctx, kc, node, func(n *corev1.Node) bool {
		s, err := kube.ParseNodeSubnets(n.Annotations[kube.NodeSubnetsAnnotation])
		return err == nil && len(s) > 0
	})
	if err != nil {
		return netip.Prefix{}, err
	}
	s, _ := kube.ParseNodeSubnets(n.Annotations[kube.NodeSubnetsAnnotation])
	return s[0], nil
}

// waitNode watches the Node until ok(node) holds.
func waitNode(ctx context.Context, kc kubernetes.Interface, node string, ok func(*corev1.Node) bool) (*corev1.Node, error) {
	sel := fields.OneTermEqualSelector("metadata.name", node).String()
	for {
		list, err := kc.CoreV1().Nodes().List(ctx, metav1.ListOptions{FieldSelector: sel})
		if err != nil {
			return nil, err
		}
		if len(list.Items) == 1 && ok(&list.Items[0]) {
			return &list.Items[0], nil
		}
		klog.InfoS("waiting for the Node", "node", node)
		w, err := kc.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{FieldSelector: sel, ResourceVersion: list.ResourceVersion})
		if err != nil {
			return nil, err
		}
		for ev := range w.ResultChan() {
			if n, isNode := ev.Object.(*corev1.Node); isNode && ok(n) {
				w.Stop()
				return n, nil
			}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
}

// setupManagementPort plugs kovn-mp0 into br-int as the node's management
// port and routes the cluster CIDR through it.
func setupManagementPort(ctx context.Context, cfg *config.Node, o *ovs.Client, subnet netip.Prefix) error {
	mgmt := ipam.ManagementIP(subnet)
	ids := map[string]string{"iface-id": own.ManagementPort(cfg.NodeName)}
	// br-int is ovn-controller's to create (fail-mode secure, its datapath
	// type); until it has, adding the port fails. Start-up only.
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := o.AddInternalPort(ctx, "br-int", mgmtPortName, ids, ipam.MACFromIP(mgmt).String())
		if err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("management port (is ovn-controller running and has it created br-int?): %w", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, err := hostnet.WaitLink(mgmtPortName, 10*time.Second); err != nil {
		return err
	}
	if err := hostnet.ManagementPort(mgmtPortName, netip.PrefixFrom(mgmt, subnet.Bits()), cfg.MTU); err != nil {
		return err
	}
	if err := hostnet.EnableForwarding(); err != nil {
		return err
	}
	return hostnet.EnsureHostPortMasquerade(mgmtPortName)
}

// hostRestorer re-applies what the agent owns on the host network: the
// management port's address and the routes — the default route through
// br-ex, the cluster and service CIDRs through the management port.
func hostRestorer(cfg *config.Node, gw *hostnet.Gateway, subnet netip.Prefix) func() error {
	rs := []hostnet.Route{{Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: gw.NextHop, Dev: "br-ex"}}
	if !subnet.IsValid() { // underlay mode
		return func() error { return hostnet.EnsureRoutes(rs) }
	}
	// Service ClusterIPs too: the node switch's load balancers answer them,
	// so the host (and hostNetwork pods) reach Services without kube-proxy.
	for _, c := range append(slices.Clone(cfg.ClusterCIDRs), cfg.ServiceCIDRs...) {
		rs = append(rs, hostnet.Route{Dst: c, Via: ipam.GatewayIP(subnet), Dev: mgmtPortName})
	}
	mgmt := netip.PrefixFrom(ipam.ManagementIP(subnet), subnet.Bits())
	return func() error {
		if err := hostnet.ManagementPort(mgmtPortName, mgmt, cfg.MTU); err != nil {
			return err
		}
		return hostnet.EnsureRoutes(rs)
	}
}

// startFlowPurger runs the datapath flow purger on the userspace datapath,
// where OVS 3.1 can keep a stale flow after a policy change (see
// ovs.FlowPurger).
func startFlowPurger(ctx context.Context, cfg *config.Node, m *Metrics) {
	if cfg.DatapathType != "netdev" {
		return
	}
	purger := &ovs.FlowPurger{Bridge: "br-int", Quiet: 50 * time.Millisecond, MaxDelay: 250 * time.Millisecond,
		Every: cfg.FlowPurgeInterval, Purged: m.flowPurged}
	go purger.Run(ctx)
}

// hideCTZeroSNAT keeps ovn-controller from asking the userspace datapath
// for all-zero SNAT commits, which crash OVS 3.1's userspace conntrack (see
// ovs.HideCTZeroSNAT). ovs-vswitchd restores the capability when it
// restarts, hence the repetition.
func hideCTZeroSNAT(ctx context.Context, o *ovs.Client) {
	changed, err := o.HideCTZeroSNAT(ctx, "netdev")
	switch {
	case err != nil && ctx.Err() == nil:
		klog.ErrorS(err, "hide ct_zero_snat from ovn-controller")
	case changed:
		klog.InfoS("told ovn-controller the netdev datapath has no all-zero SNAT (OVS 3.1 userspace conntrack aborts on it)")
	}
}

// keepHostNetwork keeps the host's routes and br-ex's shared-gateway flows
// in place, and on the userspace datapath the ct_zero_snat override. Routes come back the moment the kernel reports a change: it
// drops every route through a device that goes down, which OVS's userspace
// datapath does to its taps when it reconfigures. Flows are checked every
// 2 s: ovs-vswitchd forgets them when it restarts, and the patch port to
// OVN appears (and gets a new number) only once the gateway router exists.
func keepHostNetwork(ctx context.Context, cfg *config.Node, o *ovs.Client, gw *hostnet.Gateway, restore func() error, changes <-chan struct{}) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	flows := func() {
		if cfg.Mode == "underlay" {
			if err := gateway.RemoveFlows(ctx, "", "br-ex"); err != nil && ctx.Err() == nil {
				klog.ErrorS(err, "underlay: br-ex back to NORMAL")
			}
			if cfg.DatapathType == "netdev" {
				hideCTZeroSNAT(ctx, o)
			}
			return
		}
		// Ports from the OVSDB cache; only the flows and the fragment
		// mode, which live in ovs-vswitchd, take ovs-ofctl.
		patch, err := o.LocalnetPatchPort(ctx, "br-ex")
		if err == nil {
			err = gateway.EnsureFlows(ctx, gateway.Config{
				Bridge: "br-ex", NIC: cfg.GatewayInterface, PatchPort: patch, NodeIP: gw.IP.Addr(), MAC: gw.MAC,
				NodePorts: gateway.PortRange{Min: cfg.NodePortMin, Max: cfg.NodePortMax},
				Resolve:   o.OFPort,
			})
		}
		if err != nil && ctx.Err() == nil {
			klog.ErrorS(err, "shared gateway flows on br-ex")
		}
		if cfg.DatapathType == "netdev" {
			hideCTZeroSNAT(ctx, o)
		}
	}
	flows()
	for {
		select {
		case <-ctx.Done():
			return
		case <-changes:
		case <-t.C:
			flows()
		}
		if err := restore(); err != nil && ctx.Err() == nil {
			klog.ErrorS(err, "host routes")
		}
	}
}

// publishedNextHop reads the next hop an earlier run published.
func publishedNextHop(ctx context.Context, kc kubernetes.Interface, node string) (netip.Addr, error) {
	n, err := kc.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return netip.Addr{}, err
	}
	g, err := kube.ParseNodeGateway(n.Annotations[kube.NodeGatewayAnnotation])
	if err != nil {
		return netip.Addr{}, fmt.Errorf("br-ex has no default route and the node has no published gateway: %w", err)
	}
	return netip.ParseAddr(g.NextHop)
}
