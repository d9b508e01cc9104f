package gateway_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/kovn-io/kovn/go-controller/pkg/node/gateway"
)

// TestSharedGateway runs real packets through br-ex on a private
// ovs-vswitchd (userspace datapath) and checks each reply reaches the stack
// whose connection it belongs to, although the host and the "GR" share one
// IP and one MAC.
func TestSharedGateway(t *testing.T) {
	l := newLab(t)
	ensure := func(cfg gateway.Config) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
		defer cancel()
		if err := gateway.EnsureFlows(ctx, cfg); err != nil {
			t.Fatalf("EnsureFlows: %v", err)
		}
	}
	patchPort := func() string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
		defer cancel()
		p, err := gateway.PatchPort(ctx, l.dir, "br-ex")
		if err != nil {
			t.Fatalf("PatchPort: %v", err)
		}
		return p
	}
	mac, _ := net.ParseMAC(sharedMAC)
	cfg := gateway.Config{Bridge: "br-ex", NIC: "eth0", NodeIP: netip.MustParseAddr(nodeIP), MAC: mac, RunDir: l.dir}
	l.serve("outside", outsideIP+":8080", peer)
	l.serve("host", nodeIP+":9090", named("host"))
	server := outsideIP + ":8080"

	// Before ovn-controller has bound the localnet port: no patch port yet,
	// and the host alone must work.
	if p := patchPort(); p != "" {
		t.Fatalf("PatchPort before OVN = %q, want none", p)
	}
	ensure(cfg)
	c, err := l.expectBanner("host", nodeIP+":40100", server, "hello "+nodeIP+":40100")
	if err != nil {
		t.Fatalf("host egress without a patch port: %v", err)
	}
	c.Close()
	if c, err = l.expectBanner("outside", ":0", nodeIP+":9090", "host"); err != nil {
		t.Fatalf("incoming without a patch port: %v", err)
	}
	c.Close()

	// ovn-controller binds the localnet port; the agent finds the patch
	// port and calls EnsureFlows again.
	l.addOVN()
	l.serve("ovn", nodeIP+":9090", named("ovn"))
	l.serve("ovn", grLinkIP+":7070", named("ovn"))
	if cfg.PatchPort = patchPort(); cfg.PatchPort != patchExt {
		t.Fatalf("PatchPort = %q, want %q", cfg.PatchPort, patchExt)
	}
	ensure(cfg)
	for _, role := range []string{"host", "outside", "ovn"} {
		l.ip(role, "neigh", "flush", "all")
	}

	t.Run("egress from both stacks at once", func(t *testing.T) {
		// Fixed source ports: the two stacks pick ports independently, and
		// a shared IP cannot carry the same 5-tuple twice (OVN avoids that
		// with its SNAT port range).
		ovn, err := l.expectBanner("ovn", nodeIP+":40001", server, "hello "+nodeIP+":40001")
		if err != nil {
			t.Fatal(err)
		}
		defer ovn.Close()
		host, err := l.expectBanner("host", nodeIP+":40002", server, "hello "+nodeIP+":40002")
		if err != nil {
			t.Fatal(err)
		}
		defer host.Close()
		if err := roundTrips(5, map[string]*conn{"ovn": ovn, "host": host}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("new incoming connections reach the host", func(t *testing.T) {
		for range 3 {
			c, err := l.expectBanner("outside", ":0", nodeIP+":9090", "host")
			if err != nil {
				t.Fatal(err)
			}
			err = c.echo("ping")
			c.Close()
			if err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Run("host to its GR directly", func(t *testing.T) {
		c, err := l.expectBanner("host", ":0", grLinkIP+":7070", "ovn")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.echo("direct"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ARP both ways", func(t *testing.T) {
		outsideMAC := l.linkMAC("outside", "eth0")
		for _, n := range []struct{ role, ip, dev, want string }{
			{"outside", nodeIP, "eth0", sharedMAC},
			{"host", outsideIP, "br-ex", outsideMAC},
			{"ovn", outsideIP, "gr", outsideMAC},
		} {
			got, err := l.neighbour(n.role, n.ip, n.dev)
			if err != nil {
				t.Error(err)
			} else if got != n.want {
				t.Errorf("%s resolved %s to %s, want %s", n.role, n.ip, got, n.want)
			}
		}
	})
	t.Run("EnsureFlows again changes nothing", func(t *testing.T) {
		// ovs-vswitchd credits datapath counters to flows in the background.
		var before []string
		var packets uint64
		l.waitFor("kovn flows count packets", func() error {
			if before, packets = l.flows(); packets == 0 {
				return errors.New("no packets counted yet")
			}
			return nil
		})
		ensure(cfg)
		after, packetsAfter := l.flows()
		if !slices.Equal(before, after) {
			t.Errorf("flows changed:\nbefore:\n%s\nafter:\n%s", strings.Join(before, "\n"), strings.Join(after, "\n"))
		}
		// Replaced flows would start again from zero.
		if packetsAfter < packets {
			t.Errorf("kovn flows' packet count went from %d to %d: flows were rewritten", packets, packetsAfter)
		}
		kovn := 0
		for _, f := range after {
			if strings.HasPrefix(f, "cookie=0x6b6f766e") {
				kovn++
			}
		}
		if kovn != 10 {
			t.Errorf("%d kovn flows, want 10 (the host-only set must be gone)", kovn)
		}
	})
	out := l.run("ovs-ofctl", "dump-flows", l.of("br-ex"))
	t.Logf("br-ex flows:\n%s", out)
}
