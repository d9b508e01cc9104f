package lab

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kovn-io/kovn/go-controller/pkg/lab/k8sbuild"
	"github.com/kovn-io/kovn/go-controller/pkg/lab/supervise"
)

// UpOptions are the parts of `up` that are not the lab's shape.
type UpOptions struct {
	SkipDeps bool
	Out      io.Writer
}

// Up brings the lab up: a new one from nothing, or, when the state says
// it exists, whichever of its processes are not running.
func Up(ctx context.Context, cfg Config, opts UpOptions) (*Lab, error) {
	out := opts.Out
	// Before anything else: a mistyped flag must not tear down a lab that
	// runs (the clean-up below removes whatever lab namespaces it finds).
	if err := validate(cfg); err != nil {
		return nil, err
	}
	if !opts.SkipDeps {
		if err := InstallPackages(Packages(), out); err != nil {
			return nil, err
		}
	}
	if _, err := k8sbuild.Ensure(cfg.CacheDir, cfg.K8sVersion, out); err != nil {
		return nil, err
	}
	if existing, err := Load(cfg.StateDir); err == nil && existing.intact() {
		fmt.Fprintln(out, "lab exists: starting what is not running")
		if err := existing.startControlPlane(ctx); err != nil {
			return existing, err
		}
		return existing, existing.startStopped(ctx)
	}
	if _, err := os.Stat(cfg.StateDir); err == nil || len(labNetNamespaces()) > 0 {
		fmt.Fprintln(out, "removing what an earlier lab left behind")
		if err := Down(cfg.StateDir, out); err != nil {
			return nil, err
		}
	}
	l, err := New(cfg)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	step := func(what string, f func() error) error {
		t := time.Now()
		if err := f(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		fmt.Fprintf(out, "  %-28s %6.1fs\n", what, time.Since(t).Seconds())
		return nil
	}
	for _, h := range l.hosts() {
		if err := os.MkdirAll(l.nodeDir(h), 0o755); err != nil {
			return nil, err
		}
	}
	// Save first: from here on `down` can find everything by the state.
	if err := l.save(); err != nil {
		return nil, err
	}
	if err := step("network", l.setupNetwork); err != nil {
		return l, err
	}
	if err := step("images", l.buildImages); err != nil {
		return l, err
	}
	if err := step("control plane", func() error { return l.startControlPlane(ctx) }); err != nil {
		return l, err
	}
	if err := step("hosts", func() error { return l.startNodes() }); err != nil {
		return l, err
	}
	if err := l.save(); err != nil {
		return l, err
	}
	if err := step("registration", func() error { return l.waitRegistered(ctx, 3*time.Minute) }); err != nil {
		return l, err
	}
	if l.FromManifests() {
		if err := step("kovn pods from dist/", func() error { return l.waitDeployed(ctx, 3*time.Minute) }); err != nil {
			return l, err
		}
	}
	if l.ClusterDNS {
		if err := step("cluster DNS", func() error { return l.deployDNS(ctx) }); err != nil {
			return l, err
		}
	}
	fmt.Fprintf(out, "lab up in %.1fs: %d nodes, %d bare-metal hosts, %s mode\n",
		time.Since(start).Seconds(), len(l.NodeNames), len(l.ExternalHostNames), l.Mode)
	return l, nil
}

func (l *Lab) startControlPlane(ctx context.Context) error {
	b, err := l.ensurePKI()
	if err != nil {
		return err
	}
	// OVN central: the lab's own processes, or (manifests) portals to
	// its pod, serving the same sockets in ovn/.
	if err := os.MkdirAll(l.path("ovn"), 0o755); err != nil {
		return err
	}
	ovn := l.ovnPortalSpecs()
	if !l.FromManifests() {
		if ovn, err = l.ovnCentralSpecs(); err != nil {
			return err
		}
	}
	specs := append(append(l.controlPlaneSpecs(b), ovn...), l.externalSpecs()...)
	for _, spec := range specs {
		if err := l.sup.Ensure(spec); err != nil {
			return err
		}
		if err := l.waitComponent(ctx, spec.Name); err != nil {
			return err
		}
	}
	return l.startKovn(ctx, b)
}

// waitComponent blocks until a just-started component answers.
func (l *Lab) waitComponent(ctx context.Context, name string) error {
	alive := func(check func() error) func() error {
		return func() error {
			if !l.sup.Status(name).Running {
				return fmt.Errorf("%s exited; see %s", name, l.sup.LogPath(name))
			}
			return check()
		}
	}
	switch name {
	case "etcd":
		return waitFor(name, 30*time.Second, alive(func() error {
			return dialCheck(ctx, NetNSPath("cp"), "127.0.0.1:2379")
		}))
	case "portal":
		// The portal is how we reach the API server: wait for both.
		return waitFor("apiserver through the portal", 90*time.Second, alive(func() error {
			cs, err := l.Client()
			if err != nil {
				return err
			}
			_, err = cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
			return err
		}))
	}
	if db, m, ok := l.ovnMemberOf(name); ok {
		return waitFor(name, 30*time.Second, alive(func() error { return l.ovnMemberReady(db, m) }))
	}
	return nil
}

func dialCheck(ctx context.Context, netns, addr string) error {
	dctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	c, err := DialInNetNS(dctx, netns, "tcp", addr)
	if err == nil {
		c.Close()
	}
	return err
}

// startNodes brings the workers and bare-metal hosts up in parallel: each
// is independent and most of the time goes into waiting for daemons.
func (l *Lab) startNodes() error {
	b, err := l.ensurePKI()
	if err != nil {
		return err
	}
	if err := l.prepareNSDir(); err != nil {
		return err
	}
	errs := make([]error, len(l.hosts()))
	var wg sync.WaitGroup
	for i, h := range l.hosts() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if l.HasExternalHost(h) {
				errs[i] = l.bringUpExternalHost(h)
				return
			}
			if err := l.setupNodeFS(h); err != nil {
				errs[i] = fmt.Errorf("%s: %w", h, err)
				return
			}
			errs[i] = l.bringUpNode(h, b)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// waitRegistered waits until every kubelet registered its Node and every
// host's (bare-metal ones too) ovn-controller registered its chassis in SB.
func (l *Lab) waitRegistered(ctx context.Context, timeout time.Duration) error {
	cs, err := l.Client()
	if err != nil {
		return err
	}
	// A kubelet that exits before registering is started again, as
	// systemd's Restart= would on a real node, a few times at most; its
	// log's end is printed so that the cause is not lost.
	restarts := map[string]int{}
	return waitFor("nodes and chassis", timeout, func() error {
		nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		have := map[string]bool{}
		for _, n := range nodes.Items {
			have[n.Name] = true
		}
		chassis, err := l.Chassis()
		if err != nil {
			return err
		}
		for _, n := range l.NodeNames {
			if !have[n] {
				err := l.nodeMissing(n)
				name := "kubelet:" + n
				if _, serr := l.sup.Spec(name); serr == nil && !l.sup.Status(name).Running {
					if restarts[n] >= 3 {
						return giveUp{err}
					}
					restarts[n]++
					fmt.Fprintf(os.Stderr, "kovn-lab: restarting %s (%d): %v\n", name, restarts[n], err)
					if serr := l.sup.Start(name); serr != nil {
						return giveUp{fmt.Errorf("%w; restart: %v", err, serr)}
					}
				}
				return err
			}
		}
		for _, h := range l.hosts() {
			if _, ok := chassis[h]; !ok {
				return l.chassisMissing(h)
			}
		}
		return nil
	})
}

// nodeMissing explains a Node its kubelet has not registered: whether
// the kubelet still runs, and the end of its log, so that a timeout in CI
// says why without the lab's logs (which a failed run may not keep).
func (l *Lab) nodeMissing(node string) error {
	name := "kubelet:" + node
	if _, err := l.sup.Spec(name); err != nil {
		return fmt.Errorf("node %s not registered", node)
	}
	state := "running"
	if !l.sup.Status(name).Running {
		state = "exited"
	}
	return fmt.Errorf("node %s not registered (%s %s; end of %s:\n%s)", node, name, state,
		l.sup.LogPath(name), logTail(l.sup.LogPath(name), 15))
}

// logTail returns the last n lines of a log file, or why it cannot.
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// chassisMissing explains a missing chassis; when the host's kovn-node,
// which configures the chassis, has exited, waiting longer cannot help.
func (l *Lab) chassisMissing(host string) error {
	err := fmt.Errorf("chassis %s not in SB", host)
	name := "kovn-node:" + host
	if _, serr := l.sup.Spec(name); serr == nil && !l.sup.Status(name).Running {
		return giveUp{fmt.Errorf("%w: %s exited; see %s", err, name, l.sup.LogPath(name))}
	}
	return err
}

// intact reports whether the lab's namespaces still exist (a reboot, or a
// partial down, loses them; then only a fresh lab will do).
func (l *Lab) intact() bool {
	for _, h := range l.netHosts() {
		if !netnsExists(h) {
			return false
		}
	}
	for _, n := range l.hosts() {
		if !isMountPoint(l.MountNSPath(n)) {
			return false
		}
	}
	return true
}

// startStopped restarts whatever component of an existing lab is not running.
func (l *Lab) startStopped(ctx context.Context) error {
	for _, name := range startOrder(l.sup.Names()) {
		if l.sup.Status(name).Running {
			continue
		}
		if err := l.sup.Start(name); err != nil {
			return err
		}
	}
	return l.waitRegistered(ctx, 2*time.Minute)
}

// startOrder sorts component names so that each starts after what it
// needs (etcd before the API server, OVS before ovn-controller, …).
func startOrder(names []string) []string {
	rank := map[string]int{"etcd": 0, "apiserver": 1, "portal": 2, "controller-manager": 3, "scheduler": 4,
		"nb": 5, "nb2": 5, "nb3": 5, "sb": 6, "sb2": 6, "sb3": 6, "northd": 7, "ovsdb-server": 8, "ovs-vswitchd": 9, "ovn-controller": 10,
		"containerd": 11, "kubelet": 12, "kovn-controller": 13, "kovn-node": 14, "test-server": 15}
	r := func(n string) int {
		base, _, _ := strings.Cut(n, ":")
		if v, ok := rank[base]; ok {
			return v
		}
		return len(rank)
	}
	out := append([]string(nil), names...)
	sort.SliceStable(out, func(i, j int) bool { return r(out[i]) < r(out[j]) })
	return out
}

// nodeReady reads the Ready condition of a Node.
func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// Components lists the lab's processes with their state.
func (l *Lab) Components() []supervise.Status {
	var out []supervise.Status
	for _, n := range l.sup.Names() {
		out = append(out, l.sup.Status(n))
	}
	return out
}

// ExpandComponent maps the names operators use (`controller`, `node:X`,
// `ovs:X`) to the lab's processes.
func (l *Lab) ExpandComponent(name string) ([]string, error) {
	all := l.sup.Names()
	var out []string
	switch {
	case name == "controller":
		for _, n := range all {
			if strings.HasPrefix(n, "kovn-controller") {
				out = append(out, n)
			}
		}
	case strings.HasPrefix(name, "controller:"):
		out = []string{"kovn-" + name}
	case strings.HasPrefix(name, "node:"):
		out = []string{"kovn-" + name}
	case name == "nb-leader" || name == "sb-leader":
		leader, err := l.OVNLeader(strings.TrimSuffix(name, "-leader"))
		if err != nil {
			return nil, err
		}
		out = []string{leader}
	case strings.HasPrefix(name, "ovs:"):
		host := strings.TrimPrefix(name, "ovs:")
		out = []string{"ovsdb-server:" + host, "ovs-vswitchd:" + host}
	default:
		out = []string{name}
	}
	for _, n := range out {
		if _, err := l.sup.Spec(n); err != nil {
			return nil, err
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no component matches %q", name)
	}
	return out, nil
}
