package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/lab"
	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// controllerGet fetches a path from replica i's metrics server, which
// listens on loopback inside the control-plane host.
func controllerGet(i int, path string) (int, string, error) {
	client := http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return lab.DialInNetNS(ctx, lab.NetNSPath("cp"), network, addr)
		},
	}}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d%s", lab.ControllerMetricsPort(i), path))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// metricSum adds up every sample of a metric family in a /metrics page.
func metricSum(page, name string) float64 {
	var sum float64
	sc := bufio.NewScanner(strings.NewReader(page))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || (len(line) > len(name) && line[len(name)] != ' ' && line[len(name)] != '{') {
			continue
		}
		f := strings.Fields(line)
		v, _ := strconv.ParseFloat(f[len(f)-1], 64)
		sum += v
	}
	return sum
}

// leader returns the index of the replica holding the Lease.
func (e *env) leader(t *testing.T) int {
	t.Helper()
	var idx int
	if _, err := fmt.Sscanf(e.leaderName(t), "controller-%d", &idx); err != nil {
		t.Fatal(err)
	}
	return idx
}

// waitReady waits until some replica serves /readyz and returns it.
func waitReady(t *testing.T, timeout time.Duration) int {
	t.Helper()
	ready := -1
	err := poll(timeout, func() error {
		for i := 0; i < lab.ControllerReplicas; i++ {
			if code, _, err := controllerGet(i, "/readyz"); err == nil && code == http.StatusOK {
				ready = i
				return nil
			}
		}
		return fmt.Errorf("no replica is ready")
	})
	if err != nil {
		t.Fatal(err)
	}
	return ready
}

// nbCommits counts the transactions the NB server has committed to its
// database file: NB's own record, independent of what kovn says it sent.
func (e *env) nbCommits(t *testing.T) int {
	t.Helper()
	f, err := os.Open(e.lab.NBDBFile())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "OVSDB JSON ") {
			n++
		}
	}
	return n
}

// waitQuiet waits until no namespace is terminating and NB has committed
// nothing for two seconds.
func (e *env) waitQuiet(t *testing.T, timeout time.Duration) {
	t.Helper()
	last := -1
	err := poll(timeout, func() error {
		nss, err := e.cs.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return err
		}
		for _, n := range nss.Items {
			if n.Status.Phase == corev1.NamespaceTerminating {
				last = -1
				return fmt.Errorf("namespace %s is terminating", n.Name)
			}
		}
		now := e.nbCommits(t)
		if now != last {
			last = now
			time.Sleep(2 * time.Second)
			return fmt.Errorf("NB still changing")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("lab not quiet before the restart: %v", err)
	}
}

// TestConvergedRestartWritesNothing restarts every controller replica on a
// converged lab: the new leader must send no NB transaction, by its own
// metric and by the NB database file.
func TestConvergedRestartWritesNothing(t *testing.T) {
	e := setup(t)
	requireController(t, e)
	nb := e.nb(t)
	ns := e.namespace(t, "restart")
	ctx := context.Background()
	for i := 0; i < 6; i++ {
		p := pausePod(ns, fmt.Sprintf("r%d", i), e.lab.NodeNames[i%len(e.lab.NodeNames)])
		if _, err := e.cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := poll(30*time.Second, func() error {
		for i := 0; i < 6; i++ {
			if _, err := nbops.GetSwitchPort(nb, own.PodPort(ns, fmt.Sprintf("r%d", i))); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Earlier tests' namespaces may still be going away, and their pods'
	// teardown is legitimate NB work: wait until nothing is changing.
	e.waitQuiet(t, 90*time.Second)
	before := e.nbCommits(t)
	start := time.Now()
	if _, err := e.labCmd(t, nil, "restart", "controller"); err != nil {
		t.Fatal(err)
	}
	idx := waitReady(t, 60*time.Second)
	t.Logf("replica %d ready %.2fs after the restart", idx, time.Since(start).Seconds())
	_, page, err := controllerGet(idx, "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if n := metricSum(page, "kovn_nb_transactions_total"); n != 0 {
		t.Errorf("the restarted leader sent %v NB transactions, want 0", n)
	}
	time.Sleep(time.Second)
	if after := e.nbCommits(t); after != before {
		t.Errorf("NB committed %d transactions during the restart, want 0", after-before)
	}
}

// TestLeaderCrashFailover kills the leader without letting it release the
// Lease; the other replica must take over and program a new pod.
func TestLeaderCrashFailover(t *testing.T) {
	e := setup(t)
	requireController(t, e)
	nb := e.nb(t)
	ns := e.namespace(t, "failover")
	old := e.leader(t)
	comp := fmt.Sprintf("controller:%d", old)
	if _, err := e.labCmd(t, nil, "stop", "--signal", "KILL", comp); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = e.labCmd(t, nil, "start", comp) })
	killed := time.Now()
	p := pausePod(ns, "after-crash", e.lab.NodeNames[0])
	if _, err := e.cs.CoreV1().Pods(ns).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The bound is the lease (10 s by default) plus start-up; the figure
	// itself is measured by the benchmarks, not asserted here.
	if err := poll(40*time.Second, func() error {
		_, err := nbops.GetSwitchPort(nb, own.PodPort(ns, "after-crash"))
		return err
	}); err != nil {
		t.Fatalf("no replica programmed the pod after the leader crashed: %v", err)
	}
	t.Logf("pod programmed %.1fs after the leader was killed", time.Since(killed).Seconds())
	if now := e.leader(t); now == old {
		t.Errorf("lease still held by the killed replica %d", old)
	}
}

// TestBadStaticIPIsReported: a pod asking for an address outside its
// node's subnet gets an Event and no port; a good pod next to it works.
func TestBadStaticIPIsReported(t *testing.T) {
	e := setup(t)
	requireController(t, e)
	nb := e.nb(t)
	ns := e.namespace(t, "badip")
	ctx := context.Background()
	bad := pausePod(ns, "bad", e.lab.NodeNames[0])
	bad.Annotations = map[string]string{kube.PodIPRequestAnnotation: "192.0.2.7"}
	notIP := pausePod(ns, "notip", e.lab.NodeNames[0])
	notIP.Annotations = map[string]string{kube.PodIPRequestAnnotation: "ten.one.two.three"}
	good := pausePod(ns, "good", e.lab.NodeNames[0])
	for _, p := range []*corev1.Pod{bad, notIP, good} {
		if _, err := e.cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := poll(30*time.Second, func() error {
		_, err := nbops.GetSwitchPort(nb, own.PodPort(ns, "good"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for name, reason := range map[string]string{"bad": "IPOutOfRange", "notip": "InvalidIPRequest"} {
		if err := poll(30*time.Second, func() error {
			evs, err := e.cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
			if err != nil {
				return err
			}
			for _, ev := range evs.Items {
				if ev.Reason == reason && ev.Type == corev1.EventTypeWarning {
					return nil
				}
			}
			return fmt.Errorf("no %s event on %s/%s", reason, ns, name)
		}); err != nil {
			t.Error(err)
		}
		if _, err := nbops.GetSwitchPort(nb, own.PodPort(ns, name)); err == nil {
			t.Errorf("pod %s with a bad request got a port", name)
		}
	}
}
