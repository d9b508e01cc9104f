package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"k8s.io/klog/v2"

	"github.com/kovn-io/kovn/go-controller/pkg/cni"
	"github.com/kovn-io/kovn/go-controller/pkg/config"
	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/node/ovs"
	"github.com/kovn-io/kovn/go-controller/pkg/node/podif"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// Interface external_ids kovn adds next to OVN's iface-id, so that the
// agent can tell its pod ports apart and find their pods at start-up.
const (
	podKey     = "kovn.io/pod"
	sandboxKey = "kovn.io/sandbox"
)

// cniHandler plugs pods into br-int.
type cniHandler struct {
	cfg    *config.Node
	ovs    *ovs.Client
	waiter *podWaiter
	m      *Metrics
}

func newCNIHandler(cfg *config.Node, o *ovs.Client, w *podWaiter, m *Metrics) *cniHandler {
	return &cniHandler{cfg: cfg, ovs: o, waiter: w, m: m}
}

// Add waits for the pod's addresses, makes its interface, plugs it into
// br-int and answers once ovn-controller has installed its flows. Any
// failure removes what was made.
func (h *cniHandler) Add(ctx context.Context, req *cni.Request) (res *types100.Result, err error) {
	if req.PodName == "" {
		return nil, types.NewError(types.ErrInvalidEnvironmentVariables, "not a Kubernetes pod", "CNI_ARGS lacks K8S_POD_NAMESPACE/K8S_POD_NAME")
	}
	t0 := time.Now()
	pod, pn, err := h.waiter.wait(ctx, req.PodNamespace, req.PodName, req.PodUID, h.cfg.AnnotationTimeout)
	if err != nil {
		return nil, types.NewError(types.ErrTryAgainLater, "no pod network from kovn-controller", err.Error())
	}
	t1 := time.Now()
	h.m.addPhases.WithLabelValues("annotation").Observe(t1.Sub(t0).Seconds())

	ifCfg, err := interfaceConfig(req, pn, h.cfg)
	if err != nil {
		return nil, err
	}
	made, err := podif.Setup(ifCfg)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			h.rollback(req, ifCfg.HostIfName)
		}
	}()
	ids := map[string]string{
		"iface-id":     own.PodPort(pod.Namespace, pod.Name),
		"iface-id-ver": string(pod.UID),
		podKey:         pod.Namespace + "/" + pod.Name,
		sandboxKey:     req.ContainerID,
	}
	if err = h.ovs.AddPort(ctx, "br-int", ifCfg.HostIfName, ids); err != nil {
		return nil, fmt.Errorf("plug %s into br-int: %w", ifCfg.HostIfName, err)
	}
	t2 := time.Now()
	h.m.addPhases.WithLabelValues("plumbing").Observe(t2.Sub(t1).Seconds())
	if err = h.ovs.WaitInstalled(ctx, ifCfg.HostIfName, h.cfg.InstallTimeout); err != nil {
		return nil, fmt.Errorf("ovn-controller did not install %s: %w", ids["iface-id"], err)
	}
	h.m.addPhases.WithLabelValues("ovn-installed").Observe(time.Since(t2).Seconds())
	klog.V(2).InfoS("pod plugged", "pod", req.PodKey(), "port", ids["iface-id"], "annotation", t1.Sub(t0), "plumbing", t2.Sub(t1), "installed", time.Since(t2))
	return result(req, ifCfg, made), nil
}

func (h *cniHandler) rollback(req *cni.Request, hostIf string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.ovs.DeletePort(ctx, "br-int", hostIf); err != nil {
		klog.ErrorS(err, "rollback: delete OVS port", "pod", req.PodKey(), "port", hostIf)
	}
	if err := podif.Teardown(hostIf); err != nil {
		klog.ErrorS(err, "rollback: delete veth", "pod", req.PodKey(), "port", hostIf)
	}
}

// Del removes the OVS port and the veth; both may already be gone (the
// runtime repeats DEL, and the netns may have been destroyed first).
func (h *cniHandler) Del(ctx context.Context, req *cni.Request) error {
	hostIf := podif.HostIfName(req.ContainerID)
	t0 := time.Now()
	if err := h.ovs.DeletePort(ctx, "br-int", hostIf); err != nil {
		return fmt.Errorf("delete OVS port %s: %w", hostIf, err)
	}
	t1 := time.Now()
	h.m.delPhases.WithLabelValues("ovs-port").Observe(t1.Sub(t0).Seconds())
	err := podif.Teardown(hostIf)
	h.m.delPhases.WithLabelValues("veth").Observe(time.Since(t1).Seconds())
	return err
}

// Check verifies the pod's interface and its OVS port.
func (h *cniHandler) Check(ctx context.Context, req *cni.Request) error {
	pod, pn, err := h.waiter.wait(ctx, req.PodNamespace, req.PodName, req.PodUID, time.Second)
	if err != nil {
		return err
	}
	var want []netip.Prefix
	for _, s := range pn.IPs {
		if p, err := netip.ParsePrefix(s); err == nil {
			want = append(want, p)
		}
	}
	if err := podif.Check(req.Netns, req.IfName, want); err != nil {
		return err
	}
	hostIf := podif.HostIfName(req.ContainerID)
	ports, err := h.ovs.Ports(ctx, "br-int")
	if err != nil {
		return err
	}
	for _, p := range ports {
		if p.Name == hostIf {
			if p.ExternalIDs["iface-id-ver"] != string(pod.UID) {
				return fmt.Errorf("port %s belongs to pod uid %s, not %s", hostIf, p.ExternalIDs["iface-id-ver"], pod.UID)
			}
			return nil
		}
	}
	return fmt.Errorf("port %s is not on br-int", hostIf)
}

// Status reports whether the agent can plug pods: its OVS connection.
func (h *cniHandler) Status(ctx context.Context) error {
	if !h.ovs.Connected() {
		return errors.New("kovn-node has lost its connection to the local Open_vSwitch database")
	}
	return nil
}

// interfaceConfig turns the pod network into the interface to make.
func interfaceConfig(req *cni.Request, pn *kube.PodNetwork, cfg *config.Node) (podif.Config, error) {
	mac, err := net.ParseMAC(pn.MAC)
	if err != nil {
		return podif.Config{}, err
	}
	c := podif.Config{
		NetNS: req.Netns, IfName: req.IfName, HostIfName: podif.HostIfName(req.ContainerID),
		MAC: mac, MTU: pn.MTU, TxChecksumOff: cfg.DatapathType == "netdev",
		HostStackOff: cfg.DatapathType == "netdev",
	}
	if c.MTU == 0 {
		c.MTU = cfg.MTU
	}
	for _, s := range pn.IPs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return c, err
		}
		c.Addrs = append(c.Addrs, p)
	}
	for _, s := range pn.Gateway {
		gw, err := netip.ParseAddr(s)
		if err != nil {
			return c, err
		}
		c.Gateways = append(c.Gateways, gw)
	}
	for _, r := range pn.Routes {
		dst, err1 := netip.ParsePrefix(r.Dest)
		via, err2 := netip.ParseAddr(r.NextHop)
		if err1 != nil || err2 != nil {
			return c, fmt.Errorf("route %+v: %v %v", r, err1, err2)
		}
		c.Routes = append(c.Routes, podif.Route{Dst: dst, NextHop: via})
	}
	return c, nil
}

// result is the CNI answer: the host and container interfaces, the IPs.
func result(req *cni.Request, c podif.Config, made *podif.Result) *types100.Result {
	r := &types100.Result{CNIVersion: types100.ImplementedSpecVersion}
	r.Interfaces = []*types100.Interface{
		{Name: c.HostIfName, Mac: made.HostMAC.String()},
		{Name: c.IfName, Mac: made.ContainerMAC.String(), Sandbox: req.Netns},
	}
	for i, a := range c.Addrs {
		ipc := &types100.IPConfig{Interface: types100.Int(1), Address: net.IPNet{IP: a.Addr().AsSlice(), Mask: net.CIDRMask(a.Bits(), a.Addr().BitLen())}}
		if i < len(c.Gateways) {
			ipc.Gateway = c.Gateways[i].AsSlice()
		}
		r.IPs = append(r.IPs, ipc)
	}
	return r
}
