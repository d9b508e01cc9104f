package extport

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/kovn-io/kovn/go-controller/pkg/kube"
)

// Assigned reports whether the controller has given the port what Plug
// needs: an iface-id and an address.
func Assigned(st *kube.ExternalPortStatus) bool {
	return st != nil && st.IfaceID != "" && len(st.IPs) > 0
}

// Addressing is an ExternalPort's status, parsed and checked.
type Addressing struct {
	IfaceID string
	// Addr is the first of status.ips: the one a host's internal port
	// gets (kovn assigns IPv4 only).
	Addr    netip.Prefix
	MAC     net.HardwareAddr // nil when the status has none
	Gateway netip.Addr       // invalid when the status has none
	// Routes are status.routes without default routes, which a host
	// keeps for its own uplink.
	Routes []netip.Prefix
	// Skipped are the default routes left out of Routes.
	Skipped []netip.Prefix
	MTU     int
}

// ParseStatus checks st and parses it. Everything Assigned asks for must
// be there; a gateway is needed only when there are routes to send
// through it.
func ParseStatus(st *kube.ExternalPortStatus) (*Addressing, error) {
	if !Assigned(st) {
		return nil, errors.New("the controller has not assigned an iface-id and an address yet")
	}
	a := &Addressing{IfaceID: st.IfaceID, MTU: st.MTU}
	var err error
	if a.Addr, err = netip.ParsePrefix(st.IPs[0]); err != nil {
		return nil, fmt.Errorf("status.ips[0]: %w", err)
	}
	if st.MAC != "" {
		if a.MAC, err = net.ParseMAC(st.MAC); err != nil {
			return nil, fmt.Errorf("status.mac: %w", err)
		}
	}
	if st.Gateway != "" {
		if a.Gateway, err = netip.ParseAddr(st.Gateway); err != nil {
			return nil, fmt.Errorf("status.gateway: %w", err)
		}
		if !a.Addr.Contains(a.Gateway) {
			// The route through it would need an on-link gateway.
			return nil, fmt.Errorf("status.gateway %s is outside %s", a.Gateway, a.Addr)
		}
	}
	for i, s := range st.Routes {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("status.routes[%d]: %w", i, err)
		}
		if p.Bits() == 0 {
			a.Skipped = append(a.Skipped, p)
			continue
		}
		if !a.Gateway.IsValid() || p.Addr().Is4() != a.Gateway.Is4() {
			return nil, fmt.Errorf("status.routes[%d] %s: no gateway of its family in status.gateway %q", i, p, st.Gateway)
		}
		a.Routes = append(a.Routes, p.Masked())
	}
	if a.MTU < 0 {
		return nil, fmt.Errorf("status.mtu %d is negative", a.MTU)
	}
	return a, nil
}
