package kube

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
)

// Annotation keys kovn reads and writes.
const (
	// NodeSubnetsAnnotation: the node's pod subnets, written by the controller.
	NodeSubnetsAnnotation = "kovn.io/node-subnets"
	// NodeGatewayAnnotation: chassis and gateway facts, written by kovn-node.
	NodeGatewayAnnotation = "kovn.io/node-gateway"
	// PodNetworkAnnotation: the pod's addresses, written by the controller
	// before its port exists; kovn-node plumbs the pod from it.
	PodNetworkAnnotation = "kovn.io/pod-network"
	// PodIPRequestAnnotation: a static IP the user asks for.
	PodIPRequestAnnotation = "kovn.io/ip-address"
)

// Route is one route inside a pod.
type Route struct {
	Dest    string `json:"dest"`
	NextHop string `json:"nextHop"`
}

// PodNetwork is the value of kovn.io/pod-network.
type PodNetwork struct {
	IPs     []string `json:"ips"` // CIDR form: 10.128.1.5/24
	MAC     string   `json:"mac"`
	Gateway []string `json:"gateway"` // one per family
	Routes  []Route  `json:"routes,omitempty"`
	MTU     int      `json:"mtu"`
}

// Marshal encodes the annotation value.
func (p *PodNetwork) Marshal() (string, error) {
	b, err := json.Marshal(p)
	return string(b), err
}

// ParsePodNetwork decodes and validates an annotation value.
func ParsePodNetwork(s string) (*PodNetwork, error) {
	var p PodNetwork
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		return nil, fmt.Errorf("%s is not valid JSON: %w", PodNetworkAnnotation, err)
	}
	if len(p.IPs) == 0 {
		return nil, fmt.Errorf("%s has no ips", PodNetworkAnnotation)
	}
	for _, ip := range p.IPs {
		pfx, err := netip.ParsePrefix(ip)
		if err != nil {
			return nil, fmt.Errorf("%s: ip %q: %w", PodNetworkAnnotation, ip, err)
		}
		if pfx.Addr().Is4In6() { // neither family: kovn-node would plumb it as IPv6
			return nil, fmt.Errorf("%s: ip %q is an IPv4-mapped IPv6 address", PodNetworkAnnotation, ip)
		}
	}
	if _, err := net.ParseMAC(p.MAC); err != nil {
		return nil, fmt.Errorf("%s: mac %q: %w", PodNetworkAnnotation, p.MAC, err)
	}
	for _, gw := range p.Gateway {
		a, err := netip.ParseAddr(gw)
		if err != nil {
			return nil, fmt.Errorf("%s: gateway %q: %w", PodNetworkAnnotation, gw, err)
		}
		if a.Is4In6() {
			return nil, fmt.Errorf("%s: gateway %q is an IPv4-mapped IPv6 address", PodNetworkAnnotation, gw)
		}
	}
	if p.MTU < 576 || p.MTU > 65535 {
		return nil, fmt.Errorf("%s: mtu %d out of range", PodNetworkAnnotation, p.MTU)
	}
	return &p, nil
}

// Addrs returns the IPs without prefix lengths.
func (p *PodNetwork) Addrs() []netip.Addr {
	out := make([]netip.Addr, 0, len(p.IPs))
	for _, s := range p.IPs {
		if pfx, err := netip.ParsePrefix(s); err == nil {
			out = append(out, pfx.Addr())
		}
	}
	return out
}

// ParseNodeSubnets decodes kovn.io/node-subnets: a JSON list of CIDRs.
func ParseNodeSubnets(s string) ([]netip.Prefix, error) {
	var raw []string
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return nil, fmt.Errorf("%s is not a JSON list: %w", NodeSubnetsAnnotation, err)
	}
	out := make([]netip.Prefix, 0, len(raw))
	for _, r := range raw {
		p, err := netip.ParsePrefix(r)
		if err != nil {
			return nil, fmt.Errorf("%s: %q: %w", NodeSubnetsAnnotation, r, err)
		}
		if p.Masked() != p {
			return nil, fmt.Errorf("%s: %q has host bits set", NodeSubnetsAnnotation, r)
		}
		out = append(out, p)
	}
	return out, nil
}

// MarshalNodeSubnets encodes subnets for kovn.io/node-subnets.
func MarshalNodeSubnets(subnets []netip.Prefix) string {
	raw := make([]string, len(subnets))
	for i, p := range subnets {
		raw[i] = p.String()
	}
	b, _ := json.Marshal(raw)
	return string(b)
}

// NodeGateway is the value of kovn.io/node-gateway, published by kovn-node.
type NodeGateway struct {
	ChassisID string `json:"chassisID"`
	IP        string `json:"ip"`      // node IP in CIDR form, on br-ex
	NextHop   string `json:"nextHop"` // the physical network's router
	MAC       string `json:"mac"`     // br-ex MAC
	Interface string `json:"interface,omitempty"`
}

// ParseNodeGateway decodes and validates kovn.io/node-gateway.
func ParseNodeGateway(s string) (*NodeGateway, error) {
	var g NodeGateway
	if err := json.Unmarshal([]byte(s), &g); err != nil {
		return nil, fmt.Errorf("%s is not valid JSON: %w", NodeGatewayAnnotation, err)
	}
	if g.ChassisID == "" {
		return nil, fmt.Errorf("%s has no chassisID", NodeGatewayAnnotation)
	}
	if _, err := netip.ParsePrefix(g.IP); err != nil {
		return nil, fmt.Errorf("%s: ip %q: %w", NodeGatewayAnnotation, g.IP, err)
	}
	if _, err := netip.ParseAddr(g.NextHop); err != nil {
		return nil, fmt.Errorf("%s: nextHop %q: %w", NodeGatewayAnnotation, g.NextHop, err)
	}
	if _, err := net.ParseMAC(g.MAC); err != nil {
		return nil, fmt.Errorf("%s: mac %q: %w", NodeGatewayAnnotation, g.MAC, err)
	}
	return &g, nil
}

// Marshal encodes the annotation value.
func (g *NodeGateway) Marshal() string {
	b, _ := json.Marshal(g)
	return string(b)
}
