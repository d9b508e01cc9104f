package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kovn-io/kovn/go-controller/pkg/lab"
)

// TestUnderlay runs in an underlay lab (kovn-lab up --mode underlay
// [--underlay-vlan N]); test/e2e/run.sh brings one up after the overlay
// suite. Pods sit on the lab's physical subnet: the external host reaches
// a pod at its own IP and the pod sees the external host's real IP; pods
// reach each other across nodes, a ClusterIP service answers, a deny
// policy refuses; with a VLAN, the pods' frames cross the underlay bridge
// tagged.
func TestUnderlay(t *testing.T) {
	e := setup(t)
	if e.lab.Mode != "underlay" {
		t.Skip("needs an underlay lab (kovn-lab up --mode underlay)")
	}
	requireKovnCNI(t, e)
	podCIDR := netip.MustParsePrefix(lab.UnderlayPodCIDR)
	ns := e.namespace(t, "underlay")
	n1, n2 := e.lab.NodeNames[0], e.lab.NodeNames[1]
	pods := e.createRunning(t, 2*time.Minute, e.testServerPod(ns, "a", n1), e.testServerPod(ns, "b", n2))
	a, b := pods[0], pods[1]
	for _, p := range pods {
		if ip, err := netip.ParseAddr(p.Status.PodIP); err != nil || !podCIDR.Contains(ip) {
			t.Fatalf("pod %s has IP %s, want one in the underlay subnet %s", p.Name, p.Status.PodIP, podCIDR)
		}
	}

	t.Run("external host to pod, no NAT", func(t *testing.T) {
		r, err := e.probe(t, "external", a.Status.PodIP+":8080", "tcp")
		if err != nil {
			t.Fatal(err)
		}
		if r.Client != lab.ExternalIP {
			t.Errorf("pod saw %s, want the external host's own %s", r.Client, lab.ExternalIP)
		}
	})

	t.Run("pod to pod across nodes", func(t *testing.T) {
		tagged := e.captureVLAN(t, n2, func() {
			r, err := e.probe(t, ns+"/a", b.Status.PodIP+":8080", "tcp")
			if err != nil {
				t.Fatal(err)
			}
			if r.Client != a.Status.PodIP {
				t.Errorf("b saw %s, want a's %s", r.Client, a.Status.PodIP)
			}
		})
		if vlan := e.lab.UnderlayVLAN; vlan != 0 && tagged == 0 {
			t.Errorf("no frame tagged with VLAN %d crossed the underlay bridge to %s", vlan, n2)
		}
	})

	t.Run("ClusterIP service", func(t *testing.T) {
		svc := e.createService(t, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "b"},
				Ports: []corev1.ServicePort{{Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}}},
		})
		e.waitAnswering(t, ns+"/a", svc.Spec.ClusterIP+":80", "tcp")
		r, err := e.probe(t, ns+"/a", svc.Spec.ClusterIP+":80", "tcp")
		if err != nil {
			t.Fatal(err)
		}
		if r.Pod != ns+"/b" {
			t.Errorf("service answered from %q, want %s/b", r.Pod, ns)
		}
	})

	t.Run("deny policy", func(t *testing.T) {
		np := &networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "deny-b"},
			Spec: networkingv1.NetworkPolicySpec{
				PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "b"}},
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			},
		}
		if _, err := e.cs.NetworkingV1().NetworkPolicies(ns).Create(context.Background(), np, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		err := poll(20*time.Second, func() error {
			if _, err := e.probe(t, ns+"/a", b.Status.PodIP+":8080", "tcp"); err == nil {
				return fmt.Errorf("a still reaches b")
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
		if _, err := e.probe(t, "external", a.Status.PodIP+":8080", "tcp"); err != nil {
			t.Errorf("the policy on b cut a off too: %v", err)
		}
	})
}

// captureVLAN counts the frames tagged with the lab's underlay VLAN that
// reach node's port of the underlay bridge while f runs; 0 without a VLAN.
func (e *env) captureVLAN(t *testing.T, node string, f func()) int {
	t.Helper()
	vlan := e.lab.UnderlayVLAN
	if vlan == 0 {
		f()
		return 0
	}
	// In the underlay namespace the veth to node is named after the node.
	cmd := exec.Command("nsenter", "--net="+lab.NetNSPath("ul"), "--", "timeout", "10",
		"tcpdump", "-n", "-e", "-l", "-i", node, "vlan", strconv.Itoa(vlan), "and", "tcp", "port", "8080")
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // tcpdump attaches its filter
	f()
	time.Sleep(300 * time.Millisecond)
	_ = cmd.Process.Signal(interruptSignal())
	_ = cmd.Wait()
	n := bytes.Count(out.Bytes(), []byte("vlan "+strconv.Itoa(vlan)))
	t.Logf("%d frames tagged with VLAN %d on the underlay bridge's port to %s", n, vlan, node)
	return n
}

func interruptSignal() os.Signal { return os.Interrupt }
