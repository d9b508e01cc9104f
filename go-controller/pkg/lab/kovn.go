package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kovn-io/kovn/go-controller/pkg/lab/pki"
	"github.com/kovn-io/kovn/go-controller/pkg/lab/supervise"
)

// ControllerReplicas is how many kovn-controller processes the lab runs:
// two, as the Deployment does, so leader election is always exercised.
const ControllerReplicas = 2

// kovnBin is one of kovn's own binaries, or "" when it was not built.
func (l *Lab) kovnBin(name string) string {
	p := filepath.Join(l.BinDir, name)
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

// applyManifests applies kovn's RBAC and namespace from dist/manifests and
// its CRDs from dist/crds, the same files a user applies, so the lab runs
// kovn with its real privileges and resource types.
func (l *Lab) applyManifests(ctx context.Context) error {
	kubectl := []string{l.KubectlPath(), "--kubeconfig=" + l.KubeconfigPath()}
	if l.ManifestDir != "" {
		for _, f := range []string{"00-namespace.yaml", "10-rbac-controller.yaml", "11-rbac-node.yaml", "12-node-scope.yaml"} {
			if _, err := run(append(kubectl, "apply", "-f", filepath.Join(l.ManifestDir, f))...); err != nil {
				return err
			}
		}
	}
	return l.applyCRDs()
}

// applyCRDs applies dist/crds and waits until they are Established: the
// controllers' informers fail to start on a type the API server does not
// serve yet, and one apply of a CRD and its first objects fails.
func (l *Lab) applyCRDs() error {
	if l.CRDDir == "" {
		return nil
	}
	kubectl := []string{l.KubectlPath(), "--kubeconfig=" + l.KubeconfigPath()}
	if _, err := run(append(kubectl, "apply", "-f", l.CRDDir)...); err != nil {
		return err
	}
	_, err := run(append(kubectl, "wait", "--for=condition=established", "--timeout=30s", "-f", l.CRDDir)...)
	return err
}

// kovnControllerSpecs are the controller replicas, with the flags a user
// would pass in production (every NB member, over SSL unless the lab was
// asked for plain TCP; a client certificate to the API).
func (l *Lab) kovnControllerSpecs(b *pki.Bundle) ([]supervise.Spec, error) {
	bin := l.kovnBin("kovn-controller")
	if bin == "" {
		return nil, nil
	}
	kubeconfig := l.path("pki", "kovn-controller.kubeconfig")
	if err := pki.WriteKubeconfig(kubeconfig, apiServerURL(), b.CACert, b.Clients[pki.UserID("kovn-controller")]); err != nil {
		return nil, err
	}
	var extra []string
	if l.HostSubnetLength != 0 {
		extra = append(extra, "--host-subnet-length="+strconv.Itoa(l.HostSubnetLength))
	}
	extra = append(extra, l.underlayControllerFlags()...)
	nbFlags, err := l.controllerNBFlags()
	if err != nil {
		return nil, err
	}
	var specs []supervise.Spec
	for i := 0; i < ControllerReplicas; i++ {
		specs = append(specs, supervise.Spec{
			Name: "kovn-controller:" + strconv.Itoa(i), NetNS: NetNSPath("cp"),
			Argv: append([]string{bin,
				"--kubeconfig=" + kubeconfig,
				"--cluster-cidr=" + ClusterCIDR, "--service-cidr=" + ServiceCIDR,
				"--mode=" + l.Mode,
				"--identity=controller-" + strconv.Itoa(i),
				"--metrics-address=127.0.0.1:" + strconv.Itoa(ControllerMetricsPort(i)),
			}, append(nbFlags, extra...)...),
		})
	}
	return specs, nil
}

// DefaultControllerMetricsPort is kovn-controller's own default, which
// the Deployment in dist/ keeps (a pod per node's network).
const DefaultControllerMetricsPort = 9476

// ControllerMetricsPort is where replica i serves /metrics inside the
// control-plane host: the processes share its network.
func ControllerMetricsPort(i int) int { return DefaultControllerMetricsPort + i }

// startKovn starts kovn's own components when they have been built.
func (l *Lab) startKovn(ctx context.Context, b *pki.Bundle) error {
	if l.FromManifests() {
		// Pods wait for nodes to be scheduled on; waitDeployed follows.
		return l.deployKovn(ctx)
	}
	if err := l.applyManifests(ctx); err != nil {
		return fmt.Errorf("manifests: %w", err)
	}
	specs, err := l.kovnControllerSpecs(b)
	if err != nil {
		return err
	}
	for _, s := range specs {
		if err := l.sup.Ensure(s); err != nil {
			return err
		}
	}
	return nil
}

// startKovnNode runs the node agent on a host with production flags; it
// configures the chassis, moves the host IP onto br-ex and installs CNI.
func (l *Lab) startKovnNode(node, bin string) error {
	kubeconfig, err := l.writeKovnNodeKubeconfig(node)
	if err != nil {
		return err
	}
	argv := append([]string{bin,
		"--node-name=" + node, "--kubeconfig=" + kubeconfig,
		"--ovn-remote=" + strings.Join(l.OVNRemotes("sb"), ","),
		"--encap-ip=" + l.NodeIPs[node], "--datapath-type=netdev", "--gateway-interface=eth0",
		"--cluster-cidr=" + ClusterCIDR, "--service-cidr=" + ServiceCIDR,
		"--cni-plugin=" + filepath.Join(l.BinDir, "kovn-cni"),
	}, l.nodeModeFlags()...)
	return l.sup.Ensure(l.nodeSpec("kovn-node", node, argv...))
}
