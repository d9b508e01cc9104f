package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// Target is a place in the lab a command or probe can run from.
type Target struct {
	Desc  string
	NetNS string   // network namespace file
	Enter []string // nsenter prefix for commands (more namespaces for hosts)
}

// Client returns a Kubernetes client for the lab's admin.
func (l *Lab) Client() (*kubernetes.Clientset, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", l.KubeconfigPath())
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 200, 400
	return kubernetes.NewForConfig(cfg)
}

// ResolveTarget understands "NS/POD", "host:NODE", "host:BM" (a bare-metal
// host), "host:cp", "external" and "netns:NAME".
func (l *Lab) ResolveTarget(ctx context.Context, spec string) (Target, error) {
	switch {
	case spec == "external":
		p := NetNSPath("ext")
		return Target{Desc: "external host", NetNS: p, Enter: []string{"nsenter", "--net=" + p, "--"}}, nil
	case spec == "host:cp" || spec == "cp":
		p := NetNSPath("cp")
		return Target{Desc: "control-plane host", NetNS: p, Enter: []string{"nsenter", "--net=" + p, "--"}}, nil
	case strings.HasPrefix(spec, "host:"):
		node := strings.TrimPrefix(spec, "host:")
		if !l.HasNode(node) && !l.HasExternalHost(node) {
			return Target{}, fmt.Errorf("no host %q in the lab (hosts: %s)", node, strings.Join(l.hosts(), ", "))
		}
		return Target{Desc: "host " + node, NetNS: NetNSPath(node), Enter: l.nodeEnter(node)}, nil
	case strings.HasPrefix(spec, "netns:"):
		// A namespace of the caller's own (`ip netns add`), e.g. a test's
		// "VM" plugged into a host with kovnctl attach.
		name := strings.TrimPrefix(spec, "netns:")
		p := "/run/netns/" + name
		if name == "" || strings.Contains(name, "/") {
			return Target{}, fmt.Errorf("target %q: want netns:NAME", spec)
		}
		if _, err := os.Stat(p); err != nil {
			return Target{}, fmt.Errorf("target %q: %w", spec, err)
		}
		return Target{Desc: "netns " + name, NetNS: p, Enter: []string{"nsenter", "--net=" + p, "--"}}, nil
	case strings.Count(spec, "/") == 1:
		return l.podTarget(ctx, spec)
	}
	return Target{}, fmt.Errorf("target %q: want NS/POD, host:NODE, host:cp or external", spec)
}

// podTarget finds a running pod's network namespace through the cgroup of
// one of its processes: kubelet names pod cgroups after the pod UID.
func (l *Lab) podTarget(ctx context.Context, spec string) (Target, error) {
	nsName, name, _ := strings.Cut(spec, "/")
	cs, err := l.Client()
	if err != nil {
		return Target{}, err
	}
	pod, err := cs.CoreV1().Pods(nsName).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return Target{}, err
	}
	if pod.Spec.NodeName == "" || !l.HasNode(pod.Spec.NodeName) {
		return Target{}, fmt.Errorf("pod %s is not on a lab node (node %q)", spec, pod.Spec.NodeName)
	}
	pid, err := podPid(pod.Spec.NodeName, string(pod.UID))
	if err != nil {
		return Target{}, fmt.Errorf("pod %s: %w", spec, err)
	}
	p := fmt.Sprintf("/proc/%d/ns/net", pid)
	return Target{Desc: "pod " + spec, NetNS: p, Enter: []string{"nsenter", "--net=" + p, "--"}}, nil
}

func podPid(node, uid string) (int, error) {
	want := "pod" + uid
	for _, ctrl := range []string{"pids", "memory", "cpu,cpuacct", "cpu"} {
		root := filepath.Join("/sys/fs/cgroup", ctrl) + CgroupRoot(node)
		if _, err := os.Stat(root); err != nil {
			continue
		}
		var pid int
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || !d.IsDir() || pid != 0 {
				return nil
			}
			if d.Name() != want {
				return nil
			}
			pid = firstPid(p)
			return filepath.SkipDir
		})
		if pid != 0 {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no running process found for pod UID %s on %s", uid, node)
}

// firstPid returns some process of a pod cgroup (any container will do:
// they share the pod's network namespace).
func firstPid(podDir string) int {
	var pid int
	_ = filepath.WalkDir(podDir, func(p string, d os.DirEntry, err error) error {
		if err != nil || pid != 0 || d.IsDir() || d.Name() != "cgroup.procs" {
			return nil
		}
		b, _ := os.ReadFile(p)
		if f := strings.Fields(string(b)); len(f) > 0 {
			fmt.Sscanf(f[0], "%d", &pid)
		}
		return nil
	})
	return pid
}
