// Command kovn-test-server is the lab's test server. Every TCP connection
// and UDP datagram it receives is answered with one JSON line
// {"pod":"NS/NAME","node":"NODE","client":"IP"} (see package lab/probe), so a
// test can tell which backend answered and which source address it saw.
// TCP clients that send an HTTP request get the line as an HTTP response
// body, so both curl and a raw reader work.
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := newApp().RunContext(ctx, os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "kovn-test-server:", err)
		os.Exit(1)
	}
}

// newApp builds the CLI without running it, so docs/flags.md can be
// rendered from it.
func newApp() *cli.App {
	return &cli.App{
		Name:            "kovn-test-server",
		Usage:           "answer TCP connections and UDP datagrams with who answered and who asked",
		HideHelpCommand: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "tcp-ports", Value: "80,81,8080", Usage: "comma-separated TCP ports, empty for none"},
			&cli.StringFlag{Name: "udp-ports", Value: "80,81,9090", Usage: "comma-separated UDP ports, empty for none"},
			&cli.StringFlag{Name: "name", Usage: "pod value of replies (default: $POD_NAMESPACE/$POD_NAME, else the hostname)"},
			&cli.StringFlag{Name: "node", EnvVars: []string{"NODE_NAME"}, Usage: "node value of replies (default: the hostname)"},
			&cli.BoolFlag{Name: "verbose", Usage: "log every request"},
		},
		Action: func(c *cli.Context) error {
			tcp, err := listenAddrs(c.String("tcp-ports"))
			if err != nil {
				return fmt.Errorf("--tcp-ports: %w", err)
			}
			udp, err := listenAddrs(c.String("udp-ports"))
			if err != nil {
				return fmt.Errorf("--udp-ports: %w", err)
			}
			if len(tcp)+len(udp) == 0 {
				return fmt.Errorf("no ports to listen on")
			}
			pod, node := identity(c.String("name"), c.String("node"), os.Getenv)
			s := &server{pod: pod, node: node, verbose: c.Bool("verbose"), log: log.New(os.Stderr, "", log.LstdFlags)}
			return run(c.Context, s, tcp, udp)
		},
	}
}

// listenAddrs turns "80,81" into ":80", ":81": no host means every IPv4
// and IPv6 address through one dual-stack socket.
func listenAddrs(list string) ([]string, error) {
	var addrs []string
	seen := map[int]bool{}
	for _, f := range strings.Split(list, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		p, err := strconv.Atoi(f)
		if err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("invalid port %q", f)
		}
		if seen[p] {
			return nil, fmt.Errorf("port %d listed twice", p)
		}
		seen[p] = true
		addrs = append(addrs, ":"+strconv.Itoa(p))
	}
	return addrs, nil
}

// identity resolves what replies report: name wins whole, else the
// downward-API pod name, else the hostname (host-network and external
// servers); node falls back to the hostname.
func identity(name, node string, getenv func(string) string) (string, string) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	if name == "" {
		name = host
		if pod := getenv("POD_NAME"); pod != "" {
			name = pod
			if ns := getenv("POD_NAMESPACE"); ns != "" {
				name = ns + "/" + pod
			}
		}
	}
	if node == "" {
		node = host
	}
	return name, node
}

// run serves on every address until ctx ends. In-flight connections are
// abandoned on shutdown: they are short and the process exits anyway.
func run(ctx context.Context, s *server, tcpAddrs, udpAddrs []string) error {
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	var lc net.ListenConfig
	for _, addr := range tcpAddrs {
		ln, err := lc.Listen(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		closers = append(closers, ln)
		s.log.Printf("listening on tcp %s as pod %q node %q", ln.Addr(), s.pod, s.node)
		go s.serveTCP(ln)
	}
	for _, addr := range udpAddrs {
		pc, err := lc.ListenPacket(ctx, "udp", addr)
		if err != nil {
			return err
		}
		closers = append(closers, pc)
		s.log.Printf("listening on udp %s as pod %q node %q", pc.LocalAddr(), s.pod, s.node)
		go s.serveUDP(pc.(*net.UDPConn))
	}
	<-ctx.Done()
	s.log.Printf("shutting down")
	return nil
}
