package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestLabHostsAreRealNodes checks what `kovn-lab up` promises: every host's
// kubelet registered its Node, and every host's ovn-controller registered a
// chassis with a Geneve encap on the host IP.
func TestLabHostsAreRealNodes(t *testing.T) {
	e := setup(t)
	nodes, err := e.cs.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	registered := map[string]*corev1.Node{}
	for i := range nodes.Items {
		registered[nodes.Items[i].Name] = &nodes.Items[i]
	}
	chassis, err := e.lab.Chassis()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range e.lab.NodeNames {
		node, ok := registered[n]
		if !ok {
			t.Errorf("node %s is not registered", n)
			continue
		}
		if v := node.Status.NodeInfo.KubeletVersion; v != e.lab.K8sVersion {
			t.Errorf("node %s runs kubelet %q, want %s", n, v, e.lab.K8sVersion)
		}
		if rt := node.Status.NodeInfo.ContainerRuntimeVersion; !strings.HasPrefix(rt, "containerd://") {
			t.Errorf("node %s runtime %q, want containerd", n, rt)
		}
		c, ok := chassis[n]
		if !ok {
			t.Errorf("no chassis for %s in SB", n)
			continue
		}
		want := "geneve " + e.lab.NodeIPs[n]
		if len(c.Encaps) != 1 || c.Encaps[0] != want {
			t.Errorf("chassis %s encaps %v, want [%s]", n, c.Encaps, want)
		}
	}
	if _, err := e.labCmd(t, nil, "status"); err != nil {
		t.Errorf("kovn-lab status reports a problem: %v", err)
	}
}

// standinConflist is Debian's bridge + host-local plugins, a CNI that has
// nothing to do with kovn: it proves the nodes run pods with any plugin.
const standinConflist = `{
  "cniVersion": "1.0.0",
  "name": "standin",
  "plugins": [
    {"type": "bridge", "bridge": "cni-standin", "isGateway": true, "ipMasq": false,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.77.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}}
  ]
}`

// TestPodsRunWithStandinCNI configures the stand-in CNI on one host, runs
// two test-server pods there and probes one from the other, TCP and UDP.
func TestPodsRunWithStandinCNI(t *testing.T) {
	e := setup(t)
	if e.lab.HasCNI() {
		t.Skip("the lab runs kovn's own CNI; the stand-in only proves bare nodes")
	}
	node := e.lab.NodeNames[0]
	install := "set -e; cp /usr/lib/cni/bridge /usr/lib/cni/host-local /opt/cni/bin/; cat > /etc/cni/net.d/10-standin.conflist"
	if _, err := e.labCmd(t, []byte(standinConflist), "exec", "host:"+node, "--", "sh", "-c", install); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Remove after the pods are gone, so their CNI DEL still finds the plugin config.
		_, _ = e.labCmd(t, nil, "exec", "host:"+node, "--", "rm", "-f", "/etc/cni/net.d/10-standin.conflist")
	})
	ns := e.namespace(t, "standin")
	t.Cleanup(func() { waitPodsGone(e, ns, time.Minute) })
	pods := e.createRunning(t, 2*time.Minute, e.testServerPod(ns, "a", node), e.testServerPod(ns, "b", node))
	a, b := pods[0], pods[1]

	for _, c := range []struct{ proto, port string }{{"tcp", "8080"}, {"tcp", "80"}, {"udp", "9090"}} {
		r, err := e.probe(t, ns+"/a", b.Status.PodIP+":"+c.port, c.proto)
		if err != nil {
			t.Errorf("%s/%s from a to b: %v", c.proto, c.port, err)
			continue
		}
		if r.Pod != ns+"/b" || r.Node != node || r.Client != a.Status.PodIP {
			t.Errorf("%s/%s: reply %+v, want pod %s/b on %s seeing client %s", c.proto, c.port, r, ns, node, a.Status.PodIP)
		}
	}
}

func waitPodsGone(e *env, ns string, timeout time.Duration) {
	ctx := context.Background()
	_ = e.cs.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
	_ = poll(timeout, func() error {
		pods, err := e.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err == nil && len(pods.Items) > 0 {
			return context.DeadlineExceeded
		}
		return err
	})
}

// TestLabBareMetalHosts checks the lab's bare-metal hosts (up
// --external-hosts N): each registered a chassis with a Geneve encap on its
// own IP, is not a Kubernetes Node, is its own host (hostname) and reaches
// the outside world from its address.
func TestLabBareMetalHosts(t *testing.T) {
	e := setup(t)
	if len(e.lab.ExternalHostNames) == 0 {
		t.Skip("the lab has no bare-metal hosts (kovn-lab up --external-hosts N)")
	}
	chassis, err := e.lab.Chassis()
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range e.lab.ExternalHostNames {
		ip := e.lab.ExternalHostIPs[h]
		if c, ok := chassis[h]; !ok || len(c.Encaps) != 1 || c.Encaps[0] != "geneve "+ip {
			t.Errorf("chassis %s: %+v (present %v), want one encap geneve %s", h, c, ok, ip)
		}
		if _, err := e.cs.CoreV1().Nodes().Get(context.Background(), h, metav1.GetOptions{}); err == nil {
			t.Errorf("bare-metal host %s is a Kubernetes Node", h)
		}
		if out, err := e.labCmd(t, nil, "exec", "host:"+h, "--", "hostname"); err != nil || strings.TrimSpace(out) != h {
			t.Errorf("hostname in host:%s = %q, %v", h, out, err)
		}
		r, err := e.probe(t, "host:"+h, "172.19.0.10:80", "tcp")
		if err != nil || r.Client != ip {
			t.Errorf("probe from %s to the external host: %+v, %v; want client %s", h, r, err, ip)
		}
	}
}

// TestLabCRDsEstablished checks that the lab applied kovn's CRDs and waited
// for them before starting the controllers.
func TestLabCRDsEstablished(t *testing.T) {
	e := setup(t)
	if e.lab.CRDDir == "" {
		t.Skip("the lab applied no CRDs")
	}
	out, err := e.labCmd(t, nil, "kubectl", "get", "crd", "externalports.kovn.io",
		"-o", `jsonpath={.status.conditions[?(@.type=="Established")].status}`)
	if err != nil || strings.TrimSpace(out) != "True" {
		t.Errorf("CRD externalports.kovn.io Established = %q, %v", out, err)
	}
}
