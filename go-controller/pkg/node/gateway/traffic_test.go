package gateway_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

const ioTimeout = 5 * time.Second

// serve accepts TCP connections on addr inside role's namespace until the
// test ends. Each connection first gets a banner line, then every line it
// sends comes back as the reply; a misrouted connection is therefore seen
// either as a reset or as the wrong banner.
func (l *lab) serve(role, addr string, banner func(net.Conn) string) {
	l.t.Helper()
	var ln net.Listener
	if err := l.in(role, func() (err error) { ln, err = net.Listen("tcp4", addr); return err }); err != nil {
		l.t.Fatalf("listen on %s in %s: %v", addr, role, err)
	}
	l.t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(4 * stepTimeout))
				if _, err := fmt.Fprintln(c, banner(c)); err != nil {
					return
				}
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
}

// peer greets a connection with the address it came from.
func peer(c net.Conn) string { return "hello " + c.RemoteAddr().String() }

// named greets every connection with the same name.
func named(name string) func(net.Conn) string { return func(net.Conn) string { return name } }

type conn struct {
	net.Conn
	r *bufio.Reader
}

// dial connects from role's namespace, from local (":0" lets the kernel
// pick the port), to remote.
func (l *lab) dial(role, local, remote string) (*conn, error) {
	laddr, err := net.ResolveTCPAddr("tcp4", local)
	if err != nil {
		return nil, err
	}
	var c net.Conn
	err = l.in(role, func() (err error) {
		c, err = (&net.Dialer{LocalAddr: laddr, Timeout: ioTimeout}).Dial("tcp4", remote)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dial %s from %s in %s: %w", remote, local, role, err)
	}
	return &conn{Conn: c, r: bufio.NewReader(c)}, nil
}

func (c *conn) line() (string, error) {
	_ = c.SetReadDeadline(time.Now().Add(ioTimeout))
	s, err := c.r.ReadString('\n')
	return strings.TrimSuffix(s, "\n"), err
}

// echo sends msg and expects it back.
func (c *conn) echo(msg string) error {
	_ = c.SetWriteDeadline(time.Now().Add(ioTimeout))
	if _, err := fmt.Fprintln(c, msg); err != nil {
		return err
	}
	got, err := c.line()
	if err != nil {
		return fmt.Errorf("echo %q: %w", msg, err)
	}
	if got != msg {
		return fmt.Errorf("echo %q: got %q", msg, got)
	}
	return nil
}

// expectLine reads a line and checks it.
func (c *conn) expectLine(want string) error {
	got, err := c.line()
	if err == nil && got != want {
		err = fmt.Errorf("banner %q, want %q", got, want)
	}
	return err
}

// expectBanner dials and checks the first line.
func (l *lab) expectBanner(role, local, remote, want string) (*conn, error) {
	c, err := l.dial(role, local, remote)
	if err != nil {
		return nil, err
	}
	if err := c.expectLine(want); err != nil {
		c.Close()
		return nil, fmt.Errorf("%s → %s from %s: %w", role, remote, local, err)
	}
	return c, nil
}

// neighbour returns the MAC role's namespace resolved for ip on dev, or
// an error unless it is resolved (ARP answered).
func (l *lab) neighbour(role, ip, dev string) (string, error) {
	var entries []struct {
		LLAddr string   `json:"lladdr"`
		State  []string `json:"state"`
	}
	out, err := l.try("ip", "-j", "-n", l.ns[role], "neigh", "show", "to", ip, "dev", dev)
	if err == nil {
		err = json.Unmarshal([]byte(out), &entries)
	}
	if err != nil {
		return "", fmt.Errorf("ip neigh in %s: %v: %s", role, err, out)
	}
	for _, e := range entries {
		if e.LLAddr != "" && !strings.Contains(strings.Join(e.State, ","), "FAILED") {
			return e.LLAddr, nil
		}
	}
	return "", fmt.Errorf("%s has no resolved neighbour %s on %s: %s", role, ip, dev, out)
}

func (l *lab) linkMAC(role, dev string) string {
	var links []struct {
		Address string `json:"address"`
	}
	out := l.run("ip", "-j", "-n", l.ns[role], "link", "show", dev)
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		l.t.Fatalf("ip link show %s in %s: %v: %s", dev, role, err, out)
	}
	return links[0].Address
}

var statsRe = regexp.MustCompile(`(duration|n_packets|n_bytes|idle_age|hard_age)=[^,]*, `)

// flows returns br-ex's flows as ovs-ofctl prints them, without the
// counters, and the packet count of kovn's flows.
func (l *lab) flows() ([]string, uint64) {
	var lines []string
	var packets uint64
	for _, line := range strings.Split(l.run("ovs-ofctl", "dump-flows", l.of("br-ex")), "\n")[1:] {
		line = strings.TrimSpace(line)
		if m := regexp.MustCompile(`n_packets=(\d+)`).FindStringSubmatch(line); m != nil && strings.HasPrefix(line, "cookie=0x6b6f766e") {
			n, _ := strconv.ParseUint(m[1], 10, 64)
			packets += n
		}
		lines = append(lines, statsRe.ReplaceAllString(line, ""))
	}
	return lines, packets
}

// roundTrips exchanges n lines on each connection in turn, so the two
// sides' traffic interleaves (NORMAL's MAC learning would flip between
// them and lose one).
func roundTrips(n int, conns map[string]*conn) error {
	var errs []error
	for i := range n {
		for name, c := range conns {
			if err := c.echo(fmt.Sprintf("%s %d", name, i)); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// serveUDP answers datagrams sent to addr inside role's namespace until the
// test ends, each with reply(sender, payload). It holds the answers until
// batch datagrams arrived (or a second passed since the first one), then
// sends them back to back: two stacks' answers then follow the same
// datapath flow within microseconds, which NORMAL can deliver to one stack
// only.
func (l *lab) serveUDP(role, addr string, batch int, reply func(src net.Addr, msg string) string) {
	l.t.Helper()
	var pc net.PacketConn
	if err := l.in(role, func() (err error) { pc, err = net.ListenPacket("udp4", addr); return err }); err != nil {
		l.t.Fatalf("listen on udp %s in %s: %v", addr, role, err)
	}
	l.t.Cleanup(func() { pc.Close() })
	go func() {
		type dgram struct {
			src net.Addr
			msg string
		}
		var pending []dgram
		buf := make([]byte, 2048)
		for {
			deadline := time.Time{}
			if len(pending) > 0 {
				deadline = time.Now().Add(time.Second)
			}
			_ = pc.SetReadDeadline(deadline)
			n, src, err := pc.ReadFrom(buf)
			switch {
			case err == nil:
				pending = append(pending, dgram{src, string(buf[:n])})
			case !errors.Is(err, os.ErrDeadlineExceeded):
				return
			}
			if len(pending) >= batch || err != nil {
				for _, d := range pending {
					_, _ = pc.WriteTo([]byte(reply(d.src, d.msg)), d.src)
				}
				pending = nil
			}
		}
	}()
}

// udpPeer answers like peer, with the payload appended.
func udpPeer(src net.Addr, msg string) string { return "hello " + src.String() + " " + msg }

// udpNamed answers every datagram with the same name.
func udpNamed(name string) func(net.Addr, string) string {
	return func(net.Addr, string) string { return name }
}

// dialUDP makes a connected UDP socket in role's namespace, from local to
// remote: it receives only remote's datagrams, and ICMP errors about them
// as ECONNREFUSED and the like.
func (l *lab) dialUDP(role, local, remote string) (*net.UDPConn, error) {
	laddr, err := net.ResolveUDPAddr("udp4", local)
	if err != nil {
		return nil, err
	}
	raddr, err := net.ResolveUDPAddr("udp4", remote)
	if err != nil {
		return nil, err
	}
	var c *net.UDPConn
	err = l.in(role, func() (err error) { c, err = net.DialUDP("udp4", laddr, raddr); return err })
	if err != nil {
		return nil, fmt.Errorf("dial udp %s from %s in %s: %w", remote, local, role, err)
	}
	return c, nil
}

// recvUDP waits up to timeout for one datagram.
func recvUDP(c *net.UDPConn, timeout time.Duration) (string, error) {
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	return string(buf[:n]), err
}

// udpExchange sends msg from local in role's namespace to remote and
// returns the answer.
func (l *lab) udpExchange(role, local, remote, msg string) (string, error) {
	c, err := l.dialUDP(role, local, remote)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	got, err := recvUDP(c, ioTimeout)
	if err != nil {
		return "", fmt.Errorf("udp %s → %s from %s: %w", role, remote, local, err)
	}
	return got, nil
}

var receivedRe = regexp.MustCompile(`(\d+) received`)

// ping sends count echo requests of size bytes from role's namespace to ip
// and returns how many were answered; dup reports an answer that came twice.
func (l *lab) ping(role, ip string, count, size int) (received int, dup bool, out string) {
	out, _ = l.try("ip", "netns", "exec", l.ns[role], l.bins["ping"], "-n", "-c", strconv.Itoa(count), "-s", strconv.Itoa(size),
		"-i", "0.2", "-W", "2", ip)
	if m := receivedRe.FindStringSubmatch(out); m != nil {
		received, _ = strconv.Atoi(m[1])
	}
	return received, strings.Contains(out, "DUP!") || strings.Contains(out, "duplicates"), out
}

// icmpStats returns the Icmp counters of /proc/net/snmp in role's
// namespace (InEchos, OutEchoReps, InEchoReps, ...).
func (l *lab) icmpStats(role string) map[string]int64 {
	out := l.run("ip", "netns", "exec", l.ns[role], "cat", "/proc/net/snmp")
	var names []string
	stats := map[string]int64{}
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || fields[0] != "Icmp:" {
			continue
		}
		if names == nil {
			names = fields[1:]
			continue
		}
		for i, v := range fields[1:] {
			if i < len(names) {
				stats[names[i]], _ = strconv.ParseInt(v, 10, 64)
			}
		}
	}
	if len(stats) == 0 {
		l.t.Fatalf("no Icmp counters in %s's /proc/net/snmp:\n%s", role, out)
	}
	return stats
}

// portOf returns the port of a "host:port" address.
func portOf(addr net.Addr) int {
	_, p, _ := net.SplitHostPort(addr.String())
	n, _ := strconv.Atoi(p)
	return n
}
