package lab

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/kovn-io/kovn/go-controller/pkg/lab/pki"
	"github.com/kovn-io/kovn/go-controller/pkg/lab/supervise"
)

// inNode runs a one-shot command inside a worker or bare-metal host (its
// network, mount and UTS namespaces), the way an operator logged in would.
func (l *Lab) inNode(node string, argv ...string) (string, error) {
	return run(append(l.nodeEnter(node), argv...)...)
}

func (l *Lab) nodeEnter(node string) []string {
	return []string{"nsenter", "--net=" + NetNSPath(node), "--mount=" + l.MountNSPath(node), "--uts=" + l.UTSNSPath(node), "--"}
}

// nodeSpec is a daemon that runs inside a worker or bare-metal host.
func (l *Lab) nodeSpec(name, node string, argv ...string) supervise.Spec {
	return supervise.Spec{Name: name + ":" + node, NetNS: NetNSPath(node), MountNS: l.MountNSPath(node), UTSNS: l.UTSNSPath(node), Argv: argv}
}

// hostFile is the machine path of a standard path inside a worker, e.g.
// /run/containerd/containerd.sock of node1.
func (l *Lab) hostFile(node, stdDir, rel string) string {
	return l.nodeDir(node, "root", bindDirName(stdDir), rel)
}

// bringUpNode makes one worker: its filesystem view, OVS with br-ex holding
// the host address, ovn-controller, containerd with the lab images, kubelet.
func (l *Lab) bringUpNode(node string, b *pki.Bundle) error {
	var labels []string
	if l.FromManifests() {
		// kovn-node's DaemonSet brings OVS and ovn-controller.
		if node == l.ovnCentralNode() {
			labels = append(labels, ovnCentralLabel+"=")
		}
	} else if err := l.setupOVS(node); err != nil {
		return fmt.Errorf("%s: OVS: %w", node, err)
	}
	if err := l.setupContainerd(node); err != nil {
		return fmt.Errorf("%s: containerd: %w", node, err)
	}
	if err := l.writeKubeletConfig(node, b); err != nil {
		return err
	}
	argv := []string{l.k8sBin("kubelet"),
		"--config=" + l.nodeDir(node, "kubelet.yaml"), "--kubeconfig=" + l.nodeDir(node, "kubelet.kubeconfig"),
		"--hostname-override=" + node, "--node-ip=" + l.NodeIPs[node], "--v=1"}
	if len(labels) > 0 {
		argv = append(argv, "--node-labels="+strings.Join(labels, ","))
	}
	return l.sup.Ensure(l.nodeSpec("kubelet", node, argv...))
}

// setupOVS starts the node's OVS and ovn-controller, then kovn-node; until
// kovn-node exists to do it, the lab configures the chassis itself.
func (l *Lab) setupOVS(node string) error {
	if err := l.startOVS(node); err != nil {
		return err
	}
	if bin := l.kovnBin("kovn-node"); bin != "" {
		// kovn-node owns the chassis configuration and the shared gateway.
		return l.startKovnNode(node, bin)
	}
	return l.configureChassis(node)
}

// startOVS starts a host's ovsdb-server, ovs-vswitchd and ovn-controller.
func (l *Lab) startOVS(host string) error {
	confDB := l.hostFile(host, "/etc/openvswitch", "conf.db")
	if _, err := os.Stat(confDB); os.IsNotExist(err) {
		if _, err := run("ovsdb-tool", "create", confDB, "/usr/share/openvswitch/vswitch.ovsschema"); err != nil {
			return err
		}
	}
	logOpts := []string{"-vconsole:info", "-vsyslog:off", "-vfile:off"}
	if err := l.sup.Ensure(l.nodeSpec("ovsdb-server", host, append([]string{"ovsdb-server", "/etc/openvswitch/conf.db",
		"--remote=punix:/run/openvswitch/db.sock", "--pidfile"}, logOpts...)...)); err != nil {
		return err
	}
	if err := waitFor("ovsdb-server on "+host, 20*time.Second, func() error {
		_, err := l.inNode(host, "ovs-vsctl", "--timeout=2", "--no-wait", "init")
		return err
	}); err != nil {
		return err
	}
	if err := l.sup.Ensure(l.nodeSpec("ovs-vswitchd", host, append([]string{"ovs-vswitchd",
		"unix:/run/openvswitch/db.sock", "--pidfile"}, logOpts...)...)); err != nil {
		return err
	}
	ssl, err := l.ovnSSLFlags(ovnControllerIdentity(host))
	if err != nil {
		return err
	}
	return l.sup.Ensure(l.nodeSpec("ovn-controller", host, append(append([]string{"ovn-controller",
		"unix:/run/openvswitch/db.sock", "--pidfile"}, logOpts...), ssl...)...))
}

// configureChassis does by hand what kovn-node does on a host when it is
// not built: the chassis settings, and the host address moved onto br-ex
// as the shared gateway needs.
func (l *Lab) configureChassis(host string) error {
	ip := l.hostIP(host)
	mac, err := linkMAC(host, "eth0")
	if err != nil {
		return err
	}
	if _, err := l.inNode(host, "ovs-vsctl", "--timeout=20",
		"set", "Open_vSwitch", ".",
		"external_ids:system-id="+host, "external_ids:hostname="+host,
		"external_ids:ovn-remote="+strings.Join(l.OVNRemotes("sb"), ","),
		"external_ids:ovn-encap-type=geneve", "external_ids:ovn-encap-ip="+ip,
		"external_ids:ovn-bridge-mappings=physnet:br-ex", "external_ids:ovn-bridge-datapath-type=netdev",
		"--", "--may-exist", "add-br", "br-ex",
		"--", "set", "Bridge", "br-ex", "datapath_type=netdev", "other_config:hwaddr="+mac,
		"--", "--may-exist", "add-port", "br-ex", "eth0"); err != nil {
		return err
	}
	// Geneve in the userspace datapath is routed by OVS itself, which only
	// knows addresses that live on an OVS bridge: the host IP must be on br-ex.
	for _, s := range [][]string{
		{"ip", "addr", "flush", "dev", "eth0"},
		{"ip", "addr", "replace", ip + "/24", "dev", "br-ex"},
		{"ip", "link", "set", "br-ex", "up"},
		{"ip", "route", "replace", "default", "via", UnderlayGateway, "dev", "br-ex"},
	} {
		if _, err := inNet(host, s...); err != nil {
			return err
		}
	}
	return nil
}

const containerdConfig = `version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "/run/containerd/containerd.sock"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  # runc cannot set a negative oom_score_adj without CAP_SYS_RESOURCE.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/opt/cni/bin"
    conf_dir = "/etc/cni/net.d"
`

// setupContainerd starts containerd, installs the loopback CNI plugin that
// its CRI needs for every sandbox, and imports the lab's images.
func (l *Lab) setupContainerd(node string) error {
	cfg := l.nodeDir(node, "containerd.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(containerdConfig, l.Images["pause"])), 0o644); err != nil {
		return err
	}
	// What a node's OS provides: the runtime's loopback plugin, and portmap
	// for hostPort (kovn's conflist chains it).
	for _, plugin := range []string{"loopback", "portmap"} {
		if err := copyFile("/usr/lib/cni/"+plugin, l.hostFile(node, "/opt/cni/bin", plugin), 0o755); err != nil {
			return err
		}
	}
	if err := l.sup.Ensure(l.nodeSpec("containerd", node, "containerd", "--config="+cfg)); err != nil {
		return err
	}
	ctr := []string{"ctr", "--address=/run/containerd/containerd.sock", "--namespace=k8s.io"}
	if err := waitFor("containerd on "+node, 30*time.Second, func() error {
		_, err := l.inNode(node, append(ctr, "version")...)
		return err
	}); err != nil {
		return err
	}
	for _, role := range sortedKeys(l.Images) {
		if _, err := l.inNode(node, append(ctr, "images", "import", l.imageTarballOf(role))...); err != nil {
			return fmt.Errorf("import %s: %w", role, err)
		}
	}
	return nil
}

const kubeletConfig = `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %[1]s
port: 10250
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %[2]s}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
cgroupDriver: cgroupfs
cgroupRoot: %[3]s
cgroupsPerQOS: true
failSwapOn: false
# Images cannot be pulled again here: never collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%%", imagefs.available: "1%%", nodefs.inodesFree: "1%%"}
# No CAP_SYS_RESOURCE: a negative oom_score_adj cannot be set.
oomScoreAdj: 0
clusterDNS: [%[4]s]
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
serializeImagePulls: false
rotateCertificates: false
serverTLSBootstrap: false
maxPods: 110
`

func (l *Lab) writeKubeletConfig(node string, b *pki.Bundle) error {
	cfg := fmt.Sprintf(kubeletConfig, l.NodeIPs[node], b.CACert, CgroupRoot(node), ClusterDNSIP)
	return os.WriteFile(l.nodeDir(node, "kubelet.yaml"), []byte(cfg), 0o644)
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// giveUp wraps an error that more waiting cannot cure, such as a daemon
// that exited: waitFor returns it at once instead of at the timeout.
type giveUp struct{ error }

func (g giveUp) Unwrap() error { return g.error }

// waitFor polls check until it succeeds or the timeout passes, returning
// the last error so the reason is not lost.
func waitFor(what string, timeout time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		var g giveUp
		if errors.As(err, &g) {
			return fmt.Errorf("%s: %w", what, g.error)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s: %w", what, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// linkMAC reads a link's MAC inside a lab host. /sys cannot be used: it
// shows the devices of the namespace that mounted it, not of the caller.
func linkMAC(host, dev string) (string, error) {
	out, err := run("ip", "-n", nsPrefix+host, "-br", "link", "show", "dev", dev)
	if err != nil {
		return "", err
	}
	f := strings.Fields(out)
	if len(f) < 3 {
		return "", fmt.Errorf("unexpected ip output %q", out)
	}
	return f[2], nil
}
