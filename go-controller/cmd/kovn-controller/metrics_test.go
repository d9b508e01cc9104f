package main

import (
	"os"
	"regexp"
	"slices"
	"testing"

	"github.com/urfave/cli/v2"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kovn-io/kovn/go-controller/pkg/config"
	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/metrics"
	"github.com/kovn-io/kovn/go-controller/pkg/metrics/metricsdoc"
	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	"github.com/kovn-io/kovn/go-controller/pkg/testenv"
)

const metricsDoc = "../../../docs/metrics.md"

// defaultConfig is the configuration the flags' defaults give.
func defaultConfig(t *testing.T) *config.Controller {
	t.Helper()
	var cfg *config.Controller
	app := &cli.App{Flags: config.ControllerFlags(), Action: func(c *cli.Context) (err error) {
		cfg, err = config.ControllerFromCLI(c)
		return err
	}}
	if err := app.Run([]string{"kovn-controller"}); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestMetricsDocumented builds the leader's controllers as runControllers
// does and compares every kovn_* metric they register with the table in
// docs/metrics.md.
func TestMetricsDocumented(t *testing.T) {
	cfg := defaultConfig(t)
	// The client model runControllers' nbops.NewClient uses; leader-only
	// (which asks for _Server) is left out, the in-memory server has none.
	model, err := nbops.ClientDBModel()
	if err != nil {
		t.Fatal(err)
	}
	nb := testenv.Connect(t, testenv.StartInMemoryNB(t).Addr, model)
	reg := metrics.NewRegistry()
	rec := metricsdoc.NewRecorder(reg)
	if _, err := newControllers(cfg, fake.NewClientset(), nil, nb, rec, nil); err != nil {
		t.Fatal(err)
	}
	got, err := rec.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	documented, err := metricsdoc.ReadTable(metricsDoc)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range metricsdoc.Compare("controller", got, documented) {
		t.Error(d)
	}
	if len(got) == 0 {
		t.Fatal("no kovn_* metric registered")
	}

	// What the docs say of the defaults: 10.128.0.0/14 holds 1024 /24s.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]float64{}
	for _, mf := range mfs {
		if len(mf.Metric) == 1 && mf.Metric[0].Gauge != nil {
			values[mf.GetName()] = mf.Metric[0].Gauge.GetValue()
		}
	}
	if values["kovn_cluster_subnets_capacity"] != 1024 || values["kovn_cluster_subnets_allocated"] != 0 {
		t.Errorf("cluster subnets: capacity %v allocated %v, want 1024 and 0",
			values["kovn_cluster_subnets_capacity"], values["kovn_cluster_subnets_allocated"])
	}
}

// TestControllerLabelDocumented compares the controller label's values
// listed in docs/metrics.md with the names of the leader's workqueues,
// the external port controller's included (it runs when the ExternalPort
// CRD is installed).
func TestControllerLabelDocumented(t *testing.T) {
	model, err := nbops.ClientDBModel()
	if err != nil {
		t.Fatal(err)
	}
	nb := testenv.Connect(t, testenv.StartInMemoryNB(t).Addr, model)
	dc := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{kube.ExternalPortResource(): "ExternalPortList"})
	cs, err := newControllers(defaultConfig(t), fake.NewClientset(), dc, nb, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, q := range cs.queues() {
		names = append(names, q.Name())
	}
	slices.Sort(names)
	doc, err := os.ReadFile(metricsDoc)
	if err != nil {
		t.Fatal(err)
	}
	// The row of kovn_controller_syncs_total: "… by controller (`node`, …)".
	row := regexp.MustCompile("(?m)^\\| `kovn_controller_syncs_total` .*by controller \\(([^)]*)\\)").FindSubmatch(doc)
	if row == nil {
		t.Fatalf("%s: no list of controller values in the kovn_controller_syncs_total row", metricsDoc)
	}
	var documented []string
	for _, m := range regexp.MustCompile("`([^`]+)`").FindAllSubmatch(row[1], -1) {
		documented = append(documented, string(m[1]))
	}
	slices.Sort(documented)
	if !slices.Equal(names, documented) {
		t.Errorf("%s lists controller values %q; the controllers are %q", metricsDoc, documented, names)
	}
}
