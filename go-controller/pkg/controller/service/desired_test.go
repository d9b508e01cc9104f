package service

import (
	"net/netip"
	"reflect"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

func ptr[T any](v T) *T { return &v }

// testService is a ClusterIP service default/web with port http 80 →
// targetPort "http"; mods change it.
func testService(mods ...func(*corev1.Service)) *corev1.Service {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: corev1.ServiceSpec{
			Type:       corev1.ServiceTypeClusterIP,
			ClusterIP:  "10.96.0.10",
			ClusterIPs: []string{"10.96.0.10"},
			Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80,
				TargetPort: intstr.FromString("http")}},
		},
	}
	for _, m := range mods {
		m(svc)
	}
	return svc
}

func nodePortService(etp corev1.ServiceExternalTrafficPolicy) func(*corev1.Service) {
	return func(svc *corev1.Service) {
		svc.Spec.Type = corev1.ServiceTypeNodePort
		svc.Spec.ExternalTrafficPolicy = etp
		svc.Spec.Ports[0].NodePort = 30080
	}
}

type ep struct {
	ip, node                    string
	ready, serving, terminating *bool
}

func readyEP(ip, node string) ep { return ep{ip: ip, node: node} }

func notReadyEP(ip string) ep { return ep{ip: ip, ready: ptr(false), serving: ptr(false)} }

func terminatingEP(ip string, serving bool) ep {
	return ep{ip: ip, ready: ptr(false), serving: ptr(serving), terminating: ptr(true)}
}

// testSlice is an IPv4 slice of default/web with one port per ports entry
// ("name" → number, TCP) and the endpoints.
func testSlice(name string, ports map[string]int32, eps ...ep) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	for n, p := range ports {
		es.Ports = append(es.Ports, discoveryv1.EndpointPort{Name: ptr(n), Port: ptr(p), Protocol: ptr(corev1.ProtocolTCP)})
	}
	for _, e := range eps {
		dep := discoveryv1.Endpoint{Addresses: []string{e.ip},
			Conditions: discoveryv1.EndpointConditions{Ready: e.ready, Serving: e.serving, Terminating: e.terminating}}
		if e.node != "" {
			dep.NodeName = ptr(e.node)
		}
		es.Endpoints = append(es.Endpoints, dep)
	}
	return es
}

// lbSummary is what a test checks of one desired load balancer.
type lbSummary struct {
	Proto    string
	Vips     map[string]string
	Options  map[string]string
	ID       string
	Group    bool
	Switches []string
	Routers  []string
}

func summarize(t *testing.T, r Rows) map[string]lbSummary {
	t.Helper()
	out := map[string]lbSummary{}
	for _, lb := range r.LBs {
		row := lb.Row
		if row.Protocol == nil || row.ExternalIDs[own.KindKey] != own.KindService || row.ExternalIDs[own.OwnerKey] != "default/web" {
			t.Errorf("%s: protocol %v external_ids %v", row.Name, row.Protocol, row.ExternalIDs)
			continue
		}
		out[row.Name] = lbSummary{Proto: *row.Protocol, Vips: row.Vips, Options: row.Options, ID: row.ExternalIDs[own.IDKey],
			Group: lb.Group, Switches: lb.Switches, Routers: lb.Routers}
	}
	return out
}

func baseOpts(extra ...string) map[string]string {
	m := map[string]string{"reject": "true", "event": "false"}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	return m
}

func clusterLB(proto string, vips map[string]string, opts ...string) lbSummary {
	return lbSummary{Proto: proto, Vips: vips, Options: baseOpts(opts...), ID: proto, Group: true}
}

func testNodes() []Node {
	return []Node{
		{Name: "n1", Switch: true, GatewayIP: netip.MustParseAddr("172.18.0.2")},
		{Name: "n2", Switch: true, GatewayIP: netip.MustParseAddr("172.18.0.3")},
		{Name: "n3", Switch: true}, // no gateway router (yet)
	}
}

// desiredCase is one table entry: inputs, the load balancers wanted and
// the problem reasons reported.
type desiredCase struct {
	name     string
	in       Inputs
	want     map[string]lbSummary
	problems []string // reasons
}

func httpPorts() map[string]int32 { return map[string]int32{"http": 8080} }

func TestDesired(t *testing.T) {
	for _, group := range [][]desiredCase{backendCases(), policyCases(), shapeCases()} {
		for _, tc := range group {
			t.Run(tc.name, func(t *testing.T) { checkDesired(t, tc) })
		}
	}
}

func checkDesired(t *testing.T, tc desiredCase) {
	t.Helper()
	r := Desired(tc.in)
	for _, lb := range r.LBs {
		// Hash-based selection saves the dp_hash recirculation (see lb()).
		if want := []string{"ip_src", "ip_dst", "tp_src", "tp_dst"}; !slices.Equal(lb.Row.SelectionFields, want) {
			t.Errorf("%s: selection_fields %v, want %v", lb.Row.Name, lb.Row.SelectionFields, want)
		}
	}
	if got := summarize(t, r); !reflect.DeepEqual(got, tc.want) {
		t.Errorf("load balancers:\n got %+v\nwant %+v", got, tc.want)
	}
	var reasons []string
	for _, p := range r.Problems {
		if !slices.Contains(reasons, p.Reason) {
			reasons = append(reasons, p.Reason)
		}
	}
	slices.Sort(reasons)
	want := slices.Clone(tc.problems)
	slices.Sort(want)
	if !slices.Equal(reasons, want) {
		t.Errorf("problems %v, want reasons %v", r.Problems, want)
	}
}

// backendCases: backend selection: which endpoints, which port numbers.
func backendCases() []desiredCase {
	http := httpPorts()
	return []desiredCase{{
		name: "ready endpoints only",
		in: Inputs{Service: testService(), Slices: []*discoveryv1.EndpointSlice{
			testSlice("a", http, readyEP("10.128.1.5", "n1"), readyEP("10.128.2.7", "n2"), notReadyEP("10.128.2.8"),
				terminatingEP("10.128.2.9", true)),
		}},
		want: map[string]lbSummary{"Service_default/web_TCP": clusterLB("tcp",
			map[string]string{"10.96.0.10:80": "10.128.1.5:8080,10.128.2.7:8080"})},
	}, {
		name: "no ready endpoint: serving and terminating ones",
		in: Inputs{Service: testService(), Slices: []*discoveryv1.EndpointSlice{
			testSlice("a", http, notReadyEP("10.128.2.8"), terminatingEP("10.128.2.9", true), terminatingEP("10.128.2.10", false)),
		}},
		want: map[string]lbSummary{"Service_default/web_TCP": clusterLB("tcp", map[string]string{"10.96.0.10:80": "10.128.2.9:8080"})},
	}, {
		name: "no endpoints: the VIP stays, to be rejected",
		in:   Inputs{Service: testService()},
		want: map[string]lbSummary{"Service_default/web_TCP": clusterLB("tcp", map[string]string{"10.96.0.10:80": ""})},
	}, {
		name: "named port resolved per slice, same address deduplicated",
		in: Inputs{Service: testService(func(s *corev1.Service) {
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "metrics", Protocol: corev1.ProtocolTCP, Port: 9100, TargetPort: intstr.FromInt32(9100)})
		}), Slices: []*discoveryv1.EndpointSlice{
			testSlice("b", map[string]int32{"http": 9090}, readyEP("10.128.2.7", "n2")),
			testSlice("a", map[string]int32{"http": 8080, "metrics": 9100}, readyEP("10.128.1.5", "n1")),
			testSlice("a-copy", map[string]int32{"http": 8080}, readyEP("10.128.1.5", "n1")),
		}},
		want: map[string]lbSummary{"Service_default/web_TCP": clusterLB("tcp", map[string]string{
			"10.96.0.10:80":   "10.128.1.5:8080,10.128.2.7:9090",
			"10.96.0.10:9100": "10.128.1.5:9100",
		})},
	}, {
		name: "TCP and UDP on the same port: two load balancers",
		in: Inputs{Service: testService(func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{
				{Name: "dns-tcp", Protocol: corev1.ProtocolTCP, Port: 53, TargetPort: intstr.FromInt32(53)},
				{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53, TargetPort: intstr.FromInt32(5353)},
			}
		}), Slices: []*discoveryv1.EndpointSlice{func() *discoveryv1.EndpointSlice {
			es := testSlice("a", map[string]int32{"dns-tcp": 53}, readyEP("10.128.1.5", "n1"))
			es.Ports = append(es.Ports, discoveryv1.EndpointPort{Name: ptr("dns"), Port: ptr(int32(5353)), Protocol: ptr(corev1.ProtocolUDP)})
			return es
		}()}},
		want: map[string]lbSummary{
			"Service_default/web_TCP": clusterLB("tcp", map[string]string{"10.96.0.10:53": "10.128.1.5:53"}),
			"Service_default/web_UDP": clusterLB("udp", map[string]string{"10.96.0.10:53": "10.128.1.5:5353"}),
		},
	}}
}

// policyCases: affinity and traffic policies.
func policyCases() []desiredCase {
	http := httpPorts()
	return []desiredCase{{
		name: "session affinity, default timeout",
		in:   Inputs{Service: testService(func(s *corev1.Service) { s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP })},
		want: map[string]lbSummary{"Service_default/web_TCP": clusterLB("tcp", map[string]string{"10.96.0.10:80": ""}, "affinity_timeout", "10800")},
	}, {
		name: "session affinity above OVN's limit",
		in: Inputs{Service: testService(func(s *corev1.Service) {
			s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
			s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr(int32(86400))}}
		})},
		want:     map[string]lbSummary{"Service_default/web_TCP": clusterLB("tcp", map[string]string{"10.96.0.10:80": ""}, "affinity_timeout", "65535")},
		problems: []string{"AffinityTimeoutTooLong"},
	}, {
		name: "NodePort, externalTrafficPolicy Cluster: template",
		in: Inputs{Service: testService(nodePortService(corev1.ServiceExternalTrafficPolicyCluster)),
			Slices: []*discoveryv1.EndpointSlice{testSlice("a", http, readyEP("10.128.1.5", "n1"))}, Nodes: testNodes()},
		want: map[string]lbSummary{
			"Service_default/web_TCP": clusterLB("tcp", map[string]string{"10.96.0.10:80": "10.128.1.5:8080"}),
			"Service_default/web_TCP_nodeport": {Proto: "tcp", Vips: map[string]string{"^KOVN_NODEIP:30080": "10.128.1.5:8080"},
				Options: baseOpts("template", "true", "address-family", "ipv4"), ID: "tcp/nodeport", Group: true},
		},
	}, {
		name: "NodePort, externalTrafficPolicy Local: per node with a gateway router",
		in: Inputs{Service: testService(nodePortService(corev1.ServiceExternalTrafficPolicyLocal)),
			Slices: []*discoveryv1.EndpointSlice{testSlice("a", http, readyEP("10.128.1.5", "n1"), readyEP("10.128.2.7", "n2"),
				terminatingEP("10.128.1.9", true))}, Nodes: testNodes()},
		want: map[string]lbSummary{
			"Service_default/web_TCP": clusterLB("tcp", map[string]string{"10.96.0.10:80": "10.128.1.5:8080,10.128.2.7:8080"}),
			"Service_default/web_TCP_local_n1": {Proto: "tcp", Vips: map[string]string{"172.18.0.2:30080": "10.128.1.5:8080"},
				Options: baseOpts("skip_snat", "true"), ID: "tcp/local/n1", Switches: []string{"n1"}, Routers: []string{"GR_n1"}},
			"Service_default/web_TCP_local_n2": {Proto: "tcp", Vips: map[string]string{"172.18.0.3:30080": "10.128.2.7:8080"},
				Options: baseOpts("skip_snat", "true"), ID: "tcp/local/n2", Switches: []string{"n2"}, Routers: []string{"GR_n2"}},
		},
	}, {
		name: "NodePort with ClientIP affinity: per node with the node IP, not the template",
		in: Inputs{Service: testService(nodePortService(corev1.ServiceExternalTrafficPolicyCluster), func(s *corev1.Service) {
			s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
		}), Slices: []*discoveryv1.EndpointSlice{testSlice("a", http, readyEP("10.128.1.5", "n1"), readyEP("10.128.2.7", "n2"))}, Nodes: testNodes()},
		want: map[string]lbSummary{
			"Service_default/web_TCP": clusterLB("tcp", map[string]string{"10.96.0.10:80": "10.128.1.5:8080,10.128.2.7:8080"}, "affinity_timeout", "10800"),
			"Service_default/web_TCP_nodeport_n1": {Proto: "tcp", Vips: map[string]string{"172.18.0.2:30080": "10.128.1.5:8080,10.128.2.7:8080"},
				Options: baseOpts("affinity_timeout", "10800"), ID: "tcp/nodeport/n1", Switches: []string{"n1"}, Routers: []string{"GR_n1"}},
			"Service_default/web_TCP_nodeport_n2": {Proto: "tcp", Vips: map[string]string{"172.18.0.3:30080": "10.128.1.5:8080,10.128.2.7:8080"},
				Options: baseOpts("affinity_timeout", "10800"), ID: "tcp/nodeport/n2", Switches: []string{"n2"}, Routers: []string{"GR_n2"}},
		},
	}, {
		name: "internalTrafficPolicy Local: ClusterIP per node switch, external IP cluster-wide",
		in: Inputs{Service: testService(func(s *corev1.Service) {
			s.Spec.InternalTrafficPolicy = ptr(corev1.ServiceInternalTrafficPolicyLocal)
			s.Spec.ExternalIPs = []string{"192.0.2.10"}
		}), Slices: []*discoveryv1.EndpointSlice{testSlice("a", http, readyEP("10.128.1.5", "n1"))}, Nodes: testNodes()},
		want: map[string]lbSummary{
			"Service_default/web_TCP": clusterLB("tcp", map[string]string{"192.0.2.10:80": "10.128.1.5:8080"}),
			"Service_default/web_TCP_itp-local_n1": {Proto: "tcp", Vips: map[string]string{"10.96.0.10:80": "10.128.1.5:8080"},
				Options: baseOpts(), ID: "tcp/itp-local/n1", Switches: []string{"n1"}},
			"Service_default/web_TCP_itp-local_n2": {Proto: "tcp", Vips: map[string]string{"10.96.0.10:80": ""},
				Options: baseOpts(), ID: "tcp/itp-local/n2", Switches: []string{"n2"}},
			"Service_default/web_TCP_itp-local_n3": {Proto: "tcp", Vips: map[string]string{"10.96.0.10:80": ""},
				Options: baseOpts(), ID: "tcp/itp-local/n3", Switches: []string{"n3"}},
		},
	}}
}

// shapeCases: services without load balancers, and bad input.
func shapeCases() []desiredCase {
	http := httpPorts()
	return []desiredCase{{
		name: "headless: nothing",
		in: Inputs{Service: testService(func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "None", []string{"None"} }),
			Slices: []*discoveryv1.EndpointSlice{testSlice("a", http, readyEP("10.128.1.5", "n1"))}},
		want: map[string]lbSummary{},
	}, {
		name: "ExternalName: nothing",
		in: Inputs{Service: testService(func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalName, s.Spec.ClusterIP, s.Spec.ClusterIPs = corev1.ServiceTypeExternalName, "example.com", "", nil
		})},
		want: map[string]lbSummary{},
	}, {
		name: "deleted: nothing",
		in:   Inputs{},
		want: map[string]lbSummary{},
	}, {
		name: "bad and IPv6 addresses and ports are reported, the rest programmed",
		in: Inputs{Service: testService(func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Spec.ClusterIPs = []string{"10.96.0.10", "fd00:10:96::10"}
			s.Spec.ExternalIPs = []string{"not-an-ip", "192.0.2.10", "2001:db8::1"}
			s.Spec.Ports[0].NodePort = 70000
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "bad", Protocol: corev1.ProtocolTCP, Port: 81, TargetPort: intstr.FromInt32(99999)})
			s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.0.2.20"}, {IP: "300.1.1.1"}, {Hostname: "lb.example.com"},
				{IP: "192.0.2.30", IPMode: ptr(corev1.LoadBalancerIPModeProxy)}, {IP: "192.0.2.10"}}
		}), Slices: []*discoveryv1.EndpointSlice{testSlice("a", map[string]int32{"http": 8080, "bad": 99999}, readyEP("10.128.1.5", "n1"))}},
		want: map[string]lbSummary{"Service_default/web_TCP": clusterLB("tcp", map[string]string{
			"10.96.0.10:80": "10.128.1.5:8080", "192.0.2.10:80": "10.128.1.5:8080", "192.0.2.20:80": "10.128.1.5:8080",
			"10.96.0.10:81": "", "192.0.2.10:81": "", "192.0.2.20:81": "",
		})},
		problems: []string{"IPv6Unsupported", "InvalidExternalIP", "InvalidLoadBalancerIP", "InvalidNodePort", "InvalidTargetPort"},
	}}
}

func TestDesiredIsPureAndOrderFree(t *testing.T) {
	svc := testService(nodePortService(corev1.ServiceExternalTrafficPolicyLocal))
	a := testSlice("a", map[string]int32{"http": 8080}, readyEP("10.128.1.5", "n1"), readyEP("10.128.1.4", "n1"))
	b := testSlice("b", map[string]int32{"http": 8080}, readyEP("10.128.2.7", "n2"))
	nodes := testNodes()
	first := Desired(Inputs{Service: svc, Slices: []*discoveryv1.EndpointSlice{a, b}, Nodes: nodes})
	slices.Reverse(nodes)
	second := Desired(Inputs{Service: svc, Slices: []*discoveryv1.EndpointSlice{b, a}, Nodes: nodes})
	if !reflect.DeepEqual(first, second) {
		t.Fatalf("order changed the result:\n%+v\n%+v", summarize(t, first), summarize(t, second))
	}
	if got := first.LBs[0].Row.Vips["10.96.0.10:80"]; got != "10.128.1.4:8080,10.128.1.5:8080,10.128.2.7:8080" {
		t.Fatalf("backends %q are not sorted", got)
	}
	if !slices.IsSortedFunc(first.LBs, func(x, y *LB) int {
		if x.Row.Name < y.Row.Name {
			return -1
		}
		return 1
	}) {
		t.Fatal("load balancers not sorted by name")
	}
}

func TestNeedsNodes(t *testing.T) {
	for _, tc := range []struct {
		name string
		svc  *corev1.Service
		want bool
	}{
		{"ClusterIP", testService(), false},
		{"NodePort Cluster", testService(nodePortService(corev1.ServiceExternalTrafficPolicyCluster)), false},
		{"NodePort Local", testService(nodePortService(corev1.ServiceExternalTrafficPolicyLocal)), true},
		{"NodePort Cluster with ClientIP affinity", testService(nodePortService(corev1.ServiceExternalTrafficPolicyCluster), func(s *corev1.Service) {
			s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
		}), true},
		{"ClusterIP with ClientIP affinity", testService(func(s *corev1.Service) { s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP }), false},
		{"LoadBalancer with ClientIP affinity without node ports", testService(func(s *corev1.Service) {
			s.Spec.Type, s.Spec.SessionAffinity = corev1.ServiceTypeLoadBalancer, corev1.ServiceAffinityClientIP
		}), false},
		{"NodePort Local with ClientIP affinity", testService(nodePortService(corev1.ServiceExternalTrafficPolicyLocal), func(s *corev1.Service) {
			s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
		}), true},
		{"LoadBalancer Local without node ports", testService(func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalTrafficPolicy = corev1.ServiceTypeLoadBalancer, corev1.ServiceExternalTrafficPolicyLocal
		}), false},
		{"internalTrafficPolicy Local", testService(func(s *corev1.Service) {
			s.Spec.InternalTrafficPolicy = ptr(corev1.ServiceInternalTrafficPolicyLocal)
		}), true},
		{"headless with internalTrafficPolicy Local", testService(func(s *corev1.Service) {
			s.Spec.ClusterIP, s.Spec.InternalTrafficPolicy = "None", ptr(corev1.ServiceInternalTrafficPolicyLocal)
		}), false},
	} {
		if got := NeedsNodes(tc.svc); got != tc.want {
			t.Errorf("%s: NeedsNodes = %v, want %v", tc.name, got, tc.want)
		}
	}
}
