package lab

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kovn-io/kovn/go-controller/pkg/lab/supervise"
)

// Down stops every process the lab started and removes every namespace,
// mount, cgroup, link, directory and state file it made. It finds them
// from what is on the machine, not only from the state file, so it also
// cleans up after a crashed `up`.
func Down(stateDir string, out io.Writer) error {
	if err := killLabProcesses(stateDir); err != nil {
		return err
	}
	var errs []string
	keep := func(err error) {
		if err != nil {
			errs = append(errs, err.Error())
		}
	}
	keep(unmountBelow(stateDir))
	for _, ns := range labNetNamespaces() {
		if _, err := run("ip", "netns", "del", ns); err != nil {
			keep(err)
		}
	}
	keep(removeLabCgroups())
	keep(removeCreatedDirs(filepath.Join(stateDir, "created-dirs")))
	if len(errs) > 0 {
		return fmt.Errorf("down left something behind: %s", strings.Join(errs, "; "))
	}
	if err := os.RemoveAll(stateDir); err != nil {
		return err
	}
	if left := Leftovers(stateDir); len(left) > 0 {
		return fmt.Errorf("down left something behind: %s", strings.Join(left, "; "))
	}
	fmt.Fprintln(out, "lab is down")
	return nil
}

// Leftovers lists whatever of a lab is still on the machine: processes,
// network namespaces, mounts, cgroups, the state directory.
func Leftovers(stateDir string) []string {
	var left []string
	for _, p := range labPids(stateDir) {
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p))
		left = append(left, fmt.Sprintf("process %d (%s)", p, strings.TrimSpace(string(cmd))))
	}
	for _, ns := range labNetNamespaces() {
		left = append(left, "network namespace "+ns)
	}
	for _, m := range mountPoints() {
		if m == stateDir || strings.HasPrefix(m, stateDir+"/") {
			left = append(left, "mount "+m)
		}
	}
	for _, ctrl := range cgroupControllers() {
		cgs, _ := filepath.Glob(filepath.Join(ctrl, nsPrefix+"*"))
		for _, cg := range cgs {
			left = append(left, "cgroup "+cg)
		}
	}
	if _, err := os.Stat(stateDir); err == nil {
		left = append(left, "directory "+stateDir)
	}
	return left
}

// killLabProcesses kills, until none is left, every process that lives in
// a lab namespace, in a lab cgroup, or whose pid the lab recorded.
func killLabProcesses(stateDir string) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		pids := labPids(stateDir)
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes still alive after SIGKILL: %v", pids)
		}
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func labPids(stateDir string) []int {
	nsInodes := map[string]bool{}
	for _, ns := range labNetNamespaces() {
		if ino := inode("/run/netns/" + ns); ino != "" {
			nsInodes["net:["+ino+"]"] = true
		}
	}
	for _, kind := range []string{"mnt", "uts"} {
		files, _ := filepath.Glob(filepath.Join(stateDir, "ns", "*."+kind))
		for _, f := range files {
			if ino := inode(f); ino != "" {
				nsInodes[kind+":["+ino+"]"] = true
			}
		}
	}
	recorded := map[int]bool{}
	pidFiles, _ := filepath.Glob(filepath.Join(stateDir, "run", "*.pid"))
	for _, f := range pidFiles {
		b, _ := os.ReadFile(f)
		if p, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			recorded[p] = true
		}
	}
	self := os.Getpid()
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self || pid == 1 {
			continue
		}
		if recorded[pid] && supervise.Alive(pid) {
			out = append(out, pid)
			continue
		}
		match := false
		for _, kind := range []string{"net", "mnt", "uts"} {
			if l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, kind)); err == nil && nsInodes[l] {
				match = true
			}
		}
		if cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid)); err == nil && strings.Contains(string(cg), ":/"+nsPrefix) {
			match = true
		}
		if match && supervise.Alive(pid) {
			out = append(out, pid)
		}
	}
	return out
}

func inode(path string) string {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return ""
	}
	return strconv.FormatUint(st.Ino, 10)
}

// unmountBelow unmounts everything mounted at or below dir, deepest first:
// namespace files, the private mount that holds them.
func unmountBelow(dir string) error {
	var below []string
	for _, m := range mountPoints() {
		if m == dir || strings.HasPrefix(m, dir+"/") {
			below = append(below, m)
		}
	}
	sort.Slice(below, func(i, j int) bool { return len(below[i]) > len(below[j]) })
	var errs []string
	for _, m := range below {
		if err := syscall.Unmount(m, 0); err != nil && err != syscall.EINVAL {
			if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
				errs = append(errs, fmt.Sprintf("umount %s: %v", m, err))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// removeLabCgroups removes the per-node cgroup trees, leaves first.
func removeLabCgroups() error {
	var errs []string
	for _, ctrl := range cgroupControllers() {
		tops, _ := filepath.Glob(filepath.Join(ctrl, nsPrefix+"*"))
		for _, top := range tops {
			var dirs []string
			_ = filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					dirs = append(dirs, p)
				}
				return nil
			})
			sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
			for _, d := range dirs {
				var err error
				for try := 0; try < 20; try++ {
					if err = syscall.Rmdir(d); err == nil || err == syscall.ENOENT {
						err = nil
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
				if err != nil {
					errs = append(errs, fmt.Sprintf("rmdir %s: %v", d, err))
				}
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// removeCreatedDirs removes the mount points the lab had to create on the
// machine, only if nothing else has put files there since.
func removeCreatedDirs(list string) error {
	b, err := os.ReadFile(list)
	if err != nil {
		return nil
	}
	for _, d := range strings.Fields(string(b)) {
		removeEmptyTree(d)
	}
	return nil
}

func removeEmptyTree(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.IsDir() {
			removeEmptyTree(filepath.Join(dir, e.Name()))
		}
	}
	_ = os.Remove(dir) // fails, as it should, when not empty
}
