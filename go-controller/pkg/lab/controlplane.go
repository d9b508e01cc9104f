package lab

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kovn-io/kovn/go-controller/pkg/lab/pki"
	"github.com/kovn-io/kovn/go-controller/pkg/lab/supervise"
)

// k8sBin is a Kubernetes binary from the build cache.
func (l *Lab) k8sBin(name string) string {
	return l.CacheDir + "/k8s/" + l.K8sVersion + "/bin/" + name
}

// apiServerURL is how hosts inside the lab reach the API server.
func apiServerURL() string {
	return "https://" + net.JoinHostPort(ControlPlaneIP, strconv.Itoa(APIServerPort))
}

// ensurePKI writes certificates and one kubeconfig per identity.
func (l *Lab) ensurePKI() (*pki.Bundle, error) {
	b, err := pki.Ensure(pki.Request{
		Dir:            l.path("pki"),
		APIServerIPs:   []net.IP{net.ParseIP(ControlPlaneIP), net.ParseIP("10.96.0.1"), net.ParseIP("127.0.0.1")},
		APIServerNames: []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "localhost"},
		Nodes:          l.NodeNames,
		ExtraUsers:     l.kovnUsers(),
	})
	if err != nil {
		return nil, fmt.Errorf("certificates: %w", err)
	}
	kubeconfigs := map[string]string{
		pki.Admin:             "admin.kubeconfig",
		pki.ControllerManager: "controller-manager.kubeconfig",
		pki.Scheduler:         "scheduler.kubeconfig",
	}
	for id, file := range kubeconfigs {
		if err := pki.WriteKubeconfig(l.path("pki", file), apiServerURL(), b.CACert, b.Clients[id]); err != nil {
			return nil, err
		}
	}
	for _, n := range l.NodeNames {
		if err := pki.WriteKubeconfig(l.nodeDir(n, "kubelet.kubeconfig"), apiServerURL(), b.CACert, b.Clients[pki.NodeID(n)]); err != nil {
			return nil, err
		}
	}
	// The root namespace cannot route to the lab; it goes through the portal.
	if err := pki.WriteKubeconfig(l.KubeconfigPath(), "https://"+l.PortalAddr, b.CACert, b.Clients[pki.Admin]); err != nil {
		return nil, err
	}
	return b, nil
}

// kovnUsers are the API identities of kovn's components in the lab: the
// controller, and one kovn-node identity per host, named as the
// kovn-node-scope admission policy expects (dist/manifests) so that a
// node agent can only touch its own Node and heartbeat Lease.
func (l *Lab) kovnUsers() []pki.User {
	users := []pki.User{{Name: "kovn-controller"}}
	for _, h := range l.hosts() {
		users = append(users, pki.User{Name: KovnNodeUser(h), Groups: []string{KovnNodesGroup}})
	}
	return users
}

// KovnNodesGroup is the group of every host's kovn-node identity, to which
// the RBAC manifests bind kovn-node's roles.
const KovnNodesGroup = "kovn:nodes"

// KovnNodeUser is the API user of host's kovn-node.
func KovnNodeUser(host string) string { return "kovn-node:" + host }

// controlPlaneSpecs are the processes of the control-plane host, in start order.
func (l *Lab) controlPlaneSpecs(b *pki.Bundle) []supervise.Spec {
	cp := NetNSPath("cp")
	pkiPath := func(f string) string { return l.path("pki", f) }
	etcd := supervise.Spec{Name: "etcd", NetNS: cp, Argv: []string{
		"etcd", "--name=cp", "--data-dir=" + l.path("cp", "etcd"),
		"--listen-client-urls=http://127.0.0.1:2379", "--advertise-client-urls=http://127.0.0.1:2379",
		"--listen-peer-urls=http://127.0.0.1:2380", "--initial-advertise-peer-urls=http://127.0.0.1:2380",
		"--initial-cluster=cp=http://127.0.0.1:2380", "--quota-backend-bytes=4294967296",
		"--snapshot-count=10000", "--log-level=warn",
	}}
	apiserver := supervise.Spec{Name: "apiserver", NetNS: cp, Argv: []string{
		l.k8sBin("kube-apiserver"),
		"--etcd-servers=http://127.0.0.1:2379",
		"--bind-address=0.0.0.0", "--secure-port=" + strconv.Itoa(APIServerPort), "--advertise-address=" + ControlPlaneIP,
		"--service-cluster-ip-range=" + ServiceCIDR, "--service-node-port-range=30000-32767",
		"--client-ca-file=" + b.CACert, "--tls-cert-file=" + b.APIServerCert, "--tls-private-key-file=" + b.APIServerKey,
		"--kubelet-client-certificate=" + b.Clients[pki.APIServerKubeletClient].Cert,
		"--kubelet-client-key=" + b.Clients[pki.APIServerKubeletClient].Key,
		"--kubelet-preferred-address-types=InternalIP,Hostname",
		"--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + b.ServiceAccountPub, "--service-account-signing-key-file=" + b.ServiceAccountKey,
		"--allow-privileged=true", "--profiling=false", "--v=1",
	}}
	kcm := supervise.Spec{Name: "controller-manager", NetNS: cp, Argv: []string{
		l.k8sBin("kube-controller-manager"),
		"--kubeconfig=" + pkiPath("controller-manager.kubeconfig"),
		"--authentication-kubeconfig=" + pkiPath("controller-manager.kubeconfig"),
		"--authorization-kubeconfig=" + pkiPath("controller-manager.kubeconfig"),
		"--bind-address=127.0.0.1", "--leader-elect=false", "--cluster-name=kovn-lab",
		// kovn owns node subnets; the node IPAM controller must stay off.
		"--allocate-node-cidrs=false",
		"--service-account-private-key-file=" + b.ServiceAccountKey, "--root-ca-file=" + b.CACert,
		"--use-service-account-credentials=true", "--v=1",
	}}
	scheduler := supervise.Spec{Name: "scheduler", NetNS: cp, Argv: []string{
		l.k8sBin("kube-scheduler"),
		"--kubeconfig=" + pkiPath("scheduler.kubeconfig"),
		"--authentication-kubeconfig=" + pkiPath("scheduler.kubeconfig"),
		"--authorization-kubeconfig=" + pkiPath("scheduler.kubeconfig"),
		"--bind-address=127.0.0.1", "--leader-elect=false", "--v=1",
	}}
	portal := supervise.Spec{Name: "portal", Argv: []string{
		l.selfBin(), "portal", "--listen=" + l.PortalAddr, "--netns=" + cp,
		"--target=" + net.JoinHostPort(ControlPlaneIP, strconv.Itoa(APIServerPort)),
	}}
	return []supervise.Spec{etcd, apiserver, portal, kcm, scheduler}
}

// externalSpecs are the outside world's processes: the same test server
// pods run, so a probe from a pod to the outside says what source address
// left the cluster.
func (l *Lab) externalSpecs() []supervise.Spec {
	return []supervise.Spec{{Name: "test-server:external", NetNS: NetNSPath("ext"), Argv: []string{
		filepath.Join(l.BinDir, "kovn-test-server"), "--name=external", "--node=external",
	}}}
}

// ovsEnv points every OVS/OVN run, log and db directory at dir, so that no
// lab daemon touches the machine's own /var/run/openvswitch or /var/run/ovn.
func ovsEnv(dir string) []string {
	var env []string
	for _, k := range []string{"OVS_RUNDIR", "OVS_LOGDIR", "OVS_DBDIR", "OVN_RUNDIR", "OVN_LOGDIR", "OVN_DBDIR"} {
		env = append(env, k+"="+dir)
	}
	return env
}

// selfBin is the kovn-lab executable, for components it runs itself.
func (l *Lab) selfBin() string {
	if p, err := os.Executable(); err == nil {
		return p
	}
	return "kovn-lab"
}

// componentHost tells which lab host a component runs on, for status.
func componentHost(spec supervise.Spec) string {
	if spec.NetNS == "" {
		return "root"
	}
	return strings.TrimPrefix(spec.NetNS, "/run/netns/"+nsPrefix)
}
