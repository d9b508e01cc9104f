package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kovn-io/kovn/go-controller/pkg/ipam"
	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/lab"
)

// requireKovnCNI fails unless the lab runs kovn-node (and so kovn's CNI).
func requireKovnCNI(t *testing.T, e *env) {
	if !e.lab.HasCNI() {
		t.Fatal("the lab runs no kovn-node (was it built?)")
	}
}

// threePods runs test servers a and b on the first node and c on the second.
func (e *env) threePods(t *testing.T, ns string) (a, b, c *corev1.Pod) {
	n1, n2 := e.lab.NodeNames[0], e.lab.NodeNames[1]
	pods := e.createRunning(t, 2*time.Minute, e.testServerPod(ns, "a", n1), e.testServerPod(ns, "b", n1), e.testServerPod(ns, "c", n2))
	return pods[0], pods[1], pods[2]
}

// TestPodToPod: on one node and across nodes, TCP and UDP, and the server
// sees the client's own pod IP.
func TestPodToPod(t *testing.T) {
	e := setup(t)
	requireKovnCNI(t, e)
	ns := e.namespace(t, "p2p")
	a, b, c := e.threePods(t, ns)
	for _, dst := range []*corev1.Pod{b, c} {
		for _, pp := range []struct{ proto, port string }{{"tcp", "8080"}, {"tcp", "80"}, {"udp", "9090"}, {"udp", "81"}} {
			r, err := e.probe(t, ns+"/a", dst.Status.PodIP+":"+pp.port, pp.proto)
			if err != nil {
				t.Errorf("a → %s %s/%s: %v", dst.Name, pp.proto, pp.port, err)
				continue
			}
			if r.Pod != ns+"/"+dst.Name || r.Client != a.Status.PodIP {
				t.Errorf("a → %s %s/%s: reply %+v, want %s/%s seeing %s", dst.Name, pp.proto, pp.port, r, ns, dst.Name, a.Status.PodIP)
			}
		}
	}
	// A full-MTU exchange across nodes: 1372 bytes of ICMP payload + 28 of
	// headers = 1400, the pod MTU, with fragmentation forbidden.
	out, err := e.labCmd(t, nil, "exec", ns+"/a", "--", "ping", "-c", "3", "-W", "2", "-M", "do", "-s", "1372", c.Status.PodIP)
	if err != nil {
		t.Errorf("1400-byte ping across nodes: %v\n%s", err, out)
	}
}

// mgmtIP is the management port address of a node.
func (e *env) mgmtIP(t *testing.T, node string) string {
	return ipam.ManagementIP(e.nodeSubnets(t)[node]).String()
}

// hostServer runs a test server on a lab host for the test's duration.
func (e *env) hostServer(t *testing.T, host, port string) {
	t.Helper()
	bin := strings.TrimSuffix(e.labBin, "kovn-lab") + "kovn-test-server"
	cmd := exec.Command(e.labBin, "--state-dir", e.lab.StateDir, "exec", "host:"+host, "--",
		bin, "--name=host/"+host, "--node="+host, "--tcp-ports="+port, "--udp-ports=")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	time.Sleep(300 * time.Millisecond)
}

// TestHostPodNoNAT: a host reaches pods through its management port and
// pods reach their host the same way; neither side is NATed.
func TestHostPodNoNAT(t *testing.T) {
	e := setup(t)
	requireKovnCNI(t, e)
	ns := e.namespace(t, "hostpod")
	a, _, c := e.threePods(t, ns)
	n1 := e.lab.NodeNames[0]
	mgmt := e.mgmtIP(t, n1)
	for _, dst := range []*corev1.Pod{a, c} {
		r, err := e.probe(t, "host:"+n1, dst.Status.PodIP+":8080", "tcp")
		if err != nil {
			t.Errorf("host %s → pod %s: %v", n1, dst.Name, err)
			continue
		}
		if r.Client != mgmt {
			t.Errorf("host → pod %s: server saw %s, want the management address %s", dst.Name, r.Client, mgmt)
		}
	}
	e.hostServer(t, n1, "18080")
	r, err := e.probe(t, ns+"/a", mgmt+":18080", "tcp")
	if err != nil {
		t.Fatalf("pod → its host's management address: %v", err)
	}
	if r.Client != a.Status.PodIP {
		t.Errorf("pod → host: host saw %s, want the pod IP %s", r.Client, a.Status.PodIP)
	}
}

// TestPodToExternal: pods leave through their node's gateway router and are
// seen outside as the node IP; the outside cannot reach a pod IP.
func TestPodToExternal(t *testing.T) {
	e := setup(t)
	requireKovnCNI(t, e)
	ns := e.namespace(t, "egress")
	a, _, c := e.threePods(t, ns)
	for _, p := range []*corev1.Pod{a, c} {
		for _, pp := range []struct{ proto, port string }{{"tcp", "80"}, {"tcp", "8080"}, {"udp", "9090"}} {
			r, err := e.probe(t, ns+"/"+p.Name, lab.ExternalIP+":"+pp.port, pp.proto)
			if err != nil {
				t.Errorf("%s → external %s/%s: %v", p.Name, pp.proto, pp.port, err)
				continue
			}
			if want := e.lab.NodeIPs[p.Spec.NodeName]; r.Client != want {
				t.Errorf("%s → external %s: seen as %s, want the node IP %s", p.Name, pp.proto, r.Client, want)
			}
		}
	}
	if out, err := e.labCmd(t, nil, "exec", ns+"/a", "--", "ping", "-c", "2", "-W", "2", lab.ExternalIP); err != nil {
		t.Errorf("ping from a pod to the external host: %v\n%s", err, out)
	}
	if _, err := e.probe(t, "external", a.Status.PodIP+":8080", "tcp"); err == nil {
		t.Error("the external host reached a pod IP directly in overlay mode")
	}
}

// TestHostPort: a hostPort answers on its node's IP from outside and from
// a pod on another node. The ports are outside the NodePort range, which
// br-ex hands to the gateway router (docs/node.md).
func TestHostPort(t *testing.T) {
	e := setup(t)
	requireKovnCNI(t, e)
	ns := e.namespace(t, "hostport")
	n1, n2 := e.lab.NodeNames[0], e.lab.NodeNames[1]
	hp := e.testServerPod(ns, "hp", n2)
	hp.Spec.Containers[0].Ports = []corev1.ContainerPort{
		{ContainerPort: 8080, HostPort: 20080, Protocol: corev1.ProtocolTCP},
		{ContainerPort: 9090, HostPort: 20090, Protocol: corev1.ProtocolUDP},
	}
	e.createRunning(t, 2*time.Minute, hp, e.testServerPod(ns, "client", n1))
	target := e.lab.NodeIPs[n2]
	for _, from := range []string{"external", ns + "/client"} {
		for _, pp := range []struct{ proto, port string }{{"tcp", "20080"}, {"udp", "20090"}} {
			r, err := e.probe(t, from, target+":"+pp.port, pp.proto)
			if err != nil {
				t.Errorf("%s → %s:%s/%s: %v", from, target, pp.port, pp.proto, err)
				continue
			}
			if r.Pod != ns+"/hp" {
				t.Errorf("%s → hostPort answered by %s", from, r.Pod)
			}
		}
	}
}

// TestNodeAgentRestartKeepsTraffic probes between pods on two nodes while
// kovn-node restarts on one of them: no probe may fail.
func TestNodeAgentRestartKeepsTraffic(t *testing.T) {
	e := setup(t)
	requireKovnCNI(t, e)
	ns := e.namespace(t, "agentrestart")
	a, _, c := e.threePods(t, ns)
	var sent, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			sent.Add(1)
			if _, err := e.probe(t, ns+"/a", c.Status.PodIP+":8080", "tcp"); err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	time.Sleep(time.Second)
	for _, n := range []string{a.Spec.NodeName, c.Spec.NodeName} {
		if _, err := e.labCmd(t, nil, "restart", "node:"+n); err != nil {
			t.Error(err)
		}
		time.Sleep(3 * time.Second)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d probes during two kovn-node restarts, %d failed", sent.Load(), failed.Load())
	if failed.Load() > 0 {
		t.Errorf("%d of %d probes failed while kovn-node restarted; first: %v", failed.Load(), sent.Load(), firstErr.Load())
	}
	// The restarted agents still plug new pods.
	e.createRunning(t, time.Minute, e.testServerPod(ns, "after", a.Spec.NodeName))
}

// TestThirtyConcurrentPodsOnOneNode: 30 ADDs at once on one node all
// succeed, and every pod answers from another node.
func TestThirtyConcurrentPodsOnOneNode(t *testing.T) {
	e := setup(t)
	requireKovnCNI(t, e)
	ns := e.namespace(t, "burst")
	n1, n2 := e.lab.NodeNames[0], e.lab.NodeNames[1]
	var pods []*corev1.Pod
	for i := 0; i < 30; i++ {
		pods = append(pods, e.testServerPod(ns, fmt.Sprintf("s%02d", i), n1))
	}
	running := e.createRunning(t, 3*time.Minute, pods...)
	client := e.createRunning(t, time.Minute, e.testServerPod(ns, "client", n2))[0]
	for _, p := range running {
		r, err := e.probe(t, ns+"/client", p.Status.PodIP+":8080", "tcp")
		if err != nil {
			t.Errorf("client → %s: %v", p.Name, err)
			continue
		}
		if r.Pod != ns+"/"+p.Name || r.Client != client.Status.PodIP {
			t.Errorf("client → %s: reply %+v", p.Name, r)
		}
	}
}

// TestHostPortSamePortOtherProtocolOrHostIP: hostPort 20081 taken three
// times on one node — TCP on the node IP, UDP on the node IP, TCP on the
// node's management address — must not conflict.
func TestHostPortSamePortOtherProtocolOrHostIP(t *testing.T) {
	e := setup(t)
	requireKovnCNI(t, e)
	ns := e.namespace(t, "hostportmix")
	n2 := e.lab.NodeNames[1]
	nodeIP := e.lab.NodeIPs[n2]
	mk := func(name string, proto corev1.Protocol, hostIP string, port int32) *corev1.Pod {
		p := e.testServerPod(ns, name, n2)
		p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: port, HostPort: 20081, HostIP: hostIP, Protocol: proto}}
		return p
	}
	e.createRunning(t, 2*time.Minute,
		mk("tcp", corev1.ProtocolTCP, nodeIP, 8080),
		mk("udp", corev1.ProtocolUDP, nodeIP, 9090),
		mk("mgmt", corev1.ProtocolTCP, e.mgmtIP(t, n2), 80))
	for _, c := range []struct{ from, to, proto, want string }{
		{"external", nodeIP + ":20081", "tcp", ns + "/tcp"},
		{"external", nodeIP + ":20081", "udp", ns + "/udp"},
		{"host:" + n2, e.mgmtIP(t, n2) + ":20081", "tcp", ns + "/mgmt"},
	} {
		r, err := e.probe(t, c.from, c.to, c.proto)
		if err != nil {
			t.Errorf("%s → %s/%s: %v", c.from, c.to, c.proto, err)
			continue
		}
		if r.Pod != c.want {
			t.Errorf("%s → %s/%s answered by %s, want %s", c.from, c.to, c.proto, r.Pod, c.want)
		}
	}
}

// TestAgentRemovesStalePortsAndDELIsIdempotent: a pod port left on br-int
// for a pod that no longer exists is removed when kovn-node starts, and a
// DEL for a sandbox the agent never saw (netns gone) succeeds.
func TestAgentRemovesStalePortsAndDELIsIdempotent(t *testing.T) {
	e := setup(t)
	requireKovnCNI(t, e)
	node := e.lab.NodeNames[2]
	host := "host:" + node
	if _, err := e.labCmd(t, nil, "exec", host, "--", "ip", "link", "add", "kvstaletest00", "type", "veth", "peer", "name", "kvstalepeer00"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.labCmd(t, nil, "exec", host, "--", "ovs-vsctl", "add-port", "br-int", "kvstaletest00", "--",
		"set", "Interface", "kvstaletest00", "external_ids:iface-id=gone_pod", "external_ids:iface-id-ver=00000000-dead-beef-0000-000000000000",
		"external_ids:kovn.io/pod=gone/pod"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.labCmd(t, nil, "restart", "node:"+node); err != nil {
		t.Fatal(err)
	}
	err := poll(30*time.Second, func() error {
		out, err := e.labCmd(t, nil, "exec", host, "--", "ovs-vsctl", "list-ports", "br-int")
		if err != nil {
			return err
		}
		if strings.Contains(out, "kvstaletest00") {
			return fmt.Errorf("stale port still on br-int")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if out, _ := e.labCmd(t, nil, "exec", host, "--", "ip", "link", "show", "kvstaletest00"); strings.Contains(out, "kvstaletest00") {
		t.Error("the stale port's veth survived")
	}
	conf := []byte(`{"cniVersion":"1.0.0","name":"kovn","type":"kovn-cni","socketPath":"/run/kovn/cni.sock"}`)
	for i := 0; i < 2; i++ {
		out, err := e.labCmd(t, conf, "exec", host, "--", "env", "CNI_COMMAND=DEL", "CNI_CONTAINERID=neverseen0123456789",
			"CNI_NETNS=/var/run/netns/does-not-exist", "CNI_IFNAME=eth0", "CNI_PATH=/opt/cni/bin",
			"CNI_ARGS=K8S_POD_NAMESPACE=gone;K8S_POD_NAME=pod;K8S_POD_UID=00000000-dead-beef-0000-000000000000",
			"/opt/cni/bin/kovn-cni")
		if err != nil {
			t.Fatalf("DEL #%d of an unknown sandbox with its netns gone: %v\n%s", i+1, err, out)
		}
	}
}

// TestNodeAgentStartsWithoutRouteOrPublishedGateway: a kovn-node that
// stopped after moving the node's address onto br-ex but before publishing
// kovn.io/node-gateway leaves a node with no default route (OVS bounced
// br-ex) and nothing published. The next start must still find the next
// hop (kovn-node records it on br-ex before the move), restore the route,
// publish the gateway and give the node's pods their way out. CI once
// crash-looped kovn-node on exactly such a node.
func TestNodeAgentStartsWithoutRouteOrPublishedGateway(t *testing.T) {
	e := setup(t)
	requireKovnCNI(t, e)
	if e.lab.FromManifests() {
		t.Skip("stops kovn-node as a lab process")
	}
	node := e.lab.NodeNames[len(e.lab.NodeNames)-1]
	ctx := context.Background()
	if _, err := e.labCmd(t, nil, "stop", "node:"+node); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = e.labCmd(t, nil, "start", "node:"+node) })
	patch := []byte(`{"metadata":{"annotations":{"` + kube.NodeGatewayAnnotation + `":null}}}`)
	if _, err := e.cs.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if out, err := e.labCmd(t, nil, "exec", "host:"+node, "--", "ip", "route", "del", "default"); err != nil {
		t.Fatalf("delete the default route: %v %s", err, out)
	}
	if _, err := e.labCmd(t, nil, "start", "node:"+node); err != nil {
		t.Fatal(err)
	}
	if err := poll(30*time.Second, func() error {
		if st := e.lab.Supervisor().Status("kovn-node:" + node); !st.Running {
			return fmt.Errorf("kovn-node:%s exited (log %s)", node, st.Log)
		}
		out, err := e.labCmd(t, nil, "exec", "host:"+node, "--", "ip", "route", "show", "default")
		if err != nil || !strings.Contains(out, "via "+lab.UnderlayGateway) {
			return fmt.Errorf("default route %q %v", out, err)
		}
		n, err := e.cs.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if g, err := kube.ParseNodeGateway(n.Annotations[kube.NodeGatewayAnnotation]); err != nil || g.NextHop != lab.UnderlayGateway {
			return fmt.Errorf("published gateway %+v %v", g, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	ns := e.namespace(t, "agentnoroute")
	p := e.createRunning(t, time.Minute, e.testServerPod(ns, "p", node))[0]
	if r, err := e.probe(t, ns+"/"+p.Name, lab.ExternalIP+":80", "tcp"); err != nil {
		t.Errorf("pod on %s → outside: %+v %v", node, r, err)
	}
}
