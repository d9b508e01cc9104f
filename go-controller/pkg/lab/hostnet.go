package lab

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// run executes a command and returns its stdout; the error carries stderr
// so that a failed step explains itself.
func run(argv ...string) (string, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// inNet runs a command inside a lab network namespace. nsenter is used
// rather than `ip netns exec`, which remounts /sys and would hide cgroups.
func inNet(host string, argv ...string) (string, error) {
	return run(append([]string{"nsenter", "--net=" + NetNSPath(host), "--"}, argv...)...)
}

func netnsExists(host string) bool {
	_, err := os.Stat(NetNSPath(host))
	return err == nil
}

// hostLink describes one lab host's attachment to a lab bridge.
type hostLink struct {
	host    string // namespace suffix
	ulName  string // veth end left in the underlay namespace
	cidr    string // address of eth0 in the host
	gateway string
	onUL    string // bridge to enslave ulName to, or "" to address it instead
	ulAddr  string // address on ulName when it is a routed link
}

// setupNetwork builds the underlay namespace with its bridge and router, and
// one veth per host. It only runs for a lab that does not exist yet.
func (l *Lab) setupNetwork() error {
	for _, h := range l.netHosts() {
		if netnsExists(h) {
			return fmt.Errorf("network namespace %s%s already exists: run kovn-lab down first", nsPrefix, h)
		}
		if _, err := run("ip", "netns", "add", nsPrefix+h); err != nil {
			return err
		}
		if _, err := run("ip", "-n", nsPrefix+h, "link", "set", "lo", "up"); err != nil {
			return err
		}
	}
	ul := []string{"ip", "-n", underlayNS}
	steps := [][]string{
		append(ul, "link", "add", underlayBr, "type", "bridge"),
		append(ul, "addr", "add", UnderlayGateway+"/24", "dev", underlayBr),
		append(ul, "link", "set", underlayBr, "up"),
	}
	for _, s := range steps {
		if _, err := run(s...); err != nil {
			return err
		}
	}
	if err := l.setupUnderlayPodNet(); err != nil {
		return err
	}
	// The underlay namespace is the lab's physical router: between the
	// hosts' network, the pods' (in underlay mode) and the outside world.
	if _, err := inNet("ul", "sysctl", "-qw", "net.ipv4.ip_forward=1"); err != nil {
		return err
	}
	links := []hostLink{
		{host: "cp", ulName: "cp", cidr: ControlPlaneIP + "/24", gateway: UnderlayGateway, onUL: underlayBr},
		{host: "ext", ulName: "ext", cidr: ExternalIP + "/24", gateway: ExternalGateway, ulAddr: ExternalGateway + "/24"},
	}
	for _, h := range l.hosts() {
		links = append(links, hostLink{host: h, ulName: h, cidr: l.hostIP(h) + "/24", gateway: UnderlayGateway, onUL: underlayBr})
	}
	for _, hl := range links {
		if err := attachHost(hl); err != nil {
			return fmt.Errorf("wiring %s: %w", hl.host, err)
		}
	}
	return l.routeControlPlaneToPods()
}

// routeControlPlaneToPods lets the API server reach pod IPs, which it
// does for exec-less proxying (`kubectl proxy`, /proxy/pods/…, the
// upstream DNS and proxy specs read results that way). A real cluster's
// API server sits on a node and reaches pods through that node's
// management port; the lab's control plane is a host of its own, so the
// lab routes the cluster CIDR through node1 and masquerades it there onto
// kovn-mp0, which makes it node1's own traffic: pods answer node1's
// management port address, and the reply returns the same way. In
// underlay mode pods are on the lab router's network already.
func (l *Lab) routeControlPlaneToPods() error {
	if l.Mode != "overlay" {
		return nil
	}
	via := l.NodeNames[0]
	if _, err := inNet("cp", "ip", "route", "add", ClusterCIDR, "via", l.NodeIPs[via]); err != nil {
		return err
	}
	_, err := inNet(via, "iptables", "-t", "nat", "-A", "POSTROUTING", "-s", ControlPlaneIP, "-d", ClusterCIDR, "-o", "kovn-mp0",
		"-m", "comment", "--comment", "kovn-lab: the control plane reaches pods as this node", "-j", "MASQUERADE")
	return err
}

func attachHost(hl hostLink) error {
	ns := nsPrefix + hl.host
	steps := [][]string{
		{"ip", "-n", underlayNS, "link", "add", hl.ulName, "type", "veth", "peer", "name", "eth0", "netns", ns},
		{"ip", "-n", ns, "addr", "add", hl.cidr, "dev", "eth0"},
		{"ip", "-n", ns, "link", "set", "eth0", "up"},
		{"ip", "-n", ns, "route", "add", "default", "via", hl.gateway},
	}
	if hl.onUL != "" {
		steps = append(steps, []string{"ip", "-n", underlayNS, "link", "set", hl.ulName, "master", hl.onUL})
	} else {
		steps = append(steps, []string{"ip", "-n", underlayNS, "addr", "add", hl.ulAddr, "dev", hl.ulName})
	}
	steps = append(steps, []string{"ip", "-n", underlayNS, "link", "set", hl.ulName, "up"})
	for _, s := range steps {
		if _, err := run(s...); err != nil {
			return err
		}
	}
	// Veths hand packets over with partial checksums; OVS's userspace
	// datapath reads them raw and would forward them unfixed, so TCP
	// through br-ex fails unless both ends compute checksums in software.
	if _, err := inNet("ul", "ethtool", "-K", hl.ulName, "tx", "off"); err != nil {
		return err
	}
	_, err := inNet(hl.host, "ethtool", "-K", "eth0", "tx", "off")
	return err
}

// labNetNamespaces lists every lab namespace present, also ones a crashed
// lab left without a state file.
func labNetNamespaces() []string {
	entries, _ := os.ReadDir("/run/netns")
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), nsPrefix) {
			out = append(out, e.Name())
		}
	}
	return out
}
