package lab

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// nodeBinds are the standard paths that kubelet, containerd, CNI and OVS
// hard-code; each worker gets a private directory mounted over every one of
// them, so that software written for real nodes runs unchanged.
func nodeBinds() []string {
	return []string{
		"/var/lib/kubelet", "/var/log/pods", "/var/log/containers",
		"/var/lib/containerd", "/run/containerd",
		"/etc/cni/net.d", "/opt/cni/bin", "/var/lib/cni", "/run/netns",
		"/etc/openvswitch", "/run/openvswitch", "/var/log/openvswitch", "/var/lib/openvswitch",
		"/etc/ovn", "/run/ovn", "/var/log/ovn", "/var/lib/ovn",
		"/run/kovn", "/etc/kovn",
		// OVN central's database, when it runs as a pod (hostPath).
		"/var/lib/kovn",
	}
}

// kubeletSysctls are host-wide values kubelet insists on at start; inside a
// worker's mount namespace a file with the expected value is mounted over
// each one that differs, so the machine itself is left alone.
func kubeletSysctls() map[string]string {
	return map[string]string{
		"vm/overcommit_memory":      "1",
		"vm/panic_on_oom":           "0",
		"kernel/panic":              "10",
		"kernel/panic_on_oops":      "1",
		"kernel/keys/root_maxkeys":  "1000000",
		"kernel/keys/root_maxbytes": "25000000",
	}
}

// bindDirName turns a standard path into the name of its private directory.
func bindDirName(p string) string { return strings.ReplaceAll(strings.TrimPrefix(p, "/"), "/", "-") }

// prepareNSDir makes the directory that holds the hosts' namespace files a
// private mount: a namespace file can only be bind-mounted onto one. It
// runs once, before the hosts are set up in parallel — two racing binds
// would stack mounts and hide one host's namespace file under the other.
func (l *Lab) prepareNSDir() error {
	nsDir := l.path("ns")
	if err := os.MkdirAll(nsDir, 0o755); err != nil {
		return err
	}
	if isMountPoint(nsDir) {
		return nil
	}
	if _, err := run("mount", "--bind", nsDir, nsDir); err != nil {
		return err
	}
	_, err := run("mount", "--make-private", nsDir)
	return err
}

// setupNodeFS gives a worker its filesystem view and its kubelet's cgroups.
func (l *Lab) setupNodeFS(node string) error {
	if err := l.setupHostFS(node, nodeBinds(), kubeletSysctls()); err != nil {
		return err
	}
	return l.setupNodeCgroups(node)
}

// setupHostFS creates a host's mount and UTS namespaces, kept alive by
// bind mounts of their namespace files, mounts its private directories
// over binds and files with the wanted values over the sysctls that differ.
func (l *Lab) setupHostFS(host string, binds []string, sysctls map[string]string) error {
	for _, f := range []string{l.MountNSPath(host), l.UTSNSPath(host)} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			return err
		}
	}
	if _, err := run("unshare", "--mount="+l.MountNSPath(host), "--uts="+l.UTSNSPath(host),
		"--propagation", "private", "--", "hostname", host); err != nil {
		return err
	}

	var script strings.Builder
	script.WriteString("set -e\n")
	for _, dst := range binds {
		src := l.nodeDir(host, "root", bindDirName(dst))
		if err := os.MkdirAll(src, 0o755); err != nil {
			return err
		}
		if err := l.ensureHostDir(dst); err != nil {
			return err
		}
		if dst == "/run/netns" {
			// The machine's own /run/netns mount (ip netns makes one) is
			// copied in private; the runtime checks the first mount it
			// finds there, so it must go before ours is put on top.
			fmt.Fprintf(&script, "if mountpoint -q %[1]q; then umount -R %[1]q; fi\n", dst)
		}
		fmt.Fprintf(&script, "mount --bind %q %q\n", src, dst)
		if dst == "/run/netns" {
			// As on a real node (systemd makes / shared): a pod that mounts
			// it with HostToContainer propagation, as kovn-node does, must
			// see the namespaces the runtime adds later. The peer group
			// stays inside this host's mount namespace.
			fmt.Fprintf(&script, "mount --make-shared %q\n", dst)
		}
	}
	for key, want := range sysctls {
		cur, err := os.ReadFile("/proc/sys/" + key)
		if err != nil || strings.TrimSpace(string(cur)) == want {
			continue
		}
		f := l.nodeDir(host, "sysctl", strings.ReplaceAll(key, "/", "."))
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(f, []byte(want+"\n"), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(&script, "mount --bind %q /proc/sys/%s\n", f, key)
	}
	_, err := run("nsenter", "--mount="+l.MountNSPath(host), "--", "sh", "-c", script.String())
	return err
}

// ensureHostDir creates a mount point the machine lacks and remembers it,
// so that down can remove it again.
func (l *Lab) ensureHostDir(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	// Record the topmost missing ancestor: removing it removes the rest.
	top := dir
	for {
		parent := filepath.Dir(top)
		if _, err := os.Stat(parent); err == nil || parent == top {
			break
		}
		top = parent
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(l.path("created-dirs"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = fmt.Fprintln(f, top)
	return err
}

// cgroupControllers lists the machine's cgroup v1 hierarchies.
func cgroupControllers() []string {
	entries, _ := os.ReadDir("/sys/fs/cgroup")
	var out []string
	for _, e := range entries {
		p := filepath.Join("/sys/fs/cgroup", e.Name())
		if fi, err := os.Lstat(p); err == nil && fi.IsDir() && isMountPoint(p) {
			out = append(out, p)
		}
	}
	return out
}

// CgroupRoot is the cgroup a worker's kubelet puts its pods under.
func CgroupRoot(node string) string { return "/" + nsPrefix + node }

// setupNodeCgroups gives each kubelet its own cgroup root in every hierarchy;
// kubelet refuses to start when one is missing, and a new cpuset cgroup is
// unusable until it is given CPUs and memory nodes.
func (l *Lab) setupNodeCgroups(node string) error {
	for _, ctrl := range cgroupControllers() {
		dir := ctrl + CgroupRoot(node)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if filepath.Base(ctrl) == "cpuset" || strings.Contains(filepath.Base(ctrl), "cpuset") {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				v, err := os.ReadFile(filepath.Join(ctrl, f))
				if err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(dir, f), v, 0o644); err != nil {
					return fmt.Errorf("%s/%s: %w", dir, f, err)
				}
			}
		}
	}
	return nil
}

// isMountPoint reports whether p is the mount point of some mount in our
// mount namespace.
func isMountPoint(p string) bool {
	for _, m := range mountPoints() {
		if m == p {
			return true
		}
	}
	return false
}

// mountPoints lists the mount points of the caller's mount namespace.
func mountPoints() []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 {
			out = append(out, unescapeMount(fields[4]))
		}
	}
	return out
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space, …).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
