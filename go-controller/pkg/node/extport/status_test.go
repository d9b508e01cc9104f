package extport

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kovn-io/kovn/go-controller/pkg/kube"
)

func TestParseStatus(t *testing.T) {
	good := kube.ExternalPortStatus{
		IPs: []string{"10.128.250.5/24"}, MAC: "0a:58:0a:80:fa:05", Gateway: "10.128.250.1",
		Routes: []string{"0.0.0.0/0", "10.128.0.1/14", "10.96.0.0/16"}, MTU: 1400, IfaceID: "ep_a_b",
	}
	a, err := ParseStatus(&good)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("%v %v %v %v %v %d %s", a.Addr, a.MAC, a.Gateway, a.Routes, a.Skipped, a.MTU, a.IfaceID); got !=
		"10.128.250.5/24 0a:58:0a:80:fa:05 10.128.250.1 [10.128.0.0/14 10.96.0.0/16] [0.0.0.0/0] 1400 ep_a_b" {
		t.Errorf("parsed %s", got)
	}

	for name, tc := range map[string]struct {
		edit func(*kube.ExternalPortStatus)
		want string
	}{
		"no iface-id":        {func(s *kube.ExternalPortStatus) { s.IfaceID = "" }, "not assigned"},
		"no ips":             {func(s *kube.ExternalPortStatus) { s.IPs = nil }, "not assigned"},
		"bare ip":            {func(s *kube.ExternalPortStatus) { s.IPs = []string{"10.128.250.5"} }, "status.ips[0]"},
		"bad mac":            {func(s *kube.ExternalPortStatus) { s.MAC = "0a:58" }, "status.mac"},
		"gateway off-link":   {func(s *kube.ExternalPortStatus) { s.Gateway = "10.0.0.1" }, "outside"},
		"routes, no gateway": {func(s *kube.ExternalPortStatus) { s.Gateway = "" }, "no gateway"},
		"bad route":          {func(s *kube.ExternalPortStatus) { s.Routes = []string{"10.96.0.0"} }, "status.routes[0]"},
		"v6 route":           {func(s *kube.ExternalPortStatus) { s.Routes = []string{"fd00::/64"} }, "no gateway of its family"},
	} {
		st := good
		st.IPs, st.Routes = append([]string(nil), good.IPs...), append([]string(nil), good.Routes...)
		tc.edit(&st)
		if _, err := ParseStatus(&st); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", name, err, tc.want)
		}
	}

	// Without routes a status needs no gateway; without a MAC it parses
	// (Plug does not need one; PlugInternal checks).
	bare := kube.ExternalPortStatus{IPs: []string{"10.128.250.5/24"}, IfaceID: "ep_a_b"}
	if a, err := ParseStatus(&bare); err != nil || a.MAC != nil || a.Gateway.IsValid() {
		t.Errorf("bare status: %+v %v", a, err)
	}
	if Assigned(nil) || Assigned(&kube.ExternalPortStatus{IfaceID: "x"}) || !Assigned(&bare) {
		t.Error("Assigned")
	}
}
