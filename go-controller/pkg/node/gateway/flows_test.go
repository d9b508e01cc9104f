package gateway

import (
	"fmt"

	"context"
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
	hostOnly := testConfig()
	hostOnly.PatchPort = ""
	if err := hostOnly.validate(); err != nil {
		t.Fatalf("config without a patch port: %v", err)
	}
	for name, mutate := range map[string]func(*Config){
		"no bridge":        func(c *Config) { c.Bridge = "" },
		"no NIC":           func(c *Config) { c.NIC = "" },
		"IPv6":             func(c *Config) { c.NodeIP = netip.MustParseAddr("fd00::2") },
		"no IP":            func(c *Config) { c.NodeIP = netip.Addr{} },
		"no MAC":           func(c *Config) { c.MAC = nil },
		"patch is NIC":     func(c *Config) { c.PatchPort = c.NIC },
		"patch is bridge":  func(c *Config) { c.PatchPort = c.Bridge },
		"IPv4-mapped IPv6": func(c *Config) { c.NodeIP = netip.MustParseAddr("::ffff:192.168.77.2") },
		"EUI-64 address":   func(c *Config) { c.MAC = net.HardwareAddr{1, 2, 3, 4, 5, 6, 7, 8} },
	} {
		c := testConfig()
		mutate(&c)
		if err := c.validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Every problem is reported at once.
	err := Config{}.validate()
	if err == nil {
		t.Fatal("empty config accepted")
	}
	for _, want := range []string{"bridge", "NIC", "node IP", "MAC"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("empty config: error %q does not mention %s", err, want)
		}
	}
}

// EnsureFlows refuses an invalid config before it runs any command.
func TestEnsureFlowsValidates(t *testing.T) {
	cfg := testConfig()
	cfg.NodeIP = netip.MustParseAddr("fd00::2")
	cfg.RunDir = t.TempDir() // no OVS there: reaching it would fail differently
	err := EnsureFlows(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "only IPv4") {
		t.Errorf("EnsureFlows with an IPv6 node IP: %v, want the validation error", err)
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
		// host-only: valid before the patch port exists
		"priority=100,ip,in_port=LOCAL,table=0,idle_timeout=0,actions=output:1",
		"priority=90,ip,in_port=1,table=0,idle_timeout=0,actions=local",
		"priority=100,arp,table=0,idle_timeout=0,actions=flood",
		"priority=1,table=0,idle_timeout=0,actions=normal",
		// with the patch port
		"priority=110,in_port=LOCAL,dl_dst=02:00:00:77:00:02,table=0,idle_timeout=0,actions=output:2",
		"priority=110,in_port=2,dl_dst=02:00:00:77:00:02,table=0,idle_timeout=0,actions=local",
		"priority=100,ip,in_port=2,table=0,idle_timeout=0,actions=output:1",
		"priority=100,tcp,in_port=1,nw_dst=192.168.77.2,tp_dst=0xf000/0xf000,table=0,idle_timeout=0,actions=output:2",
		"priority=100,udp,in_port=1,nw_dst=192.168.77.2,tp_dst=0xf000/0xf000,table=0,idle_timeout=0,actions=output:2",
		"priority=105,icmp,in_port=1,nw_dst=192.168.77.2,icmp_type=8,table=0,idle_timeout=0,actions=local",
		"priority=100,icmp,in_port=1,nw_dst=192.168.77.2,table=0,idle_timeout=0,actions=local,output:2",
		"priority=101,ip,in_port=1,nw_dst=192.168.77.2,ip_frag=later,table=0,idle_timeout=0,actions=local,output:2",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("flows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if cookie&cookieMask != cookieKovn {
		t.Errorf("cookie %#x lacks the kovn prefix", cookie)
	}

	hostOnly, hostCookie := flowText(t, cfg, ofports{nic: 1})
	if strings.Join(hostOnly, "\n") != strings.Join(want[:4], "\n") {
		t.Errorf("without a patch port:\n%s\nwant:\n%s", strings.Join(hostOnly, "\n"), strings.Join(want[:4], "\n"))
	}
	_, renumbered := flowText(t, cfg, ofports{nic: 1, patch: 3})
	_, nicRenumbered := flowText(t, cfg, ofports{nic: 4, patch: 2})
	other := testConfig()
	other.NodeIP = netip.MustParseAddr("192.168.77.3")
	_, otherIP := flowText(t, other, ofports{nic: 1, patch: 2})
	other = testConfig()
	other.MAC[5] = 3
	_, otherMAC := flowText(t, other, ofports{nic: 1, patch: 2})
	_, again := flowText(t, testConfig(), ofports{nic: 1, patch: 2})
	if again != cookie {
		t.Errorf("same rule set, cookies %#x and %#x", cookie, again)
	}
	cookies := map[string]uint64{"host-only": hostCookie, "patch renumbered": renumbered, "NIC renumbered": nicRenumbered,
		"other node IP": otherIP, "other MAC": otherMAC}
	for name, c := range cookies {
		if c == cookie {
			t.Errorf("%s rule set has the same cookie %#x", name, c)
		}
		if c&cookieMask != cookieKovn {
			t.Errorf("%s rule set's cookie %#x lacks the kovn prefix", name, c)
		}
	}
}

// The names and the run directory are not in the flows: they must not
// change the cookie, or every agent restart with another spelling would
// rewrite the bridge.
func TestCookieIgnoresNames(t *testing.T) {
	_, cookie := flowText(t, testConfig(), ofports{nic: 1, patch: 2})
	cfg := testConfig()
	cfg.Bridge, cfg.NIC, cfg.PatchPort, cfg.RunDir = "breth0", "ens3", "patch-x", "/run/ovs"
	if _, c := flowText(t, cfg, ofports{nic: 1, patch: 2}); c != cookie {
		t.Errorf("cookie %#x changed to %#x with only names changed", cookie, c)
	}
}

// The NodePort flows cover exactly the configured range, for TCP and UDP,
// and only once the patch port exists.
func TestNodePortFlows(t *testing.T) {
	cfg := testConfig()
	cfg.NodePorts = PortRange{Min: 30000, Max: 32767}
	base, _ := flowText(t, testConfig(), ofports{nic: 1, patch: 2})
	got, _ := flowText(t, cfg, ofports{nic: 1, patch: 2})
	extra := got[len(base):]
	covered := map[string]map[int]bool{"tcp": {}, "udp": {}}
	for _, line := range extra {
		var proto string
		var val, mask int
		prefix := "priority=100,"
		rest, ok := strings.CutPrefix(line, prefix)
		if !ok {
			t.Fatalf("unexpected flow %q", line)
		}
		proto, rest, _ = strings.Cut(rest, ",")
		if _, err := fmt.Sscanf(rest, "in_port=1,nw_dst=192.168.77.2,tp_dst=0x%x/0x%x,table=0,idle_timeout=0,actions=output:2", &val, &mask); err != nil {
			t.Fatalf("flow %q: %v", line, err)
		}
		for p := 0; p < 65536; p++ {
			if p&mask == val {
				if covered[proto][p] {
					t.Errorf("%s port %d matched twice", proto, p)
				}
				covered[proto][p] = true
			}
		}
	}
	for proto, ports := range covered {
		for p := 0; p < 65536; p++ {
			if in := p >= 30000 && p <= 32767; ports[p] != in {
				t.Fatalf("%s port %d: steered=%v, in range=%v", proto, p, ports[p], in)
			}
		}
	}
	if hostOnly, _ := flowText(t, cfg, ofports{nic: 1}); len(hostOnly) != 4 {
		t.Errorf("without a patch port: %d flows, want the 4 host flows", len(hostOnly))
	}
	bad := testConfig()
	bad.NodePorts = PortRange{Min: 61000, Max: 62000}
	if bad.validate() == nil {
		t.Error("a node port range overlapping the SNAT ports was accepted")
	}
}

// Ports resolved through Config.Resolve (kovn-node's OVSDB cache) are
// checked as ovs-vsctl's answers are: on the bridge, and numbered.
func TestResolveWith(t *testing.T) {
	numbers := map[string]struct {
		n  int
		br string
	}{"eth0": {1, "br-ex"}, "patch-lnet-n1-to-br-int": {7, "br-ex"}}
	cfg := testConfig()
	cfg.Resolve = func(_ context.Context, name string) (int, string, error) {
		p, ok := numbers[name]
		if !ok {
			return 0, "", fmt.Errorf("no interface %s", name)
		}
		return p.n, p.br, nil
	}
	got, err := resolvePorts(context.Background(), cfg)
	if err != nil || got != (ofports{nic: 1, patch: 7}) {
		t.Fatalf("resolvePorts = %+v, %v", got, err)
	}
	for name, tc := range map[string]struct {
		n    int
		br   string
		want string
	}{
		"on another bridge": {1, "br-int", `port eth0 is on bridge "br-int", not br-ex`},
		"not numbered yet":  {0, "br-ex", "port eth0 has no OpenFlow number yet"},
	} {
		numbers["eth0"] = struct {
			n  int
			br string
		}{tc.n, tc.br}
		if _, err := resolvePorts(context.Background(), cfg); err == nil || err.Error() != tc.want {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}
