// Package lab runs a whole Kubernetes + OVN cluster on one Linux machine, as
// root, without containers: a control-plane host, N worker hosts and an
// external host, each a network namespace on a lab-private underlay bridge,
// and optionally bare-metal hosts (OVN chassis that are not Kubernetes
// nodes). Worker and bare-metal hosts also get a private mount and UTS
// namespace so that kubelet, containerd and OVS see the standard paths of a
// real node.
//
// Nothing is configured in the machine's root network namespace; the only
// thing the lab exposes there is a loopback listener that forwards to the API
// server, so that kubectl and tests can run from the root namespace.
package lab

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/kovn-io/kovn/go-controller/pkg/lab/supervise"
)

// Config is what `kovn-lab up` is asked for.
type Config struct {
	StateDir   string // everything the lab writes lives below it
	CacheDir   string // build outputs kept across labs (Kubernetes binaries, images)
	BinDir     string // where kovn's own binaries are (make build puts them in _output/bin)
	Nodes      int
	Mode       string // overlay or underlay
	K8sVersion string // e.g. v1.34.2, matching the client-go we are built with
	PortalAddr string // loopback address in the root namespace that forwards to the API server
	// ManifestDir holds kovn's manifests (dist/manifests); RBAC comes from there.
	ManifestDir string
	// CRDDir holds kovn's CustomResourceDefinitions (dist/crds); "" applies none.
	CRDDir string `json:",omitempty"`
	// ExternalHosts is how many bare-metal hosts (bm1…) run a chassis and
	// kovn-node --external-host, without kubelet.
	ExternalHosts int `json:",omitempty"`
	// UnderlayVLAN tags the pod network in underlay mode; 0 is untagged.
	UnderlayVLAN int `json:",omitempty"`
	// HostSubnetLength is the controller's node subnet prefix length; 0
	// keeps its default (/24). The W1 workload puts 334 pods on a node.
	HostSubnetLength int
	// OVNHA runs NB and SB as 3-member RAFT clusters instead of one
	// ovsdb-server each.
	OVNHA bool `json:",omitempty"`
	// OVNPlainTCP connects hosts to OVN central over plain TCP; the
	// default is SSL with certificates from the lab's OVN CA.
	OVNPlainTCP bool `json:",omitempty"`
	// Deploy is how kovn and OVN run: DeployProcesses (""), supervised
	// processes on the hosts; DeployManifests, pods from dist/ (deploy.go).
	Deploy string `json:",omitempty"`
	// ClusterDNS deploys CoreDNS as the cluster DNS add-on (addons.go).
	ClusterDNS bool `json:",omitempty"`
	// E2EImages builds e2e.test and imports the upstream images its
	// sig-network specs run, under the references it asks for.
	E2EImages bool `json:",omitempty"`
}

// Underlay addressing. The lab owns these ranges only inside its own
// namespaces; nothing of it is routed from the root namespace.
const (
	UnderlayCIDR    = "172.18.0.0/24"
	UnderlayGateway = "172.18.0.1"
	ControlPlaneIP  = "172.18.0.2"
	ExternalCIDR    = "172.19.0.0/24"
	ExternalGateway = "172.19.0.1"
	ExternalIP      = "172.19.0.10"
	ServiceCIDR     = "10.96.0.0/16"
	ClusterDNSIP    = "10.96.0.10"
	ClusterCIDR     = "10.128.0.0/14"
	APIServerPort   = 6443
	NBPort          = 6641
	SBPort          = 6642

	nsPrefix     = "kovnlab-"
	underlayNS   = nsPrefix + "ul"
	controlNS    = nsPrefix + "cp"
	externalNS   = nsPrefix + "ext"
	underlayBr   = "br-ul"
	prefixLength = 24
)

// State is what `up` made; later commands read it instead of guessing.
type State struct {
	Config
	NodeNames []string          `json:"nodeNames"`
	NodeIPs   map[string]string `json:"nodeIPs"`
	Images    map[string]string `json:"images"` // role (pause, test-server, agnhost) → reference

	// Bare-metal hosts: chassis only, never Kubernetes Nodes.
	ExternalHostNames []string          `json:"externalHostNames,omitempty"`
	ExternalHostIPs   map[string]string `json:"externalHostIPs,omitempty"`
}

// Lab is a handle on one lab's state directory.
type Lab struct {
	State
	sup *supervise.Supervisor
}

// NodeName is the Kubernetes name of worker i (1-based).
func NodeName(i int) string { return fmt.Sprintf("node%d", i) }

// NodeIP is the underlay address of worker i (1-based).
func NodeIP(i int) string { return fmt.Sprintf("172.18.0.%d", 10+i) }

// New prepares a handle for a lab that is about to be brought up.
func New(cfg Config) (*Lab, error) {
	if err := validate(cfg); err != nil {
		return nil, err
	}
	st := State{Config: cfg, NodeIPs: map[string]string{}, Images: map[string]string{}}
	for i := 1; i <= cfg.Nodes; i++ {
		st.NodeNames = append(st.NodeNames, NodeName(i))
		st.NodeIPs[NodeName(i)] = NodeIP(i)
	}
	if cfg.ExternalHosts > 0 {
		st.ExternalHostIPs = map[string]string{}
	}
	for i := 1; i <= cfg.ExternalHosts; i++ {
		st.ExternalHostNames = append(st.ExternalHostNames, ExternalHostName(i))
		st.ExternalHostIPs[ExternalHostName(i)] = ExternalHostIP(i)
	}
	return open(st), nil
}

// validate checks the lab's shape before anything is made or removed.
func validate(cfg Config) error {
	if cfg.Nodes < 1 || cfg.Nodes > 50 {
		return fmt.Errorf("--nodes must be between 1 and 50, got %d", cfg.Nodes)
	}
	if cfg.Mode != "overlay" && cfg.Mode != "underlay" {
		return fmt.Errorf("--mode must be overlay or underlay, got %q", cfg.Mode)
	}
	if err := validateUnderlay(cfg); err != nil {
		return err
	}
	if err := validateDeploy(cfg); err != nil {
		return err
	}
	if err := validateExternalHosts(cfg); err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(cfg.PortalAddr); err != nil {
		return fmt.Errorf("portal address %q: %w", cfg.PortalAddr, err)
	}
	return nil
}

// Load opens an existing lab.
func Load(stateDir string) (*Lab, error) {
	b, err := os.ReadFile(filepath.Join(stateDir, "lab.json"))
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("no lab in %s (run kovn-lab up)", stateDir)
		}
		return nil, err
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s/lab.json: %w", stateDir, err)
	}
	return open(st), nil
}

func open(st State) *Lab {
	return &Lab{State: st, sup: &supervise.Supervisor{
		Dir:    filepath.Join(st.StateDir, "run"),
		LogDir: filepath.Join(st.StateDir, "log"),
	}}
}

// Supervisor gives access to the lab's processes.
func (l *Lab) Supervisor() *supervise.Supervisor { return l.sup }

func (l *Lab) save() error {
	if err := os.MkdirAll(l.StateDir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(l.State, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(l.StateDir, "lab.json.tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(l.StateDir, "lab.json"))
}

// path joins below the state directory.
func (l *Lab) path(elem ...string) string {
	return filepath.Join(append([]string{l.StateDir}, elem...)...)
}

// NetNSPath of a lab host: "cp", "ext", "ul", a node or a bare-metal host name.
func NetNSPath(host string) string { return "/run/netns/" + nsPrefix + host }

// nodeDir holds one worker's (or bare-metal host's) private files.
func (l *Lab) nodeDir(node string, elem ...string) string {
	return l.path(append([]string{"nodes", node}, elem...)...)
}

// MountNSPath is the bind-mounted mount namespace of a worker or bare-metal host.
func (l *Lab) MountNSPath(node string) string { return l.path("ns", node+".mnt") }

// UTSNSPath is the bind-mounted UTS namespace of a worker or bare-metal host.
func (l *Lab) UTSNSPath(node string) string { return l.path("ns", node+".uts") }

// KubeconfigPath is the admin kubeconfig usable from the root namespace.
func (l *Lab) KubeconfigPath() string { return l.path("kubeconfig") }

// NBSocket and SBSocket are the unix sockets of the first NB and SB
// member, usable from the root namespace. In a clustered lab that member
// may be a follower: readers are fine with it, writers should use
// OVNUnixRemote, which lists every member.
func (l *Lab) NBSocket() string { return l.path("ovn", "nb.sock") }
func (l *Lab) SBSocket() string { return l.path("ovn", "sb.sock") }

// NBDBFile is the NB database file.
func (l *Lab) NBDBFile() string { return l.path("ovn", "nb.db") }

// hosts lists every host that has its own mount and UTS namespace: the
// workers, then the bare-metal hosts.
func (l *Lab) hosts() []string {
	return append(append([]string(nil), l.NodeNames...), l.ExternalHostNames...)
}

// netHosts lists every lab network namespace by its host name.
func (l *Lab) netHosts() []string {
	return append([]string{"ul", "cp", "ext"}, l.hosts()...)
}

// hostIP is the underlay address of a worker or bare-metal host.
func (l *Lab) hostIP(host string) string {
	if ip, ok := l.NodeIPs[host]; ok {
		return ip
	}
	return l.ExternalHostIPs[host]
}

// HasNode reports whether name is one of the lab's workers.
func (l *Lab) HasNode(name string) bool {
	_, ok := l.NodeIPs[name]
	return ok
}

// KubectlPath is the cached kubectl of the lab's Kubernetes version.
func (l *Lab) KubectlPath() string { return l.k8sBin("kubectl") }

// Env describes the lab as shell KEY=value lines, for tests and operators.
func (l *Lab) Env() []string {
	ips := make([]string, 0, len(l.NodeNames))
	for _, n := range l.NodeNames {
		ips = append(ips, l.NodeIPs[n])
	}
	return append([]string{
		"KUBECONFIG=" + l.KubeconfigPath(),
		"KUBECTL=" + l.KubectlPath(),
		"OVN_NB_DB=" + l.OVNUnixRemote("nb"),
		"OVN_SB_DB=" + l.OVNUnixRemote("sb"),
		"OVN_NB_DB_FILE=" + l.NBDBFile(),
		"LAB_STATE_DIR=" + l.StateDir,
		"LAB_NODES=" + quoteList(l.NodeNames),
		"LAB_NODE_IPS=" + quoteList(ips),
		"LAB_MODE=" + l.Mode,
		"LAB_K8S_VERSION=" + l.K8sVersion,
		"EXTERNAL_IP=" + ExternalIP,
		"TEST_SERVER_IMAGE=" + l.Images["test-server"],
		"AGNHOST_IMAGE=" + l.Images["agnhost"],
		"PAUSE_IMAGE=" + l.Images["pause"],
	}, append(l.externalHostEnv(), l.underlayEnv()...)...)
}

func quoteList(items []string) string {
	return "'" + strings.Join(items, " ") + "'"
}

// HasController reports whether the lab runs kovn-controller.
func (l *Lab) HasController() bool {
	if l.FromManifests() {
		return true
	}
	_, err := l.sup.Spec("kovn-controller:0")
	return err == nil
}

// HasCNI reports whether the lab runs kovn's own node agent (and so its
// CNI) on the hosts.
func (l *Lab) HasCNI() bool {
	if l.FromManifests() {
		return true
	}
	_, err := l.sup.Spec("kovn-node:" + l.NodeNames[0])
	return err == nil
}
