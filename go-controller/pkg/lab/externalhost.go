package lab

import (
	"fmt"
	"strings"

	"github.com/kovn-io/kovn/go-controller/pkg/lab/pki"
)

// Bare-metal hosts ("external hosts" to kovn-node) are machines on the
// lab's physical network that run OVS, ovn-controller and kovn-node
// --external-host, so VMs or processes on them can join the pod network
// through ExternalPorts. They have no kubelet and are not Kubernetes Nodes.

// maxExternalHosts keeps their addresses (172.18.0.51…) inside the /24.
const maxExternalHosts = 50

// ExternalHostName is the name of bare-metal host i (1-based).
func ExternalHostName(i int) string { return fmt.Sprintf("bm%d", i) }

// ExternalHostIP is the underlay address of bare-metal host i (1-based).
func ExternalHostIP(i int) string { return fmt.Sprintf("172.18.0.%d", 50+i) }

func validateExternalHosts(cfg Config) error {
	if cfg.ExternalHosts < 0 || cfg.ExternalHosts > maxExternalHosts {
		return fmt.Errorf("--external-hosts must be between 0 and %d, got %d", maxExternalHosts, cfg.ExternalHosts)
	}
	// Workers count up from .11, bare-metal hosts from .51.
	if cfg.ExternalHosts > 0 && 10+cfg.Nodes >= 51 {
		return fmt.Errorf("--nodes %d would take the bare-metal hosts' addresses (172.18.0.51…): use at most 40 nodes with --external-hosts", cfg.Nodes)
	}
	return nil
}

// HasExternalHost reports whether name is one of the lab's bare-metal hosts.
func (l *Lab) HasExternalHost(name string) bool {
	_, ok := l.ExternalHostIPs[name]
	return ok
}

// externalHostBinds are the standard paths a bare-metal host gets private:
// those of OVS, OVN and kovn-node, and the CNI and netns directories in
// case kovn-node or a test writes there, so the machine's stay untouched.
// kubelet's and containerd's paths are left out: neither runs there.
func externalHostBinds() []string {
	return []string{
		"/etc/openvswitch", "/run/openvswitch", "/var/log/openvswitch", "/var/lib/openvswitch",
		"/etc/ovn", "/run/ovn", "/var/log/ovn", "/var/lib/ovn",
		"/run/kovn", "/etc/kovn",
		"/etc/cni/net.d", "/opt/cni/bin", "/var/lib/cni", "/run/netns",
	}
}

// bringUpExternalHost makes one bare-metal host: its filesystem view, OVS,
// ovn-controller and kovn-node. No kubelet, no containerd, no cgroup root.
func (l *Lab) bringUpExternalHost(host string) error {
	if err := l.setupHostFS(host, externalHostBinds(), nil); err != nil {
		return fmt.Errorf("%s: %w", host, err)
	}
	if err := l.startOVS(host); err != nil {
		return fmt.Errorf("%s: OVS: %w", host, err)
	}
	bin := l.kovnBin("kovn-node")
	if bin == "" {
		return l.configureChassis(host)
	}
	return l.startExternalKovnNode(host, bin)
}

// startExternalKovnNode runs kovn-node in external-host mode with the
// same identity and SB remote as the workers' node agents; the chassis
// name is the host name, as for workers.
func (l *Lab) startExternalKovnNode(host, bin string) error {
	kubeconfig, err := l.writeKovnNodeKubeconfig(host)
	if err != nil {
		return err
	}
	argv := append([]string{bin, "--external-host",
		"--node-name=" + host, "--system-id=" + host, "--kubeconfig=" + kubeconfig,
		"--ovn-remote=" + strings.Join(l.OVNRemotes("sb"), ","),
		"--encap-ip=" + l.hostIP(host), "--datapath-type=netdev", "--gateway-interface=eth0",
		"--cluster-cidr=" + ClusterCIDR, "--service-cidr=" + ServiceCIDR,
	}, l.nodeModeFlags()...)
	return l.sup.Ensure(l.nodeSpec("kovn-node", host, argv...))
}

// writeKovnNodeKubeconfig gives a host's kovn-node its own identity
// (kovn-node:HOST in group kovn:nodes), which RBAC grants kovn-node's roles
// and the admission policy confines to that host's objects.
func (l *Lab) writeKovnNodeKubeconfig(host string) (string, error) {
	b, err := l.ensurePKI()
	if err != nil {
		return "", err
	}
	kubeconfig := l.nodeDir(host, "kovn-node.kubeconfig")
	return kubeconfig, pki.WriteKubeconfig(kubeconfig, apiServerURL(), b.CACert, b.Clients[pki.UserID(KovnNodeUser(host))])
}

// externalHostEnv describes the bare-metal hosts for tests.
func (l *Lab) externalHostEnv() []string {
	ips := make([]string, 0, len(l.ExternalHostNames))
	for _, h := range l.ExternalHostNames {
		ips = append(ips, l.ExternalHostIPs[h])
	}
	return []string{
		"LAB_EXTERNAL_HOSTS=" + quoteList(l.ExternalHostNames),
		"LAB_EXTERNAL_HOST_IPS=" + quoteList(ips),
	}
}
