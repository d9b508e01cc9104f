package pod

import (
	"net/netip"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kovn-io/kovn/go-controller/pkg/ipam"
	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

func TestNetwork(t *testing.T) {
	for _, tc := range []struct {
		ip, subnet string
		mtu        int
		want       kube.PodNetwork
	}{
		{"10.128.1.5", "10.128.1.0/24", 1400, kube.PodNetwork{
			IPs: []string{"10.128.1.5/24"}, MAC: "0a:58:0a:80:01:05", Gateway: []string{"10.128.1.1"}, MTU: 1400}},
		{"10.128.0.254", "10.128.0.0/24", 1400, kube.PodNetwork{
			IPs: []string{"10.128.0.254/24"}, MAC: "0a:58:0a:80:00:fe", Gateway: []string{"10.128.0.1"}, MTU: 1400}},
		{"10.130.7.3", "10.130.7.0/29", 8900, kube.PodNetwork{
			IPs: []string{"10.130.7.3/29"}, MAC: "0a:58:0a:82:07:03", Gateway: []string{"10.130.7.1"}, MTU: 8900}},
	} {
		t.Run(tc.ip, func(t *testing.T) {
			pn := Network(netip.MustParseAddr(tc.ip), netip.MustParsePrefix(tc.subnet), ipam.GatewayIP(netip.MustParsePrefix(tc.subnet)), tc.mtu)
			if !reflect.DeepEqual(*pn, tc.want) {
				t.Fatalf("Network = %+v, want %+v", *pn, tc.want)
			}
			// What the controller writes, kovn-node must be able to read.
			s, err := pn.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			back, err := kube.ParsePodNetwork(s)
			if err != nil {
				t.Fatalf("annotation %s does not parse: %v", s, err)
			}
			if !reflect.DeepEqual(back, pn) || back.Addrs()[0] != netip.MustParseAddr(tc.ip) {
				t.Fatalf("round trip %+v, want %+v", back, pn)
			}
		})
	}
}

func TestPort(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "web-0", UID: "uid-1"},
		Spec:       corev1.PodSpec{NodeName: "node-1"},
	}
	pn := Network(netip.MustParseAddr("10.128.1.5"), netip.MustParsePrefix("10.128.1.0/24"), netip.MustParseAddr("10.128.1.1"), 1400)
	lsp := Port(pod, pn)

	if lsp.Name != "team-a_web-0" {
		t.Errorf("name %q", lsp.Name)
	}
	want := []string{"0a:58:0a:80:01:05 10.128.1.5"}
	if !reflect.DeepEqual(lsp.Addresses, want) || !reflect.DeepEqual(lsp.PortSecurity, want) {
		t.Errorf("addresses %v, port_security %v, want both %v", lsp.Addresses, lsp.PortSecurity, want)
	}
	if wantOpts := map[string]string{"requested-chassis": "node-1", "iface-id-ver": "uid-1"}; !reflect.DeepEqual(lsp.Options, wantOpts) {
		t.Errorf("options %v, want %v", lsp.Options, wantOpts)
	}
	wantIDs := map[string]string{own.KindKey: own.KindPod, own.OwnerKey: "team-a/web-0", own.PodUIDKey: "uid-1"}
	if !reflect.DeepEqual(lsp.ExternalIDs, wantIDs) {
		t.Errorf("external_ids %v, want %v", lsp.ExternalIDs, wantIDs)
	}
	if lsp.Type != "" {
		t.Errorf("type %q, want a plain VIF port", lsp.Type)
	}

	// The next incarnation of the pod gets its own iface-id-ver.
	pod.UID = "uid-2"
	if got := Port(pod, pn); got.Options["iface-id-ver"] != "uid-2" || got.ExternalIDs[own.PodUIDKey] != "uid-2" {
		t.Errorf("recreated pod: options %v external_ids %v", got.Options, got.ExternalIDs)
	}
}

func TestWantsPort(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spec  corev1.PodSpec
		phase corev1.PodPhase
		want  bool
	}{
		{"scheduled", corev1.PodSpec{NodeName: "n1"}, corev1.PodPending, true},
		{"running", corev1.PodSpec{NodeName: "n1"}, corev1.PodRunning, true},
		{"unscheduled", corev1.PodSpec{}, corev1.PodPending, false},
		{"host network", corev1.PodSpec{NodeName: "n1", HostNetwork: true}, corev1.PodRunning, false},
		{"succeeded", corev1.PodSpec{NodeName: "n1"}, corev1.PodSucceeded, false},
		{"failed", corev1.PodSpec{NodeName: "n1"}, corev1.PodFailed, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{Spec: tc.spec, Status: corev1.PodStatus{Phase: tc.phase}}
			if got := wantsPort(pod); got != tc.want {
				t.Errorf("wantsPort = %v, want %v", got, tc.want)
			}
		})
	}
}
