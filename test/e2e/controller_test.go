package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// nb connects a read-only view of the lab's NB database, through every
// member's unix socket with kovn's own client options (leader only,
// reconnecting), so it outlives a killed RAFT leader as the controller does.
func (e *env) nb(t *testing.T) client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := nbops.NewClient(ctx, strings.Split(e.lab.OVNUnixRemote("nb"), ","), nbops.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func requireController(t *testing.T, e *env) {
	if !e.lab.HasController() {
		t.Fatal("the lab runs no kovn-controller (was it built?)")
	}
}

// nodeSubnets reads the subnet kovn recorded on every lab node.
func (e *env) nodeSubnets(t *testing.T) map[string]netip.Prefix {
	t.Helper()
	out := map[string]netip.Prefix{}
	err := poll(30*time.Second, func() error {
		for _, n := range e.lab.NodeNames {
			node, err := e.cs.CoreV1().Nodes().Get(context.Background(), n, metav1.GetOptions{})
			if err != nil {
				return err
			}
			s, err := kube.ParseNodeSubnets(node.Annotations[kube.NodeSubnetsAnnotation])
			if err != nil || len(s) != 1 {
				return fmt.Errorf("node %s: subnets %v (%v)", n, s, err)
			}
			out[n] = s[0]
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func pausePod(ns, name, node string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.PodSpec{
			NodeName:    node,
			Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Containers:  []corev1.Container{{Name: "c", Image: "kovn.local/never-started:v1", ImagePullPolicy: corev1.PullNever}},
		},
	}
}

// TestPodsGetPortsAndAddresses: 30 pods over 3 namespaces and 3 nodes get
// unique addresses in their node's subnet, a port each that matches the
// annotation, and exact namespace address sets; deleting them removes all.
func TestPodsGetPortsAndAddresses(t *testing.T) {
	e := setup(t)
	requireController(t, e)
	nb := e.nb(t)
	subnets := e.nodeSubnets(t)
	ctx := context.Background()
	var nss []string
	for i := 0; i < 3; i++ {
		nss = append(nss, e.namespace(t, fmt.Sprintf("ctl%d", i)))
	}
	want := map[string]string{} // port name → node
	for i := 0; i < 30; i++ {
		ns, node := nss[i%3], e.lab.NodeNames[i%len(e.lab.NodeNames)]
		name := fmt.Sprintf("p%02d", i)
		if _, err := e.cs.CoreV1().Pods(ns).Create(ctx, pausePod(ns, name, node), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		want[own.PodPort(ns, name)] = node
	}
	seen := map[netip.Addr]string{}
	err := poll(60*time.Second, func() error {
		seen = map[netip.Addr]string{}
		for _, ns := range nss {
			pods, err := e.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return err
			}
			for i := range pods.Items {
				if err := checkPodPort(nb, &pods.Items[i], subnets, seen); err != nil {
					return err
				}
			}
		}
		return checkNamespaceSets(nb, nss, seen)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 30 {
		t.Fatalf("%d distinct addresses, want 30", len(seen))
	}

	for _, ns := range nss {
		if err := e.cs.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}, metav1.ListOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	err = poll(60*time.Second, func() error {
		for name := range want {
			if _, err := nbops.GetSwitchPort(nb, name); err == nil {
				return fmt.Errorf("port %s still in NB", name)
			}
		}
		return checkNamespaceSets(nb, nss, map[netip.Addr]string{})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkPodPort verifies one pod's annotation and port, recording its IP.
func checkPodPort(nb client.Client, pod *corev1.Pod, subnets map[string]netip.Prefix, seen map[netip.Addr]string) error {
	key := pod.Namespace + "/" + pod.Name
	pn, err := kube.ParsePodNetwork(pod.Annotations[kube.PodNetworkAnnotation])
	if err != nil {
		return fmt.Errorf("pod %s: %v", key, err)
	}
	ip := pn.Addrs()[0]
	if !subnets[pod.Spec.NodeName].Contains(ip) {
		return fmt.Errorf("pod %s: %s outside node %s subnet %s", key, ip, pod.Spec.NodeName, subnets[pod.Spec.NodeName])
	}
	if other, dup := seen[ip]; dup {
		return fmt.Errorf("pod %s and %s both hold %s", key, other, ip)
	}
	seen[ip] = key
	lsp, err := nbops.GetSwitchPort(nb, own.PodPort(pod.Namespace, pod.Name))
	if err != nil {
		return fmt.Errorf("pod %s: port: %v", key, err)
	}
	wantAddr := pn.MAC + " " + ip.String()
	if len(lsp.Addresses) != 1 || lsp.Addresses[0] != wantAddr || len(lsp.PortSecurity) != 1 || lsp.PortSecurity[0] != wantAddr {
		return fmt.Errorf("pod %s: port addresses %v port_security %v, want %q", key, lsp.Addresses, lsp.PortSecurity, wantAddr)
	}
	if lsp.Options["requested-chassis"] != pod.Spec.NodeName || lsp.Options["iface-id-ver"] != string(pod.UID) {
		return fmt.Errorf("pod %s: port options %v", key, lsp.Options)
	}
	if lsp.ExternalIDs[own.OwnerKey] != key || lsp.ExternalIDs[own.KindKey] != own.KindPod {
		return fmt.Errorf("pod %s: port external_ids %v", key, lsp.ExternalIDs)
	}
	return nil
}

// checkNamespaceSets requires each namespace's set to hold exactly the
// addresses of its pods in seen.
func checkNamespaceSets(nb client.Client, nss []string, seen map[netip.Addr]string) error {
	for _, ns := range nss {
		var want []string
		for ip, key := range seen {
			if strings.HasPrefix(key, ns+"/") {
				want = append(want, ip.String())
			}
		}
		as, err := nbops.GetAddressSet(nb, own.NamespaceAddressSet(ns, "v4"))
		if err != nil {
			return fmt.Errorf("address set of %s: %v", ns, err)
		}
		got := append([]string(nil), as.Addresses...)
		sort.Strings(got)
		sort.Strings(want)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			return fmt.Errorf("address set of %s = %v, want %v", ns, got, want)
		}
	}
	return nil
}
