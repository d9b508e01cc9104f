package trace

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The testdata files are real ovn-trace 23.03.1 --detailed outputs (with
// --ct=new) over a small hand-made topology: switches n1 (10.128.1.0/24)
// and n2 (10.128.2.0/24) on one router, ports a_web (.1.5), a_cli (.1.6)
// and b_x (.2.5); a_web is in port group pg_iso (to-lport drop of ip4 at
// 1000) and pg_np (allow-related from 10.128.1.6 to tcp 80 at 1001); a
// load balancer 10.96.0.10:80 → 10.128.1.5:8080, 10.128.2.5:8080.
func load(t *testing.T, name string) *Parsed {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return Parse(string(b))
}

func TestParseAllowed(t *testing.T) {
	p := load(t, "allowed.txt")
	if !strings.HasPrefix(p.OpenFlow, "tcp,reg14=0x3") {
		t.Errorf("openflow line %q", p.OpenFlow)
	}
	if len(p.Hops) != 2 || p.Hops[0] != (Hop{Pipeline: "ingress", Datapath: "n1", Inport: "a_cli"}) ||
		p.Hops[1].Outport != "a_web" {
		t.Errorf("hops %+v", p.Hops)
	}
	var acl *Flow
	for _, f := range p.Flows {
		if f.Stage == "ls_out_acl" {
			acl = f
		}
	}
	if acl == nil || acl.Priority != 2001 || acl.UUID != "73ca6071" || acl.Table != 4 || acl.Source != "northd.c:6445" ||
		acl.Match != "reg0[7] == 1 && (outport == @pg_np && ip4.src == 10.128.1.6 && tcp.dst == 80)" ||
		!slices.Equal(acl.Actions, []string{"reg0[1] = 1;", "next;"}) || acl.Datapath != "n1" || acl.Pipeline != "egress" {
		t.Errorf("ACL flow %+v", acl)
	}
	f := Decide(p)
	if f.Verdict != Delivered || len(f.DeliveredTo) != 1 || f.DeliveredTo[0].Port != "a_web" {
		t.Fatalf("fate %+v", f)
	}
	if !slices.Equal(f.Path, []string{"n1", "port a_web"}) {
		t.Errorf("path %q", f.Path)
	}
	if f.Summary() != "delivered to a_web" {
		t.Errorf("summary %q", f.Summary())
	}
}

func TestParseDenied(t *testing.T) {
	for _, tc := range []struct {
		file string
		path []string
	}{
		{"denied_same_switch.txt", []string{"n1"}},
		{"denied_cross_node.txt", []string{"n2", "kovn_cluster_router", "n1"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			f := Decide(load(t, tc.file))
			if f.Verdict != Dropped || len(f.Drops) != 1 {
				t.Fatalf("fate %+v", f)
			}
			d := f.Drops[0]
			if d.Kind != Drop || d.Flow == nil || d.Flow.Stage != "ls_out_acl" || d.Flow.Priority != 2000 ||
				d.Flow.UUID != "dc56df1f" || d.Datapath != "n1" || d.Pipeline != "egress" {
				t.Errorf("drop %+v flow %+v", d, d.Flow)
			}
			if !slices.Equal(f.Path, tc.path) {
				t.Errorf("path %q, want %q", f.Path, tc.path)
			}
			if want := "dropped in n1 egress, stage ls_out_acl (priority 2000)"; f.Summary() != want {
				t.Errorf("summary %q", f.Summary())
			}
		})
	}
}

func TestParseOtherDrops(t *testing.T) {
	for file, stage := range map[string]string{
		"port_security.txt": "ls_in_apply_port_sec",
		"no_route.txt":      "lr_in_ip_routing",
		"unknown_mac.txt":   "ls_in_l2_unknown",
	} {
		f := Decide(load(t, file))
		if f.Verdict != Dropped || f.Drops[0].Flow == nil || f.Drops[0].Flow.Stage != stage {
			t.Errorf("%s: fate %+v", file, f)
			continue
		}
		if _, why := decide(f, nil); !strings.Contains(why, "not by an ACL") || !strings.Contains(why, stage) {
			t.Errorf("%s: because %q", file, why)
		}
	}
}

// An unknown destination makes the router send an ARP request, which
// the other switch floods to its ports: that is not a delivery of the
// traced packet.
func TestParseGeneratedPacketIsNotADelivery(t *testing.T) {
	p := load(t, "arp_unresolved.txt")
	var gen []Outcome
	for _, o := range p.Outcomes {
		if o.Generated == "arp" && o.Kind == Output && !o.Transit {
			gen = append(gen, o)
		}
	}
	if len(gen) == 0 || gen[0].Port != "b_x" {
		t.Fatalf("the flooded ARP request was not parsed: %+v", p.Outcomes)
	}
	f := Decide(p)
	if f.Verdict != Unresolved || f.Generated != "arp" || len(f.DeliveredTo) != 0 ||
		f.Router != "kovn_cluster_router" || f.NextHop != "the destination" {
		t.Errorf("fate %+v", f)
	}
	if !slices.Equal(f.Path, []string{"n1", "kovn_cluster_router"}) {
		t.Errorf("path %q", f.Path)
	}
	if want := "not forwarded: kovn_cluster_router has no MAC binding for the destination and sends an arp request in its place"; f.Summary() != want {
		t.Errorf("summary %q", f.Summary())
	}
}

// Through a load balancer ovn-trace shows ct_lb_mark sections; the
// packet continues to the chosen backend, here dropped by isolation
// (the allow is for port 80, the backend listens on 8080).
func TestParseLoadBalanced(t *testing.T) {
	p := load(t, "lb.txt")
	f := Decide(p)
	if f.Verdict != Dropped || f.Drops[0].Flow.Stage != "ls_out_acl" {
		t.Fatalf("fate %+v", f)
	}
	if !slices.Equal(f.Path, []string{"n1", "kovn_cluster_router", "n1"}) {
		t.Errorf("path %q", f.Path)
	}
	if lb := loadBalancing(p); !slices.Equal(lb, []string{"n1 ls_in_lb: ct_lb_mark(backends=10.128.1.5:8080,10.128.2.5:8080)"}) {
		t.Errorf("load balancing %q", lb)
	}
}

func TestParseGarbage(t *testing.T) {
	f := Decide(Parse("ovn-trace: something unexpected\n"))
	if f.Verdict != Unknown {
		t.Errorf("fate %+v", f)
	}
}

func TestIsACLStage(t *testing.T) {
	for stage, want := range map[string]bool{
		"ls_in_acl": true, "ls_out_acl": true, "ls_in_acl_after_lb": true, "ls_in_acl_eval": true,
		"ls_in_acl_hint": false, "ls_out_acl_hint": false, "ls_in_pre_acl": false, "lr_in_ip_routing": false,
	} {
		if IsACLStage(stage) != want {
			t.Errorf("IsACLStage(%q) = %v", stage, !want)
		}
	}
}
