package nbops

import (
	"testing"

	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
)

func TestPortIP(t *testing.T) {
	for _, tc := range []struct {
		addrs []string
		want  string
	}{
		{[]string{"0a:58:0a:80:01:05 10.128.1.5"}, "10.128.1.5"},
		{[]string{"router"}, ""},
		{[]string{"unknown", "0a:58:0a:80:01:06 10.128.1.6 fd00::6"}, "10.128.1.6"},
		{[]string{"0a:58:0a:80:01:07 not-an-ip"}, ""},
		{nil, ""},
	} {
		ip, ok := PortIP(&nbdb.LogicalSwitchPort{Addresses: tc.addrs})
		if got := ""; ok {
			got = ip.String()
			if got != tc.want {
				t.Errorf("%q: %s, want %q", tc.addrs, got, tc.want)
			}
		} else if tc.want != "" {
			t.Errorf("%q: none, want %s", tc.addrs, tc.want)
		}
	}
}
