package lab

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kovn-io/kovn/go-controller/pkg/lab/kovnimage"
	"github.com/kovn-io/kovn/go-controller/pkg/lab/supervise"
)

// How kovn and OVN run in the lab (Config.Deploy).
const (
	// DeployProcesses: OVN central on the control-plane host, the
	// controllers there, and OVS, ovn-controller and kovn-node on every
	// host, all as supervised processes (the default: fastest to start,
	// and faults can be injected per process).
	DeployProcesses = "processes"
	// DeployManifests: the kovn image built from dist/images and imported
	// on every node; OVN central, kovn-controller and kovn-node (with its
	// OVS and ovn-controller) as pods from dist/, applied as a user would.
	DeployManifests = "manifests"
)

// kovnNamespace is where dist/manifests puts everything of kovn's.
const kovnNamespace = "kovn-system"

// ovnCentralLabel marks the nodes OVN central's StatefulSet may run on.
const ovnCentralLabel = "kovn.io/ovn-central"

// FromManifests reports whether kovn runs as pods from dist/.
func (l *Lab) FromManifests() bool { return l.Deploy == DeployManifests }

func validateDeploy(cfg Config) error {
	switch cfg.Deploy {
	case "", DeployProcesses:
		return nil
	case DeployManifests:
	default:
		return fmt.Errorf("--deploy must be %s or %s, got %q", DeployProcesses, DeployManifests, cfg.Deploy)
	}
	// What the manifests mode does not cover yet; each needs its own
	// ConfigMap values or components (docs/lab.md).
	var not []string
	if cfg.Mode != "overlay" {
		not = append(not, "--mode "+cfg.Mode)
	}
	if cfg.OVNHA {
		not = append(not, "--ovn-ha")
	}
	if cfg.ExternalHosts > 0 {
		not = append(not, "--external-hosts")
	}
	if !cfg.OVNPlainTCP {
		not = append(not, "SSL to OVN (pass --ovn-plain-tcp)")
	}
	if len(not) > 0 {
		return fmt.Errorf("--deploy %s does not support %s yet", DeployManifests, strings.Join(not, ", "))
	}
	if cfg.ManifestDir == "" {
		return fmt.Errorf("--deploy %s needs the manifests directory", DeployManifests)
	}
	return nil
}

// ovnCentralNode is the node OVN central's (standalone) pod runs on.
func (l *Lab) ovnCentralNode() string { return l.NodeNames[0] }

// ovnCentralIP is the address hosts reach OVN central at.
func (l *Lab) ovnCentralIP() string {
	if l.FromManifests() {
		return l.NodeIPs[l.ovnCentralNode()]
	}
	return ControlPlaneIP
}

// distDir is the directory of dist/kustomization.yaml.
func (l *Lab) distDir() string { return filepath.Dir(l.ManifestDir) }

// ovnPortalSpecs make OVN central's pod reachable from the root namespace
// at the same unix sockets the processes mode serves (OVNUnixRemote), so
// ovn-nbctl, kovnctl and the tests need not know how OVN runs.
func (l *Lab) ovnPortalSpecs() []supervise.Spec {
	var specs []supervise.Spec
	for _, db := range []string{"nb", "sb"} {
		for _, m := range l.OVNMembers(db) {
			specs = append(specs, supervise.Spec{Name: "portal:" + m.Name, Argv: []string{
				l.selfBin(), "portal", "--listen=unix:" + l.ovnFile(m, "sock"), "--netns=" + NetNSPath("cp"),
				"--target=" + net.JoinHostPort(l.ovnCentralIP(), strconv.Itoa(m.ClientPort)),
			}})
		}
	}
	return specs
}

// buildKovnImage builds dist/images' image (cached by kovnimage) and
// records it with the lab's other images, so every node imports it.
func (l *Lab) buildKovnImage() error {
	res, err := kovnimage.Build(kovnimage.Config{
		CheckoutDir: filepath.Dir(l.distDir()), CacheDir: l.CacheDir, Log: os.Stderr,
	})
	if err != nil {
		return fmt.Errorf("kovn image: %w", err)
	}
	l.Images["kovn"] = res.Ref
	return nil
}

// imageTarballOf is where an image of the lab's is: the kovn image has
// its own place in the cache (kovnimage), the others are built here.
func (l *Lab) imageTarballOf(role string) string {
	if role == "kovn" {
		return kovnimage.Tarball(l.CacheDir)
	}
	return l.imageTarball(role)
}

// kovnKustomization is the lab's overlay on dist/: the image just built
// and kovn-config for the lab's addresses. Everything else is dist/ as a
// user applies it.
func (l *Lab) kovnKustomization(overlayDir string) (map[string]string, error) {
	ref := l.Images["kovn"]
	i := strings.LastIndex(ref, ":")
	if i < 0 {
		return nil, fmt.Errorf("kovn image reference %q has no tag", ref)
	}
	base, err := filepath.Rel(overlayDir, l.distDir())
	if err != nil {
		return nil, err
	}
	central := l.ovnCentralIP()
	subnetLength := l.HostSubnetLength
	if subnetLength == 0 {
		subnetLength = 24
	}
	kustomization := fmt.Sprintf(`# Written by kovn-lab up --deploy manifests: dist/ with the lab's image
# and addresses.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- %s
images:
- name: ghcr.io/kovn-io/kovn
  newName: %s
  newTag: %s
patches:
- path: config.yaml
`, base, ref[:i], ref[i+1:])
	config := fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata:
  name: kovn-config
  namespace: %[1]s
data:
  api-server-host: %[2]q
  api-server-port: "%[3]d"
  ovn-central-members: %[4]q
  controller.yaml: |
    nb-address: [tcp:%[4]s:%[5]d]
    cluster-cidr: [%[6]s]
    host-subnet-length: %[8]d
    service-cidr: [%[7]s]
    mtu: 1400
  node.yaml: |
    ovn-remote: tcp:%[4]s:%[9]d
    # No kernel module here: OVS's userspace datapath.
    datapath-type: netdev
    gateway-interface: eth0
    cluster-cidr: [%[6]s]
    service-cidr: [%[7]s]
    mtu: 1400
`, kovnNamespace, ControlPlaneIP, APIServerPort, central, NBPort, ClusterCIDR, ServiceCIDR, subnetLength, SBPort)
	return map[string]string{"kustomization.yaml": kustomization, "config.yaml": config}, nil
}

// deployKovn applies the lab's overlay of dist/ (kubectl apply -k), the
// way docs/install.md tells a user to.
func (l *Lab) deployKovn(ctx context.Context) error {
	dir := l.path("deploy")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files, err := l.kovnKustomization(dir)
	if err != nil {
		return err
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	if err := l.applyCRDs(); err != nil {
		return err
	}
	_, err = run(l.KubectlPath(), "--kubeconfig="+l.KubeconfigPath(), "apply", "-k", dir)
	return err
}

// waitDeployed waits until OVN central, both controller replicas and
// kovn-node on every node are ready and every node is Ready (its CNI
// installed). The error names the pods that are not, and why.
func (l *Lab) waitDeployed(ctx context.Context, timeout time.Duration) error {
	cs, err := l.Client()
	if err != nil {
		return err
	}
	return waitFor("kovn from dist/", timeout, func() error {
		if err := workloadsReady(ctx, cs, len(l.NodeNames)); err != nil {
			if why := podProblems(ctx, cs, kovnNamespace); why != "" {
				return fmt.Errorf("%w; %s", err, why)
			}
			return err
		}
		nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for _, n := range nodes.Items {
			if !nodeReady(&n) {
				return fmt.Errorf("node %s is not Ready", n.Name)
			}
		}
		return nil
	})
}

func workloadsReady(ctx context.Context, cs kubernetes.Interface, nodes int) error {
	sts, err := cs.AppsV1().StatefulSets(kovnNamespace).Get(ctx, "ovn-central", metav1.GetOptions{})
	if err != nil {
		return err
	}
	if want := replicas(sts.Spec.Replicas); sts.Status.ReadyReplicas < want {
		return fmt.Errorf("StatefulSet ovn-central: %d of %d ready", sts.Status.ReadyReplicas, want)
	}
	if err := deploymentReady(ctx, cs, kovnNamespace, "kovn-controller"); err != nil {
		return err
	}
	ds, err := cs.AppsV1().DaemonSets(kovnNamespace).Get(ctx, "kovn-node", metav1.GetOptions{})
	if err != nil {
		return err
	}
	if !daemonSetReady(ds, nodes) {
		return fmt.Errorf("DaemonSet kovn-node: %d of %d ready", ds.Status.NumberReady, nodes)
	}
	return nil
}

// deploymentReady is nil once a Deployment's current spec is rolled out
// and every replica is ready and available.
func deploymentReady(ctx context.Context, cs kubernetes.Interface, ns, name string) error {
	d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	want := replicas(d.Spec.Replicas)
	if d.Status.ObservedGeneration < d.Generation || d.Status.UpdatedReplicas != want ||
		d.Status.ReadyReplicas != want || d.Status.AvailableReplicas < want {
		return fmt.Errorf("Deployment %s/%s: %d of %d ready, %d available", ns, name, d.Status.ReadyReplicas, want, d.Status.AvailableReplicas)
	}
	return nil
}

func replicas(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

func daemonSetReady(ds *appsv1.DaemonSet, nodes int) bool {
	return int(ds.Status.DesiredNumberScheduled) == nodes && int(ds.Status.NumberReady) == nodes
}

// podProblems describes a namespace's pods that are not ready: their
// containers' waiting reasons and last exits, which say more than a ready
// count.
func podProblems(ctx context.Context, cs kubernetes.Interface, namespace string) string {
	pods, err := cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return ""
	}
	var out []string
	for _, p := range pods.Items {
		for _, c := range p.Status.ContainerStatuses {
			if c.Ready {
				continue
			}
			what := "not ready"
			switch {
			case c.State.Waiting != nil:
				what = c.State.Waiting.Reason + ": " + c.State.Waiting.Message
			case c.State.Terminated != nil:
				what = fmt.Sprintf("exited %d (%s)", c.State.Terminated.ExitCode, c.State.Terminated.Reason)
			}
			if t := c.LastTerminationState.Terminated; t != nil {
				what += fmt.Sprintf(", last exit %d", t.ExitCode)
			}
			out = append(out, fmt.Sprintf("%s/%s on %s: %s", p.Name, c.Name, p.Spec.NodeName, strings.TrimSpace(what)))
		}
		if p.Spec.NodeName == "" {
			out = append(out, p.Name+": not scheduled")
		}
	}
	sort.Strings(out)
	return strings.Join(out, "; ")
}
