package gateway

import (
	"net"
	"net/netip"
	"strings"
	"testing"
)

func testConfig() Config {
	mac, _ := net.ParseMAC("02:00:00:77:00:02")
	return Config{Bridge: "br-ex", NIC: "eth0", PatchPort: "patch-lnet-n1-to-br-int", NodeIP: netip.MustParseAddr("192.168.77.2"), MAC: mac}
}

func TestValidate(t *testing.T) {
	if err := testConfig().validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for name, mutate := range map[string]func(*Config){
		"no bridge":      func(c *Config) { c.Bridge = "" },
		"no NIC":         func(c *Config) { c.NIC = "" },
		"IPv6":           func(c *Config) { c.NodeIP = netip.MustParseAddr("fd00::2") },
		"no IP":          func(c *Config) { c.NodeIP = netip.Addr{} },
		"no MAC":         func(c *Config) { c.MAC = nil },
		"patch is NIC":   func(c *Config) { c.PatchPort = c.NIC },
		"EUI-64 address": func(c *Config) { c.MAC = net.HardwareAddr{1, 2, 3, 4, 5, 6, 7, 8} },
	} {
		c := testConfig()
		mutate(&c)
		if err := c.validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// flowText renders flows as the lines EnsureFlows sends, cookie dropped.
func flowText(t *testing.T, cfg Config, p ofports) ([]string, uint64) {
	t.Helper()
	flows, cookie, err := desiredFlows(cfg, p)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, f := range flows {
		if f.Cookie != cookie {
			t.Errorf("flow cookie %#x, want the set's %#x", f.Cookie, cookie)
		}
		b, err := f.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, stripCookie(string(b)))
	}
	return lines, cookie
}

func stripCookie(s string) string {
	i := strings.Index(s, ",cookie=")
	j := strings.Index(s, ",actions=")
	return s[:i] + s[j:]
}

func TestDesiredFlows(t *testing.T) {
	cfg := testConfig()
	got, cookie := flowText(t, cfg, ofports{nic: 1, patch: 2})
	want := []string{
		"priority=100,ip,in_port=1,table=0,idle_timeout=0,actions=ct(zone=64000,table=1)",
		"priority=100,ip,in_port=LOCAL,table=0,idle_timeout=0,actions=ct(commit,zone=64000,exec(set_field:2->ct_mark)),output:1",
		"priority=100,arp,table=0,idle_timeout=0,actions=flood",
		"priority=1,table=0,idle_timeout=0,actions=normal",
		"priority=0,table=1,idle_timeout=0,actions=local",
		"priority=110,in_port=LOCAL,dl_dst=02:00:00:77:00:02,table=0,idle_timeout=0,actions=output:2",
		"priority=110,in_port=2,dl_dst=02:00:00:77:00:02,table=0,idle_timeout=0,actions=local",
		"priority=100,ip,in_port=2,table=0,idle_timeout=0,actions=ct(commit,zone=64000,exec(set_field:1->ct_mark)),output:1",
		"priority=100,ip,ct_state=+est+trk,ct_mark=0x00000001,table=1,idle_timeout=0,actions=output:2",
		"priority=100,ip,ct_state=+rel+trk,ct_mark=0x00000001,table=1,idle_timeout=0,actions=output:2",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("flows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if cookie&cookieMask != cookieKovn {
		t.Errorf("cookie %#x lacks the kovn prefix", cookie)
	}

	hostOnly, hostCookie := flowText(t, cfg, ofports{nic: 1})
	if strings.Join(hostOnly, "\n") != strings.Join(want[:5], "\n") {
		t.Errorf("without a patch port:\n%s\nwant:\n%s", strings.Join(hostOnly, "\n"), strings.Join(want[:5], "\n"))
	}
	_, renumbered := flowText(t, cfg, ofports{nic: 1, patch: 3})
	cfg.Zone = 64001
	_, rezoned := flowText(t, cfg, ofports{nic: 1, patch: 2})
	_, again := flowText(t, testConfig(), ofports{nic: 1, patch: 2})
	if again != cookie {
		t.Errorf("same rule set, cookies %#x and %#x", cookie, again)
	}
	for name, c := range map[string]uint64{"host-only": hostCookie, "renumbered": renumbered, "other zone": rezoned} {
		if c == cookie {
			t.Errorf("%s rule set has the same cookie %#x", name, c)
		}
	}
}
