package bench

import (
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kovn-io/kovn/go-controller/pkg/kube"
)

func TestW1Shape(t *testing.T) {
	refs := W1().PodList()
	if len(refs) != 1000 {
		t.Fatalf("W1 has %d pods, want 1000", len(refs))
	}
	perNode, perNS := map[string]int{}, map[string]int{}
	for _, r := range refs {
		perNode[r.Node]++
		perNS[r.Namespace]++
	}
	if perNode["sim-0"] != 334 || perNode["sim-1"] != 333 || perNode["sim-2"] != 333 {
		t.Errorf("round-robin over 3 nodes: %v", perNode)
	}
	if len(perNS) != 10 || perNS["ns9"] != 100 {
		t.Errorf("per namespace: %v", perNS)
	}
	p := PodObj(refs[137], "img")
	if p.Name != "pod-1-37" || p.Labels["app"] != "s7" || p.Labels["role"] != "r1" || p.Spec.NodeName != "sim-2" {
		t.Errorf("pod 137: %s %v on %s", p.Name, p.Labels, p.Spec.NodeName)
	}
	if ns := NamespaceObj(5); ns.Labels["team"] != "t2" {
		t.Errorf("ns5 labels %v", ns.Labels)
	}
}

func TestUnevenPods(t *testing.T) {
	refs := Workload{Nodes: 5, Pods: 13, Writers: 1}.PodList()
	if len(refs) != 13 || refs[0].Name != "pod-0-0" || refs[1].Name != "pod-0-1" || refs[2].Name != "pod-1-0" {
		t.Fatalf("13 pods: %+v", refs)
	}
}

func TestSimNodeGatewayParses(t *testing.T) {
	n := SimNode(49)
	gw, err := kube.ParseNodeGateway(n.Annotations[kube.NodeGatewayAnnotation])
	if err != nil {
		t.Fatal(err)
	}
	if gw.IP != "172.18.1.59/24" || gw.MAC != "0a:00:00:00:01:3b" || len(gw.ChassisID) != 36 {
		t.Errorf("gateway %+v", gw)
	}
}

func TestSummarise(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(101-i)*time.Millisecond)
	}
	d := Summarise(ds)
	if d.P50Ms != 50 || d.P99Ms != 99 || d.MaxMs != 100 || d.N != 100 {
		t.Errorf("%+v", d)
	}
	if (Summarise(nil) != Dist{}) {
		t.Error("empty")
	}
}

func TestMetrics(t *testing.T) {
	before := ParseMetrics(`# HELP x
kovn_nb_transactions_total{result="ok"} 10
kovn_nb_operations_total 30
kovn_nb_transaction_duration_seconds_bucket{le="0.1"} 3
process_resident_memory_bytes 1e+07
go_goroutines 12
`)
	after := ParseMetrics(`kovn_nb_transactions_total{result="ok"} 15
kovn_nb_transactions_total{result="error"} 1
kovn_nb_operations_total 50
process_resident_memory_bytes 2e+07
`)
	if len(before) != 3 {
		t.Errorf("kept %v", before)
	}
	if got := after.Sum("kovn_nb_transactions_total") - before.Sum("kovn_nb_transactions_total"); got != 6 {
		t.Errorf("txn delta %v", got)
	}
	d := Delta(before, after)
	if d[`kovn_nb_transactions_total{result="error"}`] != 1 || d["kovn_nb_operations_total"] != 20 || len(d) != 3 {
		t.Errorf("delta %v", d)
	}
}

func TestLoggedReady(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.log")
	log := `I1121 07:44:37.656496   27481 controllers.go:101] "ready" after="150.31285ms" nbTransactions=6 nbOperations=13
I1121 07:50:01.000001   31000 controllers.go:101] "ready" after="1.2s" nbTransactions=0 nbOperations=0
`
	if err := os.WriteFile(p, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	if a, tx, ops := loggedReady(p, 27481); a != "150.31285ms" || tx != 6 || ops != 13 {
		t.Errorf("27481: %q %d %d", a, tx, ops)
	}
	if a, _, _ := loggedReady(p, 1); a != "" {
		t.Errorf("unknown pid matched %q", a)
	}
}

func TestTimeline(t *testing.T) {
	t0 := time.Now()
	answered := []time.Time{t0.Add(10 * time.Millisecond), t0.Add(60 * time.Millisecond)}
	ports := map[string]time.Time{"a": t0.Add(40 * time.Millisecond), "b": t0.Add(120 * time.Millisecond)}
	tl := timeline(t0, answered, ports)
	last := tl[len(tl)-1]
	if last.Created != 2 || last.Ports != 2 || tl[0].Ms != 50 || tl[0].Created != 1 || tl[0].Ports != 1 {
		t.Errorf("%+v", tl)
	}
}

func TestParallelStopsOnError(t *testing.T) {
	// One worker: the calls are in order, so exactly 0..3 run.
	var calls atomic.Int32
	err := parallel(1000, 1, func(i int) error {
		calls.Add(1)
		if i == 3 {
			return errors.New("boom")
		}
		return nil
	})
	if err == nil || err.Error() != "boom" || calls.Load() != 4 {
		t.Errorf("one worker: err %v after %d calls, want boom after 4", err, calls.Load())
	}
	// Four workers: the error still comes back. (How many calls run
	// before the others see it depends on scheduling, so it is not
	// counted here.)
	err = parallel(1000, 4, func(i int) error {
		if i == 0 {
			return errors.New("boom")
		}
		return nil
	})
	if err == nil || err.Error() != "boom" {
		t.Errorf("four workers: err %v, want boom", err)
	}
	if err := parallel(0, 4, func(int) error { return errors.New("never") }); err != nil {
		t.Error(err)
	}
}

func TestAPIStats(t *testing.T) {
	before := parseMetrics(`apiserver_request_duration_seconds_sum{component="apiserver",resource="pods",subresource="",verb="POST",version="v1"} 1
apiserver_request_duration_seconds_count{component="apiserver",resource="pods",subresource="",verb="POST",version="v1"} 10
etcd_disk_wal_fsync_duration_seconds_sum 1
etcd_disk_wal_fsync_duration_seconds_count 100
`, "apiserver_", "etcd_")
	after := parseMetrics(`apiserver_request_duration_seconds_sum{component="apiserver",resource="pods",subresource="",verb="POST",version="v1"} 3
apiserver_request_duration_seconds_count{component="apiserver",resource="pods",subresource="",verb="POST",version="v1"} 30
apiserver_request_duration_seconds_sum{component="apiserver",resource="pods",subresource="status",verb="PATCH",version="v1"} 0.5
apiserver_request_duration_seconds_count{component="apiserver",resource="pods",subresource="status",verb="PATCH",version="v1"} 5
apiserver_flowcontrol_request_wait_duration_seconds_sum{execute="true",flow_schema="x",priority_level="workload-low"} 0.2
apiserver_flowcontrol_request_wait_duration_seconds_count{execute="true",flow_schema="x",priority_level="workload-low"} 2
etcd_disk_wal_fsync_duration_seconds_sum 1.2
etcd_disk_wal_fsync_duration_seconds_count 200
`, "apiserver_", "etcd_")
	got := APIStats(before, after)
	want := map[string]APIStat{
		"POST pods":             {Count: 20, MeanMs: 100},
		"PATCH pods/status":     {Count: 5, MeanMs: 100},
		"APF wait workload-low": {Count: 2, MeanMs: 100},
		"etcd wal_fsync":        {Count: 100, MeanMs: 2},
	}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %+v, want %+v", k, got[k], v)
		}
	}
}

func TestCPUDeltaOther(t *testing.T) {
	d := CPUDelta(map[string]float64{"machine": 10, "apiserver": 1, "kovn-bench": 0.5},
		map[string]float64{"machine": 14, "apiserver": 3, "kovn-bench": 1, "new": 7})
	if d["apiserver"] != 2 || d["machine"] != 4 || d["other"] != 1.5 || len(d) != 4 {
		t.Errorf("%v", d)
	}
}
