package bench

import (
	"context"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/lab"
)

// Environment says where and how a figure was taken, so figures from
// different machines and versions are never compared blindly.
type Environment struct {
	Command    []string  `json:"command"`
	Started    time.Time `json:"started"`
	Cores      int       `json:"cores"`
	OVN        string    `json:"ovn"`
	Kubernetes string    `json:"kubernetes"`
	Go         string    `json:"go"`
	LabNodes   []string  `json:"labNodes"`
	LoadAvg    string    `json:"loadAverage"` // at the start: 1, 5, 15 minutes
	// OtherNamespaces are namespaces that are neither the system's nor
	// ours: someone else's tests share the lab and may add noise.
	OtherNamespaces []string `json:"otherNamespaces,omitempty"`
}

// Describe collects the environment; failures leave a field empty.
func Describe(ctx context.Context, l *lab.Lab, cs kubernetes.Interface) Environment {
	e := Environment{Command: os.Args, Started: time.Now(), Cores: runtime.NumCPU(), Go: runtime.Version(), LabNodes: l.NodeNames, LoadAvg: LoadAverage()}
	if out, err := exec.CommandContext(ctx, "ovn-nbctl", "--version").Output(); err == nil {
		e.OVN, _, _ = strings.Cut(string(out), "\n")
	}
	if v, err := cs.Discovery().ServerVersion(); err == nil {
		e.Kubernetes = v.GitVersion
	}
	if nss, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); err == nil {
		for _, ns := range nss.Items {
			if _, ours := ns.Labels[BenchLabel]; ours || isSystemNamespace(ns.Name) {
				continue
			}
			e.OtherNamespaces = append(e.OtherNamespaces, ns.Name)
		}
	}
	return e
}

func isSystemNamespace(n string) bool {
	return n == "default" || n == "kovn-system" || strings.HasPrefix(n, "kube-")
}

// Client is an API client without client-side rate limit ("as fast as
// the API server takes them") that dials the API server inside the
// control-plane host directly: the lab's portal is a userspace relay whose
// CPU, on a small machine, would be taken from the components we measure.
func Client(l *lab.Lab) (*kubernetes.Clientset, error) {
	cfg, err := kube.RESTConfig(kube.ClientConfig{Kubeconfig: l.KubeconfigPath(), QPS: -1, UserAgent: "kovn-bench"})
	if err != nil {
		return nil, err
	}
	cfg.Host = "https://" + net.JoinHostPort(lab.ControlPlaneIP, strconv.Itoa(lab.APIServerPort))
	cfg.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return lab.DialInNetNS(ctx, lab.NetNSPath("cp"), network, addr)
	}
	return kubernetes.NewForConfig(cfg)
}

// CPUSnapshot is the CPU seconds used so far by every lab process, by
// the benchmark itself ("kovn-bench") and by the whole machine
// ("machine"), so that a delta also shows load from outside the lab.
func CPUSnapshot(l *lab.Lab) map[string]float64 {
	out := map[string]float64{}
	for _, c := range l.Supervisor().Names() {
		if pid := l.Supervisor().Pid(c); pid > 0 {
			if st, err := ReadProc(pid); err == nil {
				out[c] = st.CPUSeconds
			}
		}
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		out["kovn-bench"] = tvSeconds(ru.Utime) + tvSeconds(ru.Stime)
	}
	if m, err := MachineCPU(); err == nil {
		out["machine"] = m
	}
	return out
}

func tvSeconds(tv syscall.Timeval) float64 {
	return float64(tv.Sec) + float64(tv.Usec)/1e6
}

// CPUDelta subtracts two snapshots, rounded to 10 ms (the tick), and
// adds "other": machine CPU that no lab process (nor we) used.
func CPUDelta(before, after map[string]float64) map[string]float64 {
	out := map[string]float64{}
	var ours float64
	for k, v := range after {
		if b, ok := before[k]; ok {
			out[k] = round(v-b, 2)
			if k != "machine" {
				ours += v - b
			}
		}
	}
	if m, ok := out["machine"]; ok {
		out["other"] = round(max(0, m-ours), 2)
	}
	return out
}
