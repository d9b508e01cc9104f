// Package trace is `kovnctl trace`: it turns "from this pod to that pod
// (or IP)" into the microflow ovn-trace needs, runs ovn-trace against the
// SB database, reads the verdict out of its output and explains it in
// Kubernetes terms: which NetworkPolicy allowed or dropped the packet,
// found through the ACL that logical flow came from.
//
// Everything is derived from NB, not from the API: the pod's port name is
// fixed by ownership.PodPort and its MAC and IP are in the port's
// addresses, so a trace needs no kubeconfig and shows what OVN will do,
// even when the API and NB disagree.
package trace

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/nbview"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// Request is what the user asked for.
type Request struct {
	From  string // NS/POD
	To    string // NS/POD or an IPv4 address
	Proto string // tcp, udp or icmp; "" means tcp with a port, else icmp
	Port  int    // destination port for tcp/udp
}

// Endpoint is one end of the trace.
type Endpoint struct {
	Pod    string     `json:"pod,omitempty"`  // ns/name; empty for a bare IP
	Port   string     `json:"port,omitempty"` // logical switch port
	Switch string     `json:"switch,omitempty"`
	MAC    string     `json:"mac,omitempty"`
	IP     netip.Addr `json:"ip"`
}

// Plan is the packet to trace.
type Plan struct {
	Src Endpoint `json:"src"`
	Dst Endpoint `json:"dst"`
	// Gateway is the router port whose MAC is eth.dst when the packet
	// has to be routed (another subnet); empty when it stays on the
	// switch.
	Gateway   string `json:"gateway,omitempty"`
	EthDst    string `json:"ethDst"`
	Proto     string `json:"proto"`
	DstPort   int    `json:"dstPort,omitempty"`
	Datapath  string `json:"datapath"` // the source's switch, where ovn-trace starts
	Microflow string `json:"microflow"`
}

// SrcPort is the source port of tcp/udp probes: any fixed ephemeral port,
// so that traces are reproducible.
const SrcPort = 40000

// MakePlan resolves both ends in NB and builds the microflow.
func MakePlan(v *nbview.View, r Request) (*Plan, error) {
	proto, err := protocol(r)
	if err != nil {
		return nil, err
	}
	src, srcLS, err := podEndpoint(v, r.From)
	if err != nil {
		return nil, fmt.Errorf("--from: %w", err)
	}
	p := &Plan{Src: src, Proto: proto, DstPort: r.Port, Datapath: src.Switch}
	if ip, err := netip.ParseAddr(r.To); err == nil {
		if !ip.Is4() {
			return nil, fmt.Errorf("--to %s: only IPv4 is traced (kovn programs IPv4)", r.To)
		}
		p.Dst = Endpoint{IP: ip}
		// An address on the source's own switch is reached at layer 2.
		if lsp := v.PortWithAddress(srcLS, ip); lsp != nil {
			p.Dst.Port, p.Dst.Switch = lsp.Name, srcLS.Name
			p.Dst.MAC, _, _ = nbview.PortIPv4(lsp)
		}
	} else {
		if p.Dst, _, err = podEndpoint(v, r.To); err != nil {
			return nil, fmt.Errorf("--to: %w", err)
		}
	}
	gw, _, hasGW := v.GatewayFor(srcLS, src.IP)
	switch {
	case p.Dst.Switch == src.Switch && p.Dst.MAC != "":
		p.EthDst = p.Dst.MAC
	case hasGW:
		// Pods route everything off their switch through its router
		// port, the subnet's .1 (the pod-network annotation's gateway).
		p.Gateway, p.EthDst = gw.Name, gw.MAC
	default:
		return nil, fmt.Errorf("switch %s has no router port serving %s, so %s is not reachable from it", src.Switch, src.IP, p.Dst.IP)
	}
	p.Microflow = microflow(p)
	return p, nil
}

func protocol(r Request) (string, error) {
	proto := strings.ToLower(r.Proto)
	if proto == "" {
		proto = "icmp"
		if r.Port != 0 {
			proto = "tcp"
		}
	}
	switch proto {
	case "tcp", "udp":
		if r.Port < 1 || r.Port > 65535 {
			return "", fmt.Errorf("--proto %s needs --port between 1 and 65535", proto)
		}
	case "icmp", "icmp4":
		if r.Port != 0 {
			return "", fmt.Errorf("--port does not apply to icmp")
		}
		proto = "icmp"
	default:
		return "", fmt.Errorf("--proto must be tcp, udp or icmp, not %q", r.Proto)
	}
	return proto, nil
}

// podEndpoint finds NS/POD's port, its switch, MAC and IPv4 address.
func podEndpoint(v *nbview.View, ref string) (Endpoint, *nbdb.LogicalSwitch, error) {
	ns, name, ok := strings.Cut(ref, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return Endpoint{}, nil, fmt.Errorf("%q is not NS/POD", ref)
	}
	portName := own.PodPort(ns, name)
	lsp := v.SwitchPort(portName)
	if lsp == nil {
		return Endpoint{}, nil, fmt.Errorf("pod %s has no logical switch port %s in NB (not scheduled yet, host network, finished, or not programmed)", ref, portName)
	}
	ls := v.SwitchOf(lsp.UUID)
	if ls == nil {
		return Endpoint{}, nil, fmt.Errorf("port %s is on no logical switch", portName)
	}
	mac, ip, ok := nbview.PortIPv4(lsp)
	if !ok {
		return Endpoint{}, nil, fmt.Errorf("port %s has no MAC and IPv4 address in %q", portName, lsp.Addresses)
	}
	return Endpoint{Pod: ns + "/" + name, Port: portName, Switch: ls.Name, MAC: mac, IP: ip}, ls, nil
}

// microflow is the packet in ovn-trace's expression syntax: a new
// connection's first packet, with a TTL so routers can forward it.
func microflow(p *Plan) string {
	parts := []string{
		fmt.Sprintf("inport == %q", p.Src.Port),
		"eth.src == " + p.Src.MAC,
		"eth.dst == " + p.EthDst,
		"ip4.src == " + p.Src.IP.String(),
		"ip4.dst == " + p.Dst.IP.String(),
		"ip.ttl == 64",
	}
	switch p.Proto {
	case "tcp", "udp":
		parts = append(parts, fmt.Sprintf("%s.src == %d", p.Proto, SrcPort), fmt.Sprintf("%s.dst == %d", p.Proto, p.DstPort))
	default:
		parts = append(parts, "icmp4.type == 8", "icmp4.code == 0") // echo request
	}
	return strings.Join(parts, " && ")
}

// Describe is the one-line summary of what is traced.
func (p *Plan) Describe() string {
	what := p.Proto
	if p.DstPort != 0 {
		what = fmt.Sprintf("%s/%d", p.Proto, p.DstPort)
	}
	return fmt.Sprintf("%s → %s %s", p.Src.label(), p.Dst.label(), what)
}

func (e Endpoint) label() string {
	if e.Pod != "" {
		return fmt.Sprintf("%s (%s)", e.Pod, e.IP)
	}
	if e.Port != "" {
		return fmt.Sprintf("%s (port %s)", e.IP, e.Port)
	}
	return e.IP.String()
}
