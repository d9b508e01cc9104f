package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kovn-io/kovn/go-controller/pkg/lab"
	"github.com/kovn-io/kovn/go-controller/pkg/metrics/metricsdoc"
)

// nodeMetricsPort is kovn-node's default --metrics-address port, bound to
// the node host's loopback.
const nodeMetricsPort = 9478

// nodeGet fetches a path from kovn-node's metrics listener on a node.
func nodeGet(node, path string) (int, string, error) { return netnsGet(node, nodeMetricsPort, path) }

// netnsGet is an HTTP GET of 127.0.0.1:port inside a lab host.
func netnsGet(node string, port int, path string) (int, string, error) {
	client := http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return lab.DialInNetNS(ctx, lab.NetNSPath(node), network, addr)
		},
	}}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// scrapedTypes reads the `# TYPE` lines of kovn's families in a page.
// leaderName is the holder of kovn-controller's Lease: "controller-N"
// for the lab's processes, a pod's name with --deploy manifests.
func (e *env) leaderName(t *testing.T) string {
	t.Helper()
	var holder string
	if err := poll(30*time.Second, func() error {
		l, err := e.cs.CoordinationV1().Leases("kovn-system").Get(context.Background(), "kovn-controller", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" {
			return fmt.Errorf("lease has no holder")
		}
		holder = *l.Spec.HolderIdentity
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return holder
}

// controllerEndpoint describes the controller replica named holder and
// reads its metrics server: a process in the control-plane host, or a
// pod on its node's network.
func (e *env) controllerEndpoint(t *testing.T, holder string) (string, func(path string) (int, string, error)) {
	t.Helper()
	if !e.lab.FromManifests() {
		var i int
		if _, err := fmt.Sscanf(holder, "controller-%d", &i); err != nil {
			t.Fatalf("controller identity %q: %v", holder, err)
		}
		return fmt.Sprintf("kovn-controller replica %d", i), func(p string) (int, string, error) { return controllerGet(i, p) }
	}
	pod, err := e.cs.CoreV1().Pods("kovn-system").Get(context.Background(), holder, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	node := pod.Spec.NodeName
	return "kovn-controller pod " + pod.Name + " on " + node, func(p string) (int, string, error) {
		return netnsGet(node, lab.DefaultControllerMetricsPort, p)
	}
}

func scrapedTypes(page string) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(page))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 4 && f[0] == "#" && f[1] == "TYPE" && strings.HasPrefix(f[2], metricsdoc.Prefix) {
			out[f[2]] = f[3]
		}
	}
	return out
}

// TestMetricsEndpoints scrapes the running components of the lab — the
// leading controller and every kovn-node — after a pod has come and gone,
// and holds what they serve to docs/metrics.md: every kovn_* family
// served is documented with its type and component, and every documented
// family of the component is served. The exceptions are families that
// only exist once their event has happened; those are named here and
// logged when absent.
func TestMetricsEndpoints(t *testing.T) {
	e := setup(t)
	requireController(t, e)
	requireKovnCNI(t, e)
	documented, err := metricsdoc.ReadTable("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	eventOnly := map[string]string{
		"kovn_object_problems_total": "no object has been refused yet",
	}

	// One pod on every node, then gone: CNI ADD and DEL ran everywhere.
	ns := e.namespace(t, "metrics")
	for _, node := range e.lab.NodeNames {
		p := e.createRunning(t, 2*time.Minute, e.testServerPod(ns, "p-"+node, node))[0]
		if err := e.cs.CoreV1().Pods(ns).Delete(context.Background(), p.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := poll(time.Minute, func() error {
			_, err := e.cs.CoreV1().Pods(ns).Get(context.Background(), p.Name, metav1.GetOptions{})
			if err == nil {
				return fmt.Errorf("pod %s/%s still exists", ns, p.Name)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}

	// A pod's sandbox, and with it CNI DEL, may outlive its API object
	// by a little: each component gets 30 s to serve everything.
	check := func(who, component string, get func(string) (int, string, error)) {
		var problems []string
		_ = poll(30*time.Second, func() error {
			problems = scrape(who, component, documented, eventOnly, get, t.Logf)
			if len(problems) > 0 {
				return fmt.Errorf("%d problems", len(problems))
			}
			return nil
		})
		for _, p := range problems {
			t.Error(p)
		}
	}
	who, get := e.controllerEndpoint(t, e.leaderName(t))
	check(who+" (leader)", "controller", get)
	for _, node := range e.lab.NodeNames {
		check("kovn-node on "+node, "node", func(p string) (int, string, error) { return nodeGet(node, p) })
	}
}

// scrape reads one component's health and metrics and lists where they
// disagree with docs/metrics.md.
func scrape(who, component string, documented map[string]metricsdoc.Metric, eventOnly map[string]string,
	get func(string) (int, string, error), logf func(string, ...any)) []string {
	var problems []string
	{
		for _, path := range []string{"/healthz", "/readyz"} {
			if code, body, err := get(path); err != nil || code != http.StatusOK {
				problems = append(problems, fmt.Sprintf("%s %s: HTTP %d %q (%v), want 200", who, path, code, strings.TrimSpace(body), err))
			}
		}
		code, page, err := get("/metrics")
		if err != nil || code != http.StatusOK {
			return append(problems, fmt.Sprintf("%s /metrics: HTTP %d (%v)", who, code, err))
		}
		served := scrapedTypes(page)
		for name, typ := range served {
			d, ok := documented[name]
			switch {
			case !ok:
				problems = append(problems, fmt.Sprintf("%s serves %s (%s), which docs/metrics.md does not list", who, name, typ))
			case d.Type != typ:
				problems = append(problems, fmt.Sprintf("%s serves %s as a %s, docs/metrics.md says %s", who, name, typ, d.Type))
			case d.Component != component:
				problems = append(problems, fmt.Sprintf("%s serves %s, docs/metrics.md says it belongs to %s", who, name, d.Component))
			}
		}
		n := 0
		for name, d := range documented {
			if d.Component != component {
				continue
			}
			n++
			if _, ok := served[name]; ok {
				continue
			}
			if why, ok := eventOnly[name]; ok {
				logf("%s does not serve %s yet (%s)", who, name, why)
				continue
			}
			problems = append(problems, fmt.Sprintf("%s does not serve %s, which docs/metrics.md lists", who, name))
		}
		if len(problems) == 0 {
			logf("%s: %d kovn families served, %d documented for %s", who, len(served), n, component)
		}
	}
	return problems
}
