package agent

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/klog/v2"

	"github.com/kovn-io/kovn/go-controller/pkg/config"
	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/node/extport"
	"github.com/kovn-io/kovn/go-controller/pkg/node/gateway"
	"github.com/kovn-io/kovn/go-controller/pkg/node/hostnet"
	"github.com/kovn-io/kovn/go-controller/pkg/node/ovs"
)

// Retry bounds for plugging the host port after a failure: soon enough
// that a transient error (br-int not made yet) costs little, rarely
// enough that a lasting one does not flood the log.
const (
	hostPortRetryMin = time.Second
	hostPortRetryMax = 30 * time.Second
)

// RunExternalHost runs the agent on a host that is an OVN chassis but not
// a Kubernetes Node (--external-host): it configures the chassis as Run
// does, moves the NIC into br-ex (kept on NORMAL) as a node does, and has
// no management port, CNI, Node object or heartbeat. With --host-port it
// keeps that ExternalPort plugged as the internal port
// --host-port-interface, which gives the host its address on kovn's
// network. It returns when ctx ends.
func RunExternalHost(ctx context.Context, cfg *config.Node, dc dynamic.Interface, m *Metrics) error {
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

	if err := setupChassis(ctx, cfg, o); err != nil {
		return err
	}
	// The NIC goes into br-ex as on a node: the userspace datapath sends
	// Geneve only out of an OVS bridge that holds the tunnel's source
	// address. br-ex stays on NORMAL (no gateway router shares the IP).
	gw, err := setupGateway(ctx, cfg, o)
	if err != nil {
		return err
	}
	chassisID, err := o.ChassisID(ctx)
	if err != nil {
		return err
	}
	changes, err := hostnet.Changes(ctx)
	if err != nil {
		return err
	}
	go keepExternalHostNetwork(ctx, cfg, o, gw, changes)
	// Ports here meet NetworkPolicy ACLs like pods do.
	startFlowPurger(ctx, cfg, m)
	defer m.serving.Store(false)
	if cfg.HostPort == "" {
		klog.InfoS("kovn-node ready (external host)", "chassis", chassisID, "hostname", cfg.NodeName)
		m.serving.Store(true)
		<-ctx.Done()
		return nil
	}
	hp := &hostPort{cfg: cfg, o: o, m: m, names: []string{chassisID, cfg.NodeName}}
	return hp.run(ctx, dc)
}

// keepExternalHostNetwork keeps the default route on br-ex (the kernel
// drops it when userspace OVS bounces the device), br-ex on NORMAL and, on
// the userspace datapath, the ct_zero_snat override that ovs-vswitchd
// restores whenever it restarts.
func keepExternalHostNetwork(ctx context.Context, cfg *config.Node, o *ovs.Client, gw *hostnet.Gateway, changes <-chan struct{}) {
	var routes []hostnet.Route
	if gw.NextHop.IsValid() {
		routes = []hostnet.Route{{Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: gw.NextHop, Dev: "br-ex"}}
	}
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		if err := hostnet.EnsureRoutes(routes); err != nil && ctx.Err() == nil {
			klog.ErrorS(err, "external host: default route on br-ex")
		}
		if err := gateway.RemoveFlows(ctx, "", "br-ex"); err != nil && ctx.Err() == nil {
			klog.ErrorS(err, "external host: br-ex back to NORMAL")
		}
		if cfg.DatapathType == "netdev" {
			hideCTZeroSNAT(ctx, o)
		}
		select {
		case <-ctx.Done():
			return
		case <-changes:
		case <-t.C:
		}
	}
}

// hostPort keeps the ExternalPort --host-port plugged as this host's
// internal port.
type hostPort struct {
	cfg *config.Node
	o   *ovs.Client
	m   *Metrics
	// names are what the port's spec.chassis may say to mean this host:
	// the system-id and the chassis hostname (kovn writes --node-name).
	names []string
	// last is the last state logged, so that the kernel events this
	// reacts to do not repeat an unchanged message.
	last string
}

// run plugs the port on every change of it and on every kernel change
// (the userspace datapath bounces its taps, and the kernel then drops the
// routes through them), retrying failures with backoff, until ctx ends.
func (hp *hostPort) run(ctx context.Context, dc dynamic.Interface) error {
	ns, name, _ := strings.Cut(hp.cfg.HostPort, "/")
	key := hp.cfg.HostPort
	w, err := kube.WatchExternalPort(ctx, dc, ns, name)
	if err != nil {
		return fmt.Errorf("host port: %w", err)
	}
	changes, err := hostnet.Changes(ctx)
	if err != nil {
		return err
	}
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	backoff := hostPortRetryMin
	for {
		ep, err := w.Get()
		if err == nil {
			err = hp.sync(ctx, key, ep)
		}
		if err != nil {
			hp.m.serving.Store(false)
			klog.ErrorS(err, "cannot plug the host port; retrying", "key", key, "interface", hp.cfg.HostPortInterface, "retryIn", backoff)
			hp.last = ""
			retry.Reset(backoff)
			backoff = min(2*backoff, hostPortRetryMax)
		} else {
			backoff = hostPortRetryMin
		}
		select {
		case <-ctx.Done():
			return nil
		case <-w.Changed():
		case <-changes:
		case <-retry.C:
		}
	}
}

// sync plugs ep as the host port, or says why it waits. Readiness follows
// the outcome: ready while the port is plugged and installed.
func (hp *hostPort) sync(ctx context.Context, key string, ep *kube.ExternalPort) error {
	var wait string
	switch {
	case ep == nil:
		wait = "waiting for the ExternalPort to exist"
	case !matches(ep.Spec.Chassis, hp.names):
		wait = fmt.Sprintf("waiting: the ExternalPort is for chassis %q, and this host is %q", ep.Spec.Chassis, strings.Join(hp.names, `" or "`))
	case !extport.Assigned(&ep.Status):
		// Left plugged as it was: a port that lost its address may get
		// it back, and the host keeps working until then.
		wait = "waiting for the controller to assign the ExternalPort an iface-id and an address"
	}
	if wait != "" {
		hp.m.serving.Store(false)
		hp.logOnce(wait, key)
		return nil
	}
	start := time.Now()
	if err := extport.PlugInternal(ctx, hp.o, "br-int", hp.cfg.HostPortInterface, ep.Status.IfaceID, &ep.Status, hp.cfg.InstallTimeout); err != nil {
		return err
	}
	hp.m.serving.Store(true)
	if state := fmt.Sprint("plugged ", ep.Status.IfaceID, ep.Status.IPs, ep.Status.Routes); state != hp.last {
		hp.last = state
		klog.InfoS("host port plugged and installed; kovn-node ready (external host)", "key", key,
			"interface", hp.cfg.HostPortInterface, "ifaceID", ep.Status.IfaceID, "ips", ep.Status.IPs,
			"gateway", ep.Status.Gateway, "routes", ep.Status.Routes, "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

func (hp *hostPort) logOnce(msg, key string) {
	if msg != hp.last {
		hp.last = msg
		klog.InfoS(msg, "key", key)
	}
}

func matches(chassis string, names []string) bool {
	for _, n := range names {
		if n != "" && n == chassis {
			return true
		}
	}
	return false
}
