package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/lab"
)

// vm is a "VM": a network namespace of its own whose eth0 is a veth; the
// other end sits on a lab host and is plugged into br-int by kovnctl attach.
type vm struct {
	name, netns, hostEnd string
	server               *exec.Cmd
}

func (e *env) dynamic(t *testing.T) dynamic.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", e.lab.KubeconfigPath())
	if err != nil {
		t.Fatal(err)
	}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return dc
}

// createExternalPort creates a port and waits until its status has an address.
func (e *env) createExternalPort(t *testing.T, dc dynamic.Interface, ns, name, chassis string, labels map[string]string) *kube.ExternalPort {
	t.Helper()
	ep := &kube.ExternalPort{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: kube.ExternalPortSpec{Chassis: chassis}}
	u, err := ep.Unstructured()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := dc.Resource(kube.ExternalPortResource()).Namespace(ns).Create(ctx, u, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var got *kube.ExternalPort
	err = poll(30*time.Second, func() error {
		got, err = kube.GetExternalPort(ctx, dc, ns, name)
		if err != nil {
			return err
		}
		if len(got.Status.IPs) == 0 || got.Status.IfaceID == "" {
			return fmt.Errorf("external port %s/%s has no address yet: %+v", ns, name, got.Status)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// kovnctlOn runs kovnctl on a lab host with the node agent's credentials.
func (e *env) kovnctlOn(t *testing.T, host string, args ...string) (string, error) {
	t.Helper()
	bin := strings.TrimSuffix(e.labBin, "kovn-lab") + "kovnctl"
	// Workers and bare-metal hosts keep the node agent's credentials there.
	kubeconfig := e.lab.StateDir + "/nodes/" + host + "/kovn-node.kubeconfig"
	full := append([]string{"exec", "host:" + host, "--", bin}, args...)
	if args[0] == "attach" {
		full = append(full, "--kubeconfig="+kubeconfig)
	}
	return e.labCmd(t, nil, full...)
}

// newVM makes the VM's namespace and veth, with the host end on host, and
// starts a test server inside listening on 8080.
func (e *env) newVM(t *testing.T, host string) *vm {
	t.Helper()
	v := &vm{name: "kovnvm-" + rand.String(4)}
	v.netns, v.hostEnd = v.name, "tap"+v.name[len(v.name)-4:]
	steps := [][]string{
		{"ip", "netns", "add", v.netns},
		{"ip", "-n", v.netns, "link", "set", "lo", "up"},
		{"ip", "link", "add", v.hostEnd, "type", "veth", "peer", "name", "eth0", "netns", v.netns},
		{"ip", "link", "set", v.hostEnd, "netns", lab.NetNSPath(host)},
	}
	t.Cleanup(func() {
		_ = exec.Command("ip", "netns", "del", v.netns).Run()
	})
	for _, s := range steps {
		if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", s, err, out)
		}
	}
	return v
}

// configure sets the VM's interface as a guest would from what the port's
// status says (MAC, address, default route through the gateway).
func (v *vm) configure(t *testing.T, st kube.ExternalPortStatus) {
	t.Helper()
	n := []string{"ip", "-n", v.netns}
	steps := [][]string{
		append(n, "link", "set", "eth0", "address", st.MAC, "mtu", fmt.Sprint(st.MTU)),
		append(n, "addr", "replace", st.IPs[0], "dev", "eth0"),
		append(n, "link", "set", "eth0", "up"),
		append(n, "route", "replace", "default", "via", st.Gateway),
		{"nsenter", "--net=/run/netns/" + v.netns, "--", "ethtool", "-K", "eth0", "tx", "off"},
	}
	for _, s := range steps {
		if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", s, err, out)
		}
	}
}

func (e *env) startVMServer(t *testing.T, v *vm) {
	t.Helper()
	bin := strings.TrimSuffix(e.labBin, "kovn-lab") + "kovn-test-server"
	v.server = exec.Command("nsenter", "--net=/run/netns/"+v.netns, "--", bin, "--name=vm/"+v.name, "--node=vm", "--tcp-ports=8080", "--udp-ports=")
	if err := v.server.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.server.Process.Kill(); _ = v.server.Wait() })
}

func firstIP(st kube.ExternalPortStatus) string { return strings.Split(st.IPs[0], "/")[0] }

// TestExternalPortsVMAndBareMetal: a VM plugged into a lab node with
// kovnctl attach and a bare-metal host (an OVN chassis that is no
// Kubernetes node) reach pods and each other on the pod network with
// their own addresses; a NetworkPolicy selecting the VM's labels refuses
// a pod it does not allow; the VM moved to another node keeps its IP and
// MAC and answers again within 5 s.
func TestExternalPortsVMAndBareMetal(t *testing.T) {
	e := setup(t)
	requireKovnCNI(t, e)
	if e.lab.Mode != "overlay" || len(e.lab.ExternalHostNames) == 0 {
		t.Skipf("needs an overlay lab with a bare-metal host (kovn-lab up --external-hosts 1); mode %s", e.lab.Mode)
	}
	dc := e.dynamic(t)
	ns := e.namespace(t, "extport")
	n1, n2, bm := e.lab.NodeNames[0], e.lab.NodeNames[1], e.lab.ExternalHostNames[0]
	pods := e.createRunning(t, 2*time.Minute, e.testServerPod(ns, "a", n1), e.testServerPod(ns, "b", n2))
	a, b := pods[0], pods[1]

	// The VM on node1.
	vmPort := e.createExternalPort(t, dc, ns, "vm", n1, map[string]string{"app": "vm"})
	v := e.newVM(t, n1)
	v.configure(t, vmPort.Status)
	e.startVMServer(t, v)
	if out, err := e.kovnctlOn(t, n1, "attach", ns+"/vm", "--interface", v.hostEnd); err != nil {
		t.Fatalf("kovnctl attach: %v\n%s", err, out)
	}
	t.Cleanup(func() { _, _ = e.kovnctlOn(t, n1, "detach", "--interface", v.hostEnd) })

	// The bare-metal host's own address, through an internal port.
	bmPort := e.createExternalPort(t, dc, ns, bm, bm, map[string]string{"app": "baremetal"})
	if out, err := e.kovnctlOn(t, bm, "attach", ns+"/"+bm, "--interface", "kovn-host0", "--internal"); err != nil {
		t.Fatalf("kovnctl attach --internal on %s: %v\n%s", bm, err, out)
	}
	t.Cleanup(func() { _, _ = e.kovnctlOn(t, bm, "detach", "--interface", "kovn-host0") })
	e.hostServer(t, bm, "8080")

	vmIP, bmIP := firstIP(vmPort.Status), firstIP(bmPort.Status)
	vmFrom := "netns:" + v.netns
	checks := []struct{ from, to, wantClient string }{
		{ns + "/a", vmIP + ":8080", a.Status.PodIP},
		{vmFrom, b.Status.PodIP + ":8080", vmIP},
		{vmFrom, bmIP + ":8080", vmIP},
		{ns + "/b", bmIP + ":8080", b.Status.PodIP},
		{"host:" + bm, a.Status.PodIP + ":8080", bmIP},
		{"host:" + bm, vmIP + ":8080", bmIP},
	}
	for _, c := range checks {
		var r, err = e.probe(t, c.from, c.to, "tcp")
		if err != nil {
			// The first packets may race ovn-controller's flows.
			time.Sleep(time.Second)
			r, err = e.probe(t, c.from, c.to, "tcp")
		}
		if err != nil {
			t.Errorf("%s → %s: %v", c.from, c.to, err)
			continue
		}
		if r.Client != c.wantClient {
			t.Errorf("%s → %s: server saw %s, want %s (no NAT)", c.from, c.to, r.Client, c.wantClient)
		}
	}

	// A policy on the VM's labels admits pod a only.
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "vm-from-a"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "vm"}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{
				PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "a"}},
			}}}},
		},
	}
	if _, err := e.cs.NetworkingV1().NetworkPolicies(ns).Create(context.Background(), np, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err := poll(20*time.Second, func() error {
		if _, err := e.probe(t, ns+"/b", vmIP+":8080", "tcp"); err == nil {
			return fmt.Errorf("pod b still reaches the VM")
		}
		if _, err := e.probe(t, ns+"/a", vmIP+":8080", "tcp"); err != nil {
			return fmt.Errorf("pod a lost the VM: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}

	// Move the VM to node2: detach, move the interface, point the port
	// there, attach. It keeps IP and MAC and answers within 5 s.
	if out, err := e.kovnctlOn(t, n1, "detach", "--interface", v.hostEnd); err != nil {
		t.Fatalf("detach: %v\n%s", err, out)
	}
	if out, err := exec.Command("ip", "-n", "kovnlab-"+n1, "link", "set", v.hostEnd, "netns", lab.NetNSPath(n2)).CombinedOutput(); err != nil {
		t.Fatalf("move the VM's interface: %v: %s", err, out)
	}
	start := time.Now()
	patch := fmt.Sprintf(`{"spec":{"chassis":%q}}`, n2)
	if _, err := dc.Resource(kube.ExternalPortResource()).Namespace(ns).Patch(context.Background(), "vm", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if out, err := e.kovnctlOn(t, n2, "attach", ns+"/vm", "--interface", v.hostEnd); err != nil {
		t.Fatalf("attach on %s: %v\n%s", n2, err, out)
	}
	t.Cleanup(func() { _, _ = e.kovnctlOn(t, n2, "detach", "--interface", v.hostEnd) })
	var answered time.Duration
	err = poll(10*time.Second, func() error {
		if _, err := e.probe(t, ns+"/a", vmIP+":8080", "tcp"); err != nil {
			return err
		}
		answered = time.Since(start)
		return nil
	})
	if err != nil {
		t.Fatalf("the moved VM does not answer: %v", err)
	}
	t.Logf("moved VM answered %.2fs after the port was pointed at %s", answered.Seconds(), n2)
	if answered > 5*time.Second {
		t.Errorf("the moved VM answered after %v, want within 5s", answered)
	}
	moved, err := kube.GetExternalPort(context.Background(), dc, ns, "vm")
	if err != nil {
		t.Fatal(err)
	}
	if moved.Status.IPs[0] != vmPort.Status.IPs[0] || moved.Status.MAC != vmPort.Status.MAC {
		t.Errorf("moved VM: %s %s, was %s %s", moved.Status.IPs[0], moved.Status.MAC, vmPort.Status.IPs[0], vmPort.Status.MAC)
	}
	if err := poll(10*time.Second, func() error {
		p, err := kube.GetExternalPort(context.Background(), dc, ns, "vm")
		if err == nil && p.Status.Chassis != n2 {
			err = fmt.Errorf("status.chassis = %q, want %s", p.Status.Chassis, n2)
		}
		return err
	}); err != nil {
		t.Error(err)
	}
}
