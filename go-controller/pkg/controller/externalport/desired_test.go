package externalport

import (
	"net/netip"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

func TestPortAndStatus(t *testing.T) {
	ep := &kube.ExternalPort{ObjectMeta: metav1.ObjectMeta{Namespace: "vms", Name: "db-1", Generation: 3},
		Spec: kube.ExternalPortSpec{Chassis: "node2"}}
	ip := netip.MustParseAddr("10.128.250.7")
	mac, err := MAC(ep, ip)
	if err != nil || mac.String() != "0a:58:0a:80:fa:07" {
		t.Fatalf("derived MAC = %v, %v", mac, err)
	}
	lsp := Port(ep, ip, mac)
	if lsp.Name != "ep_vms_db-1" || lsp.Addresses[0] != "0a:58:0a:80:fa:07 10.128.250.7" ||
		lsp.PortSecurity[0] != lsp.Addresses[0] || lsp.Options["requested-chassis"] != "node2" {
		t.Errorf("port = %+v", lsp)
	}
	if k, o := own.OwnerOf(lsp.ExternalIDs); k != own.KindExternalPort || o != "vms/db-1" {
		t.Errorf("owner = %s %s", k, o)
	}
	n := Network{Switch: own.ExternalPortSwitch, Subnet: netip.MustParsePrefix("10.128.250.0/24"),
		Gateway: netip.MustParseAddr("10.128.250.1"), MTU: 1400,
		Routes: []netip.Prefix{netip.MustParsePrefix("10.128.0.0/14"), netip.MustParsePrefix("10.96.0.0/16")}}
	st := Status(ep, n, ip, mac)
	if st.IPs[0] != "10.128.250.7/24" || st.Gateway != "10.128.250.1" || st.IfaceID != lsp.Name ||
		len(st.Routes) != 2 || st.MTU != 1400 || st.ObservedGeneration != 3 {
		t.Errorf("status = %+v", st)
	}

	ep.Spec.MAC = "02:00:00:00:00:01"
	if mac, err := MAC(ep, ip); err != nil || mac.String() != "02:00:00:00:00:01" {
		t.Errorf("asked-for MAC = %v, %v", mac, err)
	}
	ep.Spec.MAC = "not-a-mac"
	if _, err := MAC(ep, ip); err == nil {
		t.Error("a bad MAC was accepted")
	}
}

func TestStatusEqualIgnoresTransitionTime(t *testing.T) {
	a := kube.ExternalPortStatus{IPs: []string{"10.0.0.2/24"}, Conditions: []metav1.Condition{{Type: "Ready", Status: "True", Reason: "Programmed"}}}
	b := a
	b.Conditions = []metav1.Condition{{Type: "Ready", Status: "True", Reason: "Programmed", LastTransitionTime: metav1.Now()}}
	if !statusEqual(&a, &b) {
		t.Error("statuses differing only in transition time are unequal")
	}
	b.Chassis = "node1"
	if statusEqual(&a, &b) {
		t.Error("a new chassis went unnoticed")
	}
}
