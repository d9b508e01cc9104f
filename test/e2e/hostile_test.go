package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/rand"

	"github.com/kovn-io/kovn/go-controller/pkg/ipam"
	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// TestHostileObjects feeds kovn malformed and hostile objects through the
// real API server: huge label sets and selectors, policies with 10,000
// ipBlock excepts or peers, names at their length limits, two pods asking
// for one static IP, and garbage in every annotation kovn parses. Where
// kovn refuses, the object must get a Warning Event from kovn-controller
// and kovn_object_problems_total must move; either way no kovn (or lab)
// process may crash, the leader must stay, NB must see no failed
// transaction, a canary pod pair made first must still reach each other at
// the end, no address may be held twice, and `kovn-lab verify` and
// `kovnctl status` must be clean once the cases' namespaces are gone.
func TestHostileObjects(t *testing.T) {
	e := setup(t)
	requireController(t, e)
	requireKovnCNI(t, e)
	if len(e.lab.NodeNames) < 3 {
		t.Skip("needs three nodes")
	}
	start := time.Now()
	procs := e.processes(t)
	restarts := e.kovnPodRestarts(t)
	leader := e.leaderName(t)
	before := e.controllerMetrics(t, leader)

	cns := e.namespace(t, "hostile-canary")
	canary := e.createRunning(t, time.Minute,
		e.testServerPod(cns, "a", e.lab.NodeNames[0]), e.testServerPod(cns, "b", e.lab.NodeNames[1]))
	canaryTo := canary[1].Status.PodIP + ":80"
	e.waitReach(t, cns+"/a", canaryTo, true)

	nb := e.nb(t)
	t.Run("cases", func(t *testing.T) {
		t.Run("huge labels and selectors", func(t *testing.T) { t.Parallel(); hostileLabels(t, e, nb) })
		t.Run("10000 ipBlock excepts and peers", func(t *testing.T) { t.Parallel(); hostileIPBlocks(t, e, nb) })
		t.Run("names at length limits", func(t *testing.T) { t.Parallel(); hostileNames(t, e, nb) })
		t.Run("conflicting and malformed static IPs", func(t *testing.T) { t.Parallel(); hostileStaticIPs(t, e, nb) })
		t.Run("malformed annotations", func(t *testing.T) { t.Parallel(); hostileAnnotations(t, e, nb) })
	})

	// The cases' namespaces are gone (their cleanups wait for it).
	if err := poll(30*time.Second, func() error { return e.reach(t, cns+"/a", canaryTo, time.Second) }); err != nil {
		t.Errorf("canary %s/a no longer reaches %s: %v", cns, canaryTo, err)
	}
	for name, pid := range procs {
		if st := e.lab.Supervisor().Status(name); !st.Running || st.Pid != pid {
			t.Errorf("%s: pid %d before, now pid %d running %v: it crashed or was restarted (log %s)", name, pid, st.Pid, st.Running, st.Log)
		}
	}
	for c, n := range e.kovnPodRestarts(t) {
		if n != restarts[c] {
			t.Errorf("%s restarted %d times during the test (%d before)", c, n, restarts[c])
		}
	}
	if out, err := e.labCmd(t, nil, "status"); err != nil {
		t.Errorf("kovn-lab status: %v\n%s", err, out)
	}
	if now := e.leaderName(t); now != leader {
		t.Errorf("leader changed from %s to %s", leader, now)
	}
	after := e.controllerMetrics(t, leader)
	if d := after.sum(`kovn_nb_transactions_total{result="error"}`) - before.sum(`kovn_nb_transactions_total{result="error"}`); d != 0 {
		t.Errorf("%v NB transactions failed during the test, want 0", d)
	}
	for _, c := range []string{"node", "namespace", "pod", "service", "policy"} {
		series := fmt.Sprintf(`kovn_controller_syncs_total{controller=%q,result="error"}`, c)
		if d := after.sum(series) - before.sum(series); d > 0 {
			t.Logf("%s controller: %v failed syncs (retried)", c, d)
		}
	}
	if err := poll(60*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		dups, err := duplicateAddresses(ctx, e, nb)
		if err != nil {
			return err
		}
		if len(dups) > 0 {
			return fmt.Errorf("addresses held twice: %s", strings.Join(dups, "; "))
		}
		if out, err := e.labCmd(t, nil, "verify"); err != nil {
			return fmt.Errorf("kovn-lab verify: %v\n%s", err, out)
		}
		if out, code := e.kovnctl(t, "status"); code != 0 {
			return fmt.Errorf("kovnctl status exit %d: %s", code, problemLines(out))
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
	t.Logf("hostile objects: %.1fs", time.Since(start).Seconds())
}

// hostileLabels: a pod with 200 labels of maximal keys (half with a
// 199-character prefix) and 63-character values, selected by a policy
// whose selectors have 221 matchExpressions of every operator. It must be
// programmed and Ready, and the policy must admit the matching client
// and no other.
func hostileLabels(t *testing.T, e *env, nb client.Client) {
	ns := e.caseNamespace(t, "hostile-labels")
	prefix := strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + ".example"
	key := func(i int) string {
		k := fmt.Sprintf("k%03d-%s", i, strings.Repeat("x", 58))
		if i >= 100 {
			k = prefix + "/" + k
		}
		return k
	}
	val := func(i int) string { return fmt.Sprintf("v%03d-%s", i, strings.Repeat("y", 58)) }
	labels := map[string]string{}
	var exprs []metav1.LabelSelectorRequirement
	for i := 0; i < 200; i++ {
		labels[key(i)] = val(i)
		switch {
		case i < 100:
			exprs = append(exprs, metav1.LabelSelectorRequirement{Key: key(i), Operator: metav1.LabelSelectorOpIn, Values: []string{val(i), "other"}})
		case i < 150:
			exprs = append(exprs, metav1.LabelSelectorRequirement{Key: key(i), Operator: metav1.LabelSelectorOpExists})
		default:
			exprs = append(exprs, metav1.LabelSelectorRequirement{Key: key(i), Operator: metav1.LabelSelectorOpNotIn, Values: []string{"nope"}})
		}
	}
	for i := 0; i < 20; i++ {
		exprs = append(exprs, metav1.LabelSelectorRequirement{Key: fmt.Sprintf("absent-%d", i), Operator: metav1.LabelSelectorOpDoesNotExist})
	}
	withLabels := func(p *corev1.Pod, app string) *corev1.Pod {
		p.Labels = map[string]string{"app": app}
		for k, v := range labels {
			p.Labels[k] = v
		}
		return p
	}
	pol := npPolicy(ns, "many-exprs", &metav1.LabelSelector{MatchExpressions: append(append([]metav1.LabelSelectorRequirement(nil), exprs...),
		metav1.LabelSelectorRequirement{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{"big"}})},
		ingress(peers(podPeer(&metav1.LabelSelector{MatchExpressions: exprs})), port(tcp, 80)))
	e.createPolicies(t, pol)
	pods := e.createRunning(t, time.Minute,
		withLabels(e.testServerPod(ns, "big", e.lab.NodeNames[0]), "big"),
		withLabels(e.testServerPod(ns, "bigcli", e.lab.NodeNames[1]), "bigcli"),
		e.testServerPod(ns, "other", e.lab.NodeNames[2]))
	if err := poll(30*time.Second, func() error {
		lsp, err := nbops.GetSwitchPort(nb, own.PodPort(ns, "big"))
		if err != nil {
			return err
		}
		pg, err := nbops.GetPortGroup(nb, own.PolicyPortGroup(ns, pol.Name))
		if err != nil {
			return err
		}
		if !contains(pg.Ports, lsp.UUID) {
			return fmt.Errorf("port group %s lacks %s", pg.Name, lsp.Name)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	to := pods[0].Status.PodIP + ":80"
	e.waitReach(t, ns+"/bigcli", to, true)
	e.waitReach(t, ns+"/other", to, false)
	e.noKovnEvents(t, ns, "NetworkPolicy", pol.Name)
}

// hostileIPBlocks: one policy with an ipBlock of 10,000 excepts (every
// other address of 10.200.0.0/16, plus the denied client's own address)
// and one with 10,000 ipBlock peers (10.201.0.0/16, no pod there). kovn
// must program them or refuse them with an Event; it programs them. The
// allowed client still reaches the selected pod, the denied one does
// not, and a pod started on the selected pod's node afterwards comes up
// (ovn-controller there is not stalled by the flows).
func hostileIPBlocks(t *testing.T, e *env, nb client.Client) {
	ns := e.caseNamespace(t, "hostile-ipblock")
	pods := e.createRunning(t, time.Minute,
		e.testServerPod(ns, "srv", e.lab.NodeNames[0]),
		e.testServerPod(ns, "allowed", e.lab.NodeNames[1]),
		e.testServerPod(ns, "denied", e.lab.NodeNames[2]))
	srv, denied := pods[0], pods[2]
	var except []string
	for i := 0; i < 10000; i++ {
		except = append(except, fmt.Sprintf("10.200.%d.%d/32", (2*i)/256, (2*i)%256))
	}
	except = append(except, denied.Status.PodIP+"/32")
	var blocks []networkingv1.NetworkPolicyPeer
	for i := 0; i < 10000; i++ {
		blocks = append(blocks, cidrPeer(fmt.Sprintf("10.201.%d.%d/32", i/256, i%256)))
	}
	polExcept := npPolicy(ns, "huge-except", sel("app", "srv"), ingress(peers(cidrPeer("10.0.0.0/8", except...))))
	polPeers := npPolicy(ns, "huge-peers", sel("app", "srv"), ingress(blocks))
	created := time.Now()
	e.createPolicies(t, polExcept, polPeers)

	for _, c := range []struct {
		pol  *networkingv1.NetworkPolicy
		acls int
	}{{polExcept, 1}, {polPeers, 10000}} {
		owner := ns + "/" + c.pol.Name
		var n int
		err := poll(45*time.Second, func() error {
			n = 0
			for _, acl := range nbops.Owned[nbdb.ACL](nb, own.KindNetworkPolicy) {
				if acl.ExternalIDs[own.OwnerKey] != owner {
					continue
				}
				n++
				if strings.Contains(acl.Match, "!=") {
					t.Errorf("%s: ACL %s negates (flows exponential in the excepts): %.150s…", owner, acl.ExternalIDs[own.IDKey], acl.Match)
				}
			}
			if n != c.acls {
				return fmt.Errorf("%s has %d ACLs, want %d", owner, n, c.acls)
			}
			return nil
		})
		if err != nil {
			if ev := e.kovnEvents(ns, "NetworkPolicy", c.pol.Name); len(ev) > 0 {
				t.Logf("%s refused: %v", owner, ev)
				continue
			}
			t.Errorf("%s neither programmed nor refused with an Event: %v", owner, err)
			continue
		}
		t.Logf("%s programmed: %d ACLs, %.1fs after the policies were created", owner, n, time.Since(created).Seconds())
	}
	to := srv.Status.PodIP + ":80"
	e.waitReach(t, ns+"/allowed", to, true)
	e.waitReach(t, ns+"/denied", to, false)
	late := e.createRunning(t, 30*time.Second, e.testServerPod(ns, "late", e.lab.NodeNames[0]))[0]
	e.waitReach(t, ns+"/denied", late.Status.PodIP+":80", true)
}

// hostileNames: a 63-character namespace holding a pod with a 253-character
// name, the longest pod name kubelet can run there, a 63-character
// Service and a 253-character NetworkPolicy. OVN names derive from them
// (port <ns>_<pod>, port group kovn_np.<ns>.<policy>, load balancer
// Service_<ns>/<svc>_TCP) and must all work.
func hostileNames(t *testing.T, e *env, nb client.Client) {
	ns := e.caseNamespace(t, "hostile-names-"+strings.Repeat("n", 63-len("hostile-names-")-6))
	if len(ns) != 63 {
		t.Fatalf("namespace %q is %d characters", ns, len(ns))
	}
	dnsName := func(c string, n int) string { // dotted, as a DNS subdomain may be
		var parts []string
		for n > 0 {
			l := min(n, 63)
			parts = append(parts, strings.Repeat(c, l))
			n -= l + 1
		}
		return strings.Join(parts, ".")
	}
	// kubelet names the pod's log directory <ns>_<pod>_<uid> (NAME_MAX
	// 255): a longer pod name is valid in the API and programmed by kovn,
	// but kubelet cannot start it.
	runnable := dnsName("r", 255-len(ns)-len("_")-len("_")-36)
	unrunnable := dnsName("p", 253)
	svcName := "hostile-svc-" + strings.Repeat("s", 63-len("hostile-svc-"))
	polName := dnsName("q", 253)
	if len(unrunnable) != 253 || len(polName) != 253 {
		t.Fatalf("names of %d and %d characters", len(unrunnable), len(polName))
	}
	ctx := context.Background()

	long := e.testServerPod(ns, unrunnable, e.lab.NodeNames[0])
	long.Labels = map[string]string{"app": "unrunnable"}
	if _, err := e.cs.CoreV1().Pods(ns).Create(ctx, long, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := poll(30*time.Second, func() error {
		p, err := e.cs.CoreV1().Pods(ns).Get(ctx, unrunnable, metav1.GetOptions{})
		if err != nil {
			return err
		}
		pn, err := kube.ParsePodNetwork(p.Annotations[kube.PodNetworkAnnotation])
		if err != nil {
			return err
		}
		lsp, err := nbops.GetSwitchPort(nb, own.PodPort(ns, unrunnable))
		if err != nil {
			return err
		}
		if ip, ok := nbops.PortIP(lsp); !ok || ip != pn.Addrs()[0] {
			return fmt.Errorf("port %s addresses %v, annotation %v", lsp.Name, lsp.Addresses, pn.IPs)
		}
		return nil
	}); err != nil {
		t.Errorf("pod with a 253-character name: %v", err)
	}

	srvPod := e.testServerPod(ns, runnable, e.lab.NodeNames[0])
	srvPod.Labels = map[string]string{"app": "srv"}
	svc := e.createService(t, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: svcName},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "srv"},
			Ports: []corev1.ServicePort{{Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(80)}}},
	})
	e.createPolicies(t, npPolicy(ns, polName, sel("app", "srv"), ingress(peers(podPeer(sel("app", "cli"))), port(tcp, 80))))
	cli := e.testServerPod(ns, "cli", e.lab.NodeNames[1])
	cli.Labels = map[string]string{"app": "cli"}
	pods := e.createRunning(t, time.Minute, srvPod, cli, e.testServerPod(ns, "nocli", e.lab.NodeNames[2]))
	srv := pods[0]
	if err := poll(30*time.Second, func() error {
		lsp, err := nbops.GetSwitchPort(nb, own.PodPort(ns, runnable))
		if err != nil {
			return err
		}
		pg, err := nbops.GetPortGroup(nb, own.PolicyPortGroup(ns, polName))
		if err != nil {
			return err
		}
		if !contains(pg.Ports, lsp.UUID) {
			return fmt.Errorf("port group %s lacks the pod's port", pg.Name)
		}
		_, err = nbops.GetLoadBalancer(nb, own.ServiceLB(ns, svcName, "TCP"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	clusterIP := svc.Spec.ClusterIP + ":80"
	e.waitReach(t, ns+"/cli", clusterIP, true)
	if r, err := e.probe(t, ns+"/cli", clusterIP, "tcp"); err != nil || r.Pod != ns+"/"+runnable {
		t.Errorf("service %s answered %+v (%v), want pod %s", svcName, r, err, runnable)
	}
	e.waitReach(t, ns+"/cli", srv.Status.PodIP+":80", true)
	e.waitReach(t, ns+"/nocli", clusterIP, false)

	// The pod kubelet cannot start would be a "not set up" problem for
	// kovnctl status at the end: it goes now, with its port.
	zero := int64(0)
	if err := e.cs.CoreV1().Pods(ns).Delete(ctx, unrunnable, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	if err := poll(30*time.Second, func() error {
		if _, err := nbops.GetSwitchPort(nb, own.PodPort(ns, unrunnable)); err == nil {
			return fmt.Errorf("port of the deleted 253-character pod is still in NB")
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
}

// hostileStaticIPs: two pods ask for one static address at once; exactly
// one gets it, the other gets an IPConflict Event, no annotation and no
// port, and the address once the first is deleted. A request that is not
// an IP and one outside the node's subnet are refused with their Events.
func hostileStaticIPs(t *testing.T, e *env, nb client.Client) {
	ns := e.caseNamespace(t, "hostile-static")
	ctx := context.Background()
	node := e.lab.NodeNames[0]
	subnets := e.nodeSubnets(t)
	want, err := e.freeAddress(ctx, subnets[node])
	if err != nil {
		t.Fatal(err)
	}
	m0 := e.controllerMetrics(t, e.leaderName(t))
	request := func(name, ip string) *corev1.Pod {
		p := e.testServerPod(ns, name, node)
		p.Annotations = map[string]string{kube.PodIPRequestAnnotation: ip}
		return p
	}
	for _, p := range []*corev1.Pod{request("twin-a", want.String()), request("twin-b", want.String()),
		request("notip", "not-an-ip"), request("outside", ipam.NthAddr(subnets[e.lab.NodeNames[1]], 250).String())} {
		if _, err := e.cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var winner, loser string
	if err := poll(30*time.Second, func() error {
		for _, pair := range [][2]string{{"twin-a", "twin-b"}, {"twin-b", "twin-a"}} {
			p, err := e.cs.CoreV1().Pods(ns).Get(ctx, pair[0], metav1.GetOptions{})
			if err == nil && p.Status.PodIP == want.String() && p.Status.Phase == corev1.PodRunning {
				winner, loser = pair[0], pair[1]
				return nil
			}
		}
		return fmt.Errorf("neither twin runs with %s", want)
	}); err != nil {
		t.Fatal(err)
	}
	e.waitKovnEvent(t, ns, "Pod", loser, "IPConflict")
	e.waitKovnEvent(t, ns, "Pod", "notip", "InvalidIPRequest")
	e.waitKovnEvent(t, ns, "Pod", "outside", "IPOutOfRange")
	e.waitProblems(t, m0, "Pod", "IPConflict", "InvalidIPRequest", "IPOutOfRange")
	for _, name := range []string{loser, "notip", "outside"} {
		p, err := e.cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if a, ok := p.Annotations[kube.PodNetworkAnnotation]; ok || p.Status.PodIP != "" || podReady(p) {
			t.Errorf("refused pod %s: annotation %q, IP %q, ready %v; want no network", name, a, p.Status.PodIP, podReady(p))
		}
		if _, err := nbops.GetSwitchPort(nb, own.PodPort(ns, name)); err == nil {
			t.Errorf("refused pod %s has a port", name)
		}
	}
	if holders := portsHolding(nb, want); len(holders) != 1 || holders[0] != own.PodPort(ns, winner) {
		t.Errorf("ports holding %s: %v, want only %s", want, holders, own.PodPort(ns, winner))
	}

	zero := int64(0)
	if err := e.cs.CoreV1().Pods(ns).Delete(ctx, winner, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	if err := poll(45*time.Second, func() error {
		p, err := e.cs.CoreV1().Pods(ns).Get(ctx, loser, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Status.PodIP != want.String() || !podReady(p) {
			return fmt.Errorf("%s: IP %q ready %v, want %s once %s is gone", loser, p.Status.PodIP, podReady(p), want, winner)
		}
		if holders := portsHolding(nb, want); len(holders) != 1 || holders[0] != own.PodPort(ns, loser) {
			return fmt.Errorf("ports holding %s: %v, want only %s", want, holders, own.PodPort(ns, loser))
		}
		return nil
	}); err != nil {
		e.describePod(t, ns, loser)
		t.Error(err)
	}
}

// hostileAnnotations: garbage in the annotations kovn reads on other
// objects. kovn.io/acl-logging on a namespace (bad JSON, then a bad
// severity) gives InvalidACLLogging and leaves the namespace's policies
// working, unlogged until fixed; a pod's kovn.io/pod-network that is not
// JSON is replaced by a real address; one forged to claim another pod's
// address gives IPConflict and no port; Nodes with an unreadable
// kovn.io/node-subnets or kovn.io/node-gateway give InvalidSubnetAnnotation
// and InvalidGateway, and their rows go with them.
func hostileAnnotations(t *testing.T, e *env, nb client.Client) {
	ns := e.caseNamespace(t, "hostile-annot")
	ctx := context.Background()
	m0 := e.controllerMetrics(t, e.leaderName(t))
	setLogging := func(v string) {
		t.Helper()
		patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{"kovn.io/acl-logging": v}}})
		if _, err := e.cs.CoreV1().Namespaces().Patch(ctx, ns, "application/merge-patch+json", patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	setLogging(`{"deny":`)
	e.waitKovnEvent(t, "default", "Namespace", ns, "InvalidACLLogging")

	e.createPolicies(t, npPolicy(ns, "allow-cli", sel("app", "srv"), ingress(peers(podPeer(sel("app", "cli"))), port(tcp, 80))))
	srvPod := e.testServerPod(ns, "srv", e.lab.NodeNames[0])
	srvPod.Labels = map[string]string{"app": "srv"}
	cli := e.testServerPod(ns, "cli", e.lab.NodeNames[1])
	cli.Labels = map[string]string{"app": "cli"}
	garb := e.testServerPod(ns, "garbage-network", e.lab.NodeNames[2])
	garb.Annotations = map[string]string{kube.PodNetworkAnnotation: "{garbage"}
	pods := e.createRunning(t, time.Minute, srvPod, cli, garb)
	srv := pods[0]
	if pn, err := kube.ParsePodNetwork(pods[2].Annotations[kube.PodNetworkAnnotation]); err != nil || pn.Addrs()[0].String() != pods[2].Status.PodIP {
		t.Errorf("pod with a garbage pod-network: annotation %q (%v), IP %s", pods[2].Annotations[kube.PodNetworkAnnotation], err, pods[2].Status.PodIP)
	}
	to := srv.Status.PodIP + ":80"
	e.waitReach(t, ns+"/cli", to, true)
	e.waitReach(t, ns+"/garbage-network", to, false)

	// A pod created with another pod's network annotation.
	forged := e.testServerPod(ns, "forged", e.lab.NodeNames[0])
	forged.Annotations = map[string]string{kube.PodNetworkAnnotation: srv.Annotations[kube.PodNetworkAnnotation]}
	if _, err := e.cs.CoreV1().Pods(ns).Create(ctx, forged, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitKovnEvent(t, ns, "Pod", "forged", "IPConflict")
	if _, err := nbops.GetSwitchPort(nb, own.PodPort(ns, "forged")); err == nil {
		t.Errorf("the forged pod has a port")
	}
	srvIP := netip.MustParseAddr(srv.Status.PodIP)
	if holders := portsHolding(nb, srvIP); len(holders) != 1 || holders[0] != own.PodPort(ns, "srv") {
		t.Errorf("ports holding %s: %v, want only %s", srvIP, holders, own.PodPort(ns, "srv"))
	}
	zero := int64(0)
	if err := e.cs.CoreV1().Pods(ns).Delete(ctx, "forged", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}

	setLogging(`{"deny":"loud"}`)
	e.waitKovnEvent(t, "default", "Namespace", ns, "InvalidACLLogging", "loud")
	e.waitReach(t, ns+"/cli", to, true)
	setLogging(`{"deny":"alert"}`)
	if err := poll(20*time.Second, func() error {
		for _, acl := range nbops.Owned[nbdb.ACL](nb, own.KindPolicyIsolation) {
			if acl.ExternalIDs[own.OwnerKey] == ns && acl.ExternalIDs[own.IDKey] == "ingress/drop" {
				if acl.Log && acl.Severity != nil && *acl.Severity == nbdb.ACLSeverityAlert {
					return nil
				}
				return fmt.Errorf("isolation drop ACL of %s: log %v severity %v", ns, acl.Log, acl.Severity)
			}
		}
		return fmt.Errorf("no isolation drop ACL for %s", ns)
	}); err != nil {
		t.Errorf("after a valid kovn.io/acl-logging: %v", err)
	}

	// Nodes no kubelet runs, with kovn's node annotations garbled.
	base := "hostile-fake-" + rand.String(5)
	badSubnets, badGateway := base+"-subnets", base+"-gateway"
	for name, ann := range map[string]map[string]string{
		badSubnets: {kube.NodeSubnetsAnnotation: `["not-a-cidr"`},
		badGateway: {kube.NodeGatewayAnnotation: `{"garbage":`},
	} {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: ann}}
		if _, err := e.cs.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = e.cs.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{}) })
	}
	e.waitKovnEvent(t, "default", "Node", badSubnets, "InvalidSubnetAnnotation")
	e.waitKovnEvent(t, "default", "Node", badGateway, "InvalidGateway")
	e.waitProblems(t, m0, "Namespace", "InvalidACLLogging")
	e.waitProblems(t, m0, "Pod", "IPConflict")
	e.waitProblems(t, m0, "Node", "InvalidSubnetAnnotation", "InvalidGateway")
	if _, err := nbops.GetSwitch(nb, own.NodeSwitch(badSubnets)); err == nil {
		t.Errorf("node %s with an unreadable subnet got a switch", badSubnets)
	}
	for _, name := range []string{badSubnets, badGateway} {
		if err := e.cs.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := poll(30*time.Second, func() error {
		if _, err := nbops.GetSwitch(nb, own.NodeSwitch(badGateway)); err == nil {
			return fmt.Errorf("switch of the deleted node %s is still in NB", badGateway)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
}

// caseNamespace is e.namespace whose cleanup also waits until the
// namespace is gone, so the final checks see a quiet lab.
func (e *env) caseNamespace(t *testing.T, prefix string) string {
	var name string
	t.Cleanup(func() { // runs after e.namespace's delete
		_ = poll(90*time.Second, func() error {
			if _, err := e.cs.CoreV1().Namespaces().Get(context.Background(), name, metav1.GetOptions{}); err == nil {
				return fmt.Errorf("namespace %s still exists", name)
			}
			return nil
		})
	})
	name = e.namespace(t, prefix)
	return name
}

// processes records the pid of every lab component, all of which must run.
func (e *env) processes(t *testing.T) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, name := range e.lab.Supervisor().Names() {
		st := e.lab.Supervisor().Status(name)
		if !st.Running {
			t.Fatalf("%s is not running before the test", name)
		}
		out[name] = st.Pid
	}
	return out
}

// kovnPodRestarts counts the restarts of every container of kovn's pods
// (--deploy manifests; none when kovn runs as the lab's processes).
func (e *env) kovnPodRestarts(t *testing.T) map[string]int32 {
	t.Helper()
	pods, err := e.cs.CoreV1().Pods("kovn-system").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int32{}
	for _, p := range pods.Items {
		for _, c := range p.Status.ContainerStatuses {
			out[p.Name+"/"+c.Name] = c.RestartCount
		}
	}
	return out
}

// metricsPage is one scrape of a controller replica's /metrics.
type metricsPage string

func (e *env) controllerMetrics(t *testing.T, holder string) metricsPage {
	t.Helper()
	who, get := e.controllerEndpoint(t, holder)
	code, page, err := get("/metrics")
	if err != nil || code != 200 {
		t.Fatalf("metrics of %s: HTTP %d %v", who, code, err)
	}
	return metricsPage(page)
}

// sum adds up the samples whose line starts with series (a name, or a
// name with its first labels, as the exposition format orders them).
func (p metricsPage) sum(series string) float64 {
	name, _, _ := strings.Cut(series, "{")
	var s float64
	for _, l := range strings.Split(string(p), "\n") {
		if strings.HasPrefix(l, strings.TrimSuffix(series, "}")) {
			s += metricSum(l, name)
		}
	}
	return s
}

func (p metricsPage) problems(kind, reason string) float64 {
	return p.sum(fmt.Sprintf(`kovn_object_problems_total{kind=%q,reason=%q}`, kind, reason))
}

// waitProblems waits until kovn_object_problems_total of each reason has
// grown since before.
func (e *env) waitProblems(t *testing.T, before metricsPage, kind string, reasons ...string) {
	t.Helper()
	leader := e.leaderName(t)
	for _, reason := range reasons {
		if err := poll(20*time.Second, func() error {
			now := e.controllerMetrics(t, leader)
			if now.problems(kind, reason) <= before.problems(kind, reason) {
				return fmt.Errorf("kovn_object_problems_total{kind=%q,reason=%q} still %v", kind, reason, now.problems(kind, reason))
			}
			return nil
		}); err != nil {
			t.Error(err)
		}
	}
}

// kovnEvents lists kovn-controller's Warning events on an object
// ("Reason: message").
func (e *env) kovnEvents(ns, kind, name string) []string {
	evs, err := e.cs.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{
		FieldSelector: "involvedObject.kind=" + kind + ",involvedObject.name=" + name})
	if err != nil {
		return nil
	}
	var out []string
	for _, ev := range evs.Items {
		if ev.Type == corev1.EventTypeWarning && ev.Source.Component == "kovn-controller" {
			out = append(out, ev.Reason+": "+ev.Message)
		}
	}
	return out
}

// waitKovnEvent waits for kovn's Warning with reason on an object, its
// message containing each of words.
func (e *env) waitKovnEvent(t *testing.T, ns, kind, name, reason string, words ...string) {
	t.Helper()
	if err := poll(30*time.Second, func() error {
	events:
		for _, ev := range e.kovnEvents(ns, kind, name) {
			if !strings.HasPrefix(ev, reason+": ") {
				continue
			}
			for _, w := range words {
				if !strings.Contains(ev, w) {
					continue events
				}
			}
			return nil
		}
		return fmt.Errorf("no %s event from kovn-controller on %s %s/%s mentioning %v", reason, kind, ns, name, words)
	}); err != nil {
		t.Error(err)
	}
}

func (e *env) noKovnEvents(t *testing.T, ns, kind, name string) {
	t.Helper()
	if evs := e.kovnEvents(ns, kind, name); len(evs) > 0 {
		t.Errorf("kovn reported problems with %s %s/%s: %v", kind, ns, name, evs)
	}
}

func (e *env) createPolicies(t *testing.T, pols ...*networkingv1.NetworkPolicy) {
	t.Helper()
	for _, p := range pols {
		if _, err := e.cs.NetworkingV1().NetworkPolicies(p.Namespace).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// reach probes once with a short timeout (a denied probe costs it).
func (e *env) reach(t *testing.T, from, to string, timeout time.Duration) error {
	_, err := e.labCmd(t, nil, "probe", "--from", from, "--to", to, "--timeout", timeout.String())
	return err
}

// waitReach waits until a TCP probe from → to answers (want) or not.
func (e *env) waitReach(t *testing.T, from, to string, want bool) {
	t.Helper()
	if err := poll(30*time.Second, func() error {
		err := e.reach(t, from, to, time.Second)
		switch {
		case want && err != nil:
			return err
		case !want && err == nil:
			return fmt.Errorf("%s reaches %s, want it denied", from, to)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
}

// freeAddress is a high address of subnet that no pod's annotation holds.
func (e *env) freeAddress(ctx context.Context, subnet netip.Prefix) (netip.Addr, error) {
	pods, err := e.cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return netip.Addr{}, err
	}
	used := map[netip.Addr]bool{}
	for _, p := range pods.Items {
		if pn, err := kube.ParsePodNetwork(p.Annotations[kube.PodNetworkAnnotation]); err == nil {
			for _, a := range pn.Addrs() {
				used[a] = true
			}
		}
	}
	for n := uint64(250); n > 200; n-- {
		if a := ipam.NthAddr(subnet, n); !used[a] {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("no free address in %s", subnet)
}

// portsHolding names the kovn pod and external ports whose addresses hold ip.
func portsHolding(nb client.Client, ip netip.Addr) []string {
	var out []string
	for _, kind := range []string{own.KindPod, own.KindExternalPort} {
		for _, lsp := range nbops.Owned[nbdb.LogicalSwitchPort](nb, kind) {
			if a, ok := nbops.PortIP(lsp); ok && a == ip {
				out = append(out, lsp.Name)
			}
		}
	}
	return out
}

func contains(uuids []string, u string) bool {
	for _, x := range uuids {
		if x == u {
			return true
		}
	}
	return false
}
