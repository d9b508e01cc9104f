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
func nodeGet(node, path string) (int, string, error) {
	client := http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return lab.DialInNetNS(ctx, lab.NetNSPath(node), network, addr)
		},
	}}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d%s", nodeMetricsPort, path))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// scrapedTypes reads the `# TYPE` lines of kovn's families in a page.
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
	leader := e.leader(t)
	check(fmt.Sprintf("kovn-controller replica %d (leader)", leader), "controller", func(p string) (int, string, error) { return controllerGet(leader, p) })
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
