package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/kovn-io/kovn/go-controller/pkg/lab"
	"github.com/kovn-io/kovn/go-controller/pkg/lab/probe"
)

// Services are answered by OVN load balancers alone: the lab runs no
// kube-proxy. The real kube-controller-manager makes the EndpointSlices.

// webDeployment runs the test server as app=<name>, spread one per node,
// naming TCP 8080 "web" so Services can target it by name.
func (e *env) webDeployment(t *testing.T, ns, name string, replicas int32) *appsv1.Deployment {
	t.Helper()
	pod := e.testServerPod(ns, name, "")
	pod.Spec.Containers[0].Ports = []corev1.ContainerPort{
		{Name: "web", ContainerPort: 8080, Protocol: corev1.ProtocolTCP},
		{Name: "dns-ish", ContainerPort: 9090, Protocol: corev1.ProtocolUDP},
	}
	pod.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{
		MaxSkew: 1, TopologyKey: "kubernetes.io/hostname", WhenUnsatisfiable: corev1.DoNotSchedule,
		LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
	}}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: pod.Labels}, Spec: pod.Spec},
		},
	}
	d, err := e.cs.AppsV1().Deployments(ns).Create(context.Background(), d, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.waitRunning(t, ns, "app="+name, int(replicas))
	return d
}

// waitRunning waits until exactly n pods match the selector and all run.
func (e *env) waitRunning(t *testing.T, ns, selector string, n int) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	err := poll(2*time.Minute, func() error {
		l, err := e.cs.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return err
		}
		pods = pods[:0]
		for _, p := range l.Items {
			if p.DeletionTimestamp != nil {
				continue
			}
			if p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" {
				return fmt.Errorf("pod %s is %s", p.Name, p.Status.Phase)
			}
			pods = append(pods, p)
		}
		if len(pods) != n {
			return fmt.Errorf("%d pods of %s running, want %d", len(pods), selector, n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pods
}

func (e *env) createService(t *testing.T, svc *corev1.Service) *corev1.Service {
	t.Helper()
	got, err := e.cs.CoreV1().Services(svc.Namespace).Create(context.Background(), svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func webService(ns, name, app string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": app},
			Ports: []corev1.ServicePort{
				{Name: "tcp", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromString("web")},
				{Name: "udp", Protocol: corev1.ProtocolUDP, Port: 80, TargetPort: intstr.FromInt32(9090)},
			},
		},
	}
}

// answers probes addr n times from a place and counts the answering pods;
// failures are counted under "".
func (e *env) answers(t *testing.T, from, addr, proto string, n int) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for i := 0; i < n; i++ {
		r, err := e.probe(t, from, addr, proto)
		if err != nil {
			seen[""]++
			continue
		}
		seen[r.Pod]++
	}
	return seen
}

func podNames(pods []corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Namespace+"/"+p.Name)
	}
	sort.Strings(out)
	return out
}

func keys(m map[string]int) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// waitAnswering waits until the service answers from the client at all
// (the load balancer reaches NB and ovn-controller asynchronously).
func (e *env) waitAnswering(t *testing.T, from, addr, proto string) {
	t.Helper()
	if err := poll(30*time.Second, func() error { _, err := e.probe(t, from, addr, proto); return err }); err != nil {
		t.Fatalf("%s %s from %s never answered: %v", proto, addr, from, err)
	}
}

// TestServiceClusterIP: a 3-replica service, reached from a pod, is
// answered by every backend over TCP (named targetPort) and UDP on the same
// port; scaled to 1, only the survivor answers within 2 s.
func TestServiceClusterIP(t *testing.T) {
	e := setup(t)
	requireKovnCNI(t, e)
	ns := e.namespace(t, "svc")
	client := e.createRunning(t, time.Minute, e.testServerPod(ns, "client", e.lab.NodeNames[0]))[0]
	e.webDeployment(t, ns, "web", 3)
	backends := e.waitRunning(t, ns, "app=web", 3)
	svc := e.createService(t, webService(ns, "web", "web"))
	vip := svc.Spec.ClusterIP + ":80"
	from := ns + "/" + client.Name
	e.waitAnswering(t, from, vip, "tcp")

	seen := e.answers(t, from, vip, "tcp", 60)
	if got, want := keys(seen), podNames(backends); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("60 TCP requests to %s answered by %v (%v), want each of %v", vip, got, seen, want)
	}
	// Hosts reach ClusterIPs too: kovn-node routes the service CIDR into
	// the management port, where the node switch's load balancers answer.
	if r, err := e.probe(t, "host:"+e.lab.NodeNames[1], vip, "tcp"); err != nil || !strings.HasPrefix(r.Pod, ns+"/web-") {
		t.Errorf("host %s → %s: %+v %v", e.lab.NodeNames[1], vip, r, err)
	}
	seen = e.answers(t, from, vip, "udp", 30)
	if seen[""] > 0 || len(seen) < 2 {
		t.Errorf("30 UDP requests to %s: %v, want all answered by several backends", vip, seen)
	}

	// Scale to 1: the terminating pods leave the load balancer.
	scale, err := e.cs.AppsV1().Deployments(ns).GetScale(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	scale.Spec.Replicas = 1
	if _, err := e.cs.AppsV1().Deployments(ns).UpdateScale(context.Background(), "web", scale, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	// The bound is on kovn: it starts when kube-controller-manager has
	// published the EndpointSlice with one ready endpoint (under CI load
	// that alone has taken seconds), and the probing is allowed for.
	if err := poll(30*time.Second, func() error { return e.readyEndpoints(ns, "web", 1) }); err != nil {
		t.Fatal(err)
	}
	sliced := time.Now()
	var survivor string
	if err := poll(10*time.Second, func() error {
		pods, err := e.cs.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return err
		}
		var live []string
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil {
				live = append(live, ns+"/"+p.Name)
			}
		}
		if len(live) != 1 {
			return fmt.Errorf("%d pods not terminating", len(live))
		}
		survivor = live[0]
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Probed from inside the client's namespace by this process: a
	// `kovn-lab probe` run costs 0.2 s (and more under CI load), which
	// would measure the probing, not the service.
	target, err := e.lab.ResolveTarget(context.Background(), from)
	if err != nil {
		t.Fatal(err)
	}
	c := probeUntil(target.NetNS, vip, survivor, sliced, 20, 10*time.Second)
	t.Logf("scaled to 1: the EndpointSlice had one ready endpoint %v after the scale; only %s answers %v after that (%d probes; before: %v)",
		sliced.Sub(start).Round(10*time.Millisecond), survivor, c.at.Sub(sliced).Round(10*time.Millisecond), c.probes, c.others)
	if c.err != nil {
		t.Fatal(c.err)
	}
	if took := c.at.Sub(sliced); took > 2*time.Second {
		t.Errorf("only the survivor answered %v after the EndpointSlice changed, want within 2 s; other answers: %v", took, c.others)
	}
}

// converged is what probeUntil saw.
type converged struct {
	at     time.Time // the end of the first probe of the final all-want run
	probes int
	others []string // "+offset answer" for every other answer or failure, in order
	err    error
}

// probeUntil sends one TCP probe at a time to addr from inside netns until
// want has answered run probes in a row, within limit; offsets in the
// report are from since. The convergence point is when the first probe of
// that run ended: a bound from above on when the data path stopped
// choosing anyone else.
func probeUntil(netns, addr, want string, since time.Time, run int, limit time.Duration) converged {
	var c converged
	begin := time.Now()
	streak := 0
	for time.Since(begin) < limit {
		var r probe.Reply
		perr := ns.WithNetNSPath(netns, func(ns.NetNS) error {
			var err error
			r, _, err = probe.Probe(context.Background(), "tcp", addr, time.Second)
			return err
		})
		end := time.Now()
		c.probes++
		if perr == nil && r.Pod == want {
			if streak == 0 {
				c.at = end
			}
			if streak++; streak == run {
				return c
			}
		} else {
			streak = 0
			got := r.Pod
			if perr != nil {
				got = perr.Error()
			}
			c.others = append(c.others, fmt.Sprintf("+%v %s", end.Sub(since).Round(time.Millisecond), got))
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.err = fmt.Errorf("%s: not %d answers in a row from %s within %v; other answers: %v", addr, run, want, limit, c.others)
	return c
}

// readyEndpoints succeeds when the service's EndpointSlices list exactly n
// ready endpoints.
func (e *env) readyEndpoints(ns, svc string, n int) error {
	slices, err := e.cs.DiscoveryV1().EndpointSlices(ns).List(context.Background(),
		metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svc})
	if err != nil {
		return err
	}
	ready := 0
	for _, sl := range slices.Items {
		for _, ep := range sl.Endpoints {
			if ep.Conditions.Ready == nil || *ep.Conditions.Ready {
				ready++
			}
		}
	}
	if ready != n {
		return fmt.Errorf("service %s/%s: %d ready endpoints, want %d", ns, svc, ready, n)
	}
	return nil
}

// TestServiceNodePort: a NodePort answers on every node's IP from the
// external host and from a pod; with externalTrafficPolicy Local it answers
// only on the node that has an endpoint and the server sees the external
// client's own address.
func TestServiceNodePort(t *testing.T) {
	e := setup(t)
	requireKovnCNI(t, e)
	ns := e.namespace(t, "nodeport")
	n1 := e.lab.NodeNames[0]
	backend := e.testServerPod(ns, "backend", n1)
	backend.Labels["app"] = "np"
	backend.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "web", ContainerPort: 8080}}
	client := e.testServerPod(ns, "client", e.lab.NodeNames[1])
	e.createRunning(t, time.Minute, backend, client)

	cluster := webService(ns, "np-cluster", "np")
	cluster.Spec.Type = corev1.ServiceTypeNodePort
	cluster = e.createService(t, cluster)
	local := webService(ns, "np-local", "np")
	local.Spec.Type = corev1.ServiceTypeNodePort
	local.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	local = e.createService(t, local)
	clusterPort, localPort := cluster.Spec.Ports[0].NodePort, local.Spec.Ports[0].NodePort

	for _, node := range e.lab.NodeNames {
		addr := fmt.Sprintf("%s:%d", e.lab.NodeIPs[node], clusterPort)
		e.waitAnswering(t, "external", addr, "tcp")
		if r, err := e.probe(t, ns+"/client", addr, "tcp"); err != nil || r.Pod != ns+"/backend" {
			t.Errorf("pod → NodePort %s (policy Cluster): %+v %v", addr, r, err)
		}
		if r, err := e.probe(t, "external", fmt.Sprintf("%s:%d", e.lab.NodeIPs[node], cluster.Spec.Ports[1].NodePort), "udp"); err != nil || r.Pod != ns+"/backend" {
			t.Errorf("external → UDP NodePort on %s: %+v %v", node, r, err)
		}
	}
	addr := fmt.Sprintf("%s:%d", e.lab.NodeIPs[n1], localPort)
	e.waitAnswering(t, "external", addr, "tcp")
	r, err := e.probe(t, "external", addr, "tcp")
	if err != nil || r.Pod != ns+"/backend" || r.Client != lab.ExternalIP {
		t.Errorf("external → NodePort %s (policy Local): %+v %v, want the backend seeing %s", addr, r, err, lab.ExternalIP)
	}
	for _, node := range e.lab.NodeNames[1:] {
		addr := fmt.Sprintf("%s:%d", e.lab.NodeIPs[node], localPort)
		if r, err := e.probe(t, "external", addr, "tcp"); err == nil {
			t.Errorf("external → NodePort %s (policy Local) on a node without endpoints answered: %+v", addr, r)
		}
	}
}

// TestServiceAffinityHairpinNoEndpoints: ClientIP affinity keeps a client
// on one backend; a pod reaches itself through its own service; a service
// without endpoints refuses at once instead of black-holing.
func TestServiceAffinityHairpinNoEndpoints(t *testing.T) {
	e := setup(t)
	requireKovnCNI(t, e)
	ns := e.namespace(t, "affinity")
	client := e.createRunning(t, time.Minute, e.testServerPod(ns, "client", e.lab.NodeNames[0]))[0]
	e.webDeployment(t, ns, "web", 3)
	sticky := webService(ns, "sticky", "web")
	sticky.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
	sticky = e.createService(t, sticky)
	vip := sticky.Spec.ClusterIP + ":80"
	from := ns + "/" + client.Name
	e.waitAnswering(t, from, vip, "tcp")
	if seen := e.answers(t, from, vip, "tcp", 20); len(seen) != 1 || seen[""] > 0 {
		t.Errorf("20 requests with ClientIP affinity answered by %v, want one backend", seen)
	}

	// Hairpin: the client is the only backend of its own service.
	self := e.createService(t, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "self"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "client"}, Ports: []corev1.ServicePort{
			{Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)},
		}},
	})
	e.waitAnswering(t, from, self.Spec.ClusterIP+":80", "tcp")
	if r, err := e.probe(t, from, self.Spec.ClusterIP+":80", "tcp"); err != nil || r.Pod != from {
		t.Errorf("hairpin through %s: %+v %v, want the client itself", self.Spec.ClusterIP, r, err)
	}

	empty := e.createService(t, webService(ns, "empty", "nobody"))
	addr := empty.Spec.ClusterIP + ":80"
	err := poll(10*time.Second, func() error {
		start := time.Now()
		_, err := e.probe(t, from, addr, "tcp")
		if err == nil {
			return fmt.Errorf("a service without endpoints answered")
		}
		if !strings.Contains(err.Error(), "refused") {
			return fmt.Errorf("after %v: %v, want connection refused", time.Since(start).Round(time.Millisecond), err)
		}
		return nil
	})
	if err != nil {
		t.Errorf("service without endpoints: %v", err)
	}
}

// TestServiceWithoutSelector: a hand-made EndpointSlice backs a service
// that has no selector.
func TestServiceWithoutSelector(t *testing.T) {
	e := setup(t)
	requireKovnCNI(t, e)
	ns := e.namespace(t, "manual")
	pods := e.createRunning(t, time.Minute,
		e.testServerPod(ns, "target", e.lab.NodeNames[1]), e.testServerPod(ns, "client", e.lab.NodeNames[0]))
	svc := e.createService(t, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "manual"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}}},
	})
	port, proto, name, ready := int32(81), corev1.ProtocolTCP, "http", true
	_, err := e.cs.DiscoveryV1().EndpointSlices(ns).Create(context.Background(), &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "manual-1", Labels: map[string]string{discoveryv1.LabelServiceName: "manual"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{pods[0].Status.PodIP}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
		Ports:       []discoveryv1.EndpointPort{{Name: &name, Protocol: &proto, Port: &port}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	from := ns + "/client"
	e.waitAnswering(t, from, svc.Spec.ClusterIP+":80", "tcp")
	if r, err := e.probe(t, from, svc.Spec.ClusterIP+":80", "tcp"); err != nil || r.Pod != ns+"/target" {
		t.Errorf("service without selector: %+v %v", r, err)
	}
}
