package lab

import (
	"fmt"
	"strconv"
)

// Underlay mode puts pods straight on a physical subnet (UnderlayPodCIDR)
// that the lab's router serves: br-ex on every host bridges the pods'
// frames out through eth0 onto br-ul, untagged or tagged with a VLAN.

// The pods' physical subnet in underlay mode; the lab's router holds the
// gateway address in it. Like the rest of the lab's ranges it exists only
// inside the lab's namespaces.
const (
	UnderlayPodCIDR    = "172.20.0.0/24"
	UnderlayPodGateway = "172.20.0.1"
)

func validateUnderlay(cfg Config) error {
	if cfg.UnderlayVLAN < 0 || cfg.UnderlayVLAN > 4094 {
		return fmt.Errorf("--underlay-vlan must be between 1 and 4094 (or 0 for untagged), got %d", cfg.UnderlayVLAN)
	}
	if cfg.UnderlayVLAN != 0 && cfg.Mode != "underlay" {
		return fmt.Errorf("--underlay-vlan needs --mode underlay")
	}
	return nil
}

// underlayRouterDev is the ul-namespace link that holds the pods' gateway
// address: br-ul itself, or the router's port in the VLAN.
func (l *Lab) underlayRouterDev() string {
	if l.UnderlayVLAN == 0 {
		return underlayBr
	}
	return underlayBr + "." + strconv.Itoa(l.UnderlayVLAN)
}

// setupUnderlayPodNet makes the lab's router the pods' gateway: a second
// address on br-ul, or, with a VLAN, an address on br-ul.N, the router's
// port in that VLAN.
func (l *Lab) setupUnderlayPodNet() error {
	if l.Mode != "underlay" {
		return nil
	}
	if l.UnderlayVLAN == 0 {
		_, err := run("ip", "-n", underlayNS, "addr", "add", UnderlayPodGateway+"/24", "dev", underlayBr)
		return err
	}
	return l.setupVLANRouterPort()
}

// underlayControllerFlags tell kovn-controller the physical pod subnet.
func (l *Lab) underlayControllerFlags() []string {
	if l.Mode != "underlay" {
		return nil
	}
	return []string{
		"--underlay-subnet=" + UnderlayPodCIDR,
		"--underlay-gateway=" + UnderlayPodGateway,
		"--underlay-vlan=" + strconv.Itoa(l.UnderlayVLAN),
	}
}

// nodeModeFlags are kovn-node's mode flags; overlay passes none, so an
// overlay lab runs kovn-node exactly as before underlay existed.
func (l *Lab) nodeModeFlags() []string {
	if l.Mode != "underlay" {
		return nil
	}
	return []string{"--mode=underlay"}
}

// underlayEnv describes the pods' physical subnet for tests.
func (l *Lab) underlayEnv() []string {
	if l.Mode != "underlay" {
		return nil
	}
	return []string{
		"LAB_UNDERLAY_POD_CIDR=" + UnderlayPodCIDR,
		"LAB_UNDERLAY_GATEWAY=" + UnderlayPodGateway,
		"LAB_UNDERLAY_VLAN=" + strconv.Itoa(l.UnderlayVLAN),
	}
}
