// Package supervise starts and stops the lab's long-running processes.
//
// The lab has no init system of its own: every daemon is started detached
// (its own session, output to a log file) so that it outlives the kovn-lab
// command that started it. What is needed to start it again — argv, env,
// namespaces — is written next to its pid file, so `kovn-lab start X` after
// `stop X` (or after a crash) replays exactly the same command.
package supervise

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Spec is everything needed to (re)start one daemon.
type Spec struct {
	Name string   `json:"name"`
	Argv []string `json:"argv"`
	Env  []string `json:"env,omitempty"`
	// Namespaces to enter, as nsenter takes them: files under /run/netns or
	// bind-mounted namespace files. Empty means the caller's namespace.
	NetNS   string `json:"netns,omitempty"`
	MountNS string `json:"mountns,omitempty"`
	UTSNS   string `json:"utsns,omitempty"`
	Dir     string `json:"dir,omitempty"`
}

// Supervisor keeps specs, pid files and logs in one directory.
type Supervisor struct {
	Dir    string // specs and pid files
	LogDir string
}

// Status of one component.
type Status struct {
	Name    string
	Pid     int
	Running bool
	Log     string
}

func (s *Supervisor) specPath(name string) string { return filepath.Join(s.Dir, name+".json") }
func (s *Supervisor) pidPath(name string) string  { return filepath.Join(s.Dir, name+".pid") }

// LogPath is where a component's stdout and stderr go.
func (s *Supervisor) LogPath(name string) string { return filepath.Join(s.LogDir, name+".log") }

// Register stores a spec without starting it.
func (s *Supervisor) Register(spec Spec) error {
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(s.specPath(spec.Name), b, 0o644)
}

// Spec reads a registered spec.
func (s *Supervisor) Spec(name string) (Spec, error) {
	var spec Spec
	b, err := os.ReadFile(s.specPath(name))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return spec, fmt.Errorf("no component %q in this lab (known: %s)", name, strings.Join(s.Names(), ", "))
		}
		return spec, err
	}
	return spec, json.Unmarshal(b, &spec)
}

// Names lists registered components, sorted.
func (s *Supervisor) Names() []string {
	matches, _ := filepath.Glob(filepath.Join(s.Dir, "*.json"))
	names := make([]string, 0, len(matches))
	for _, m := range matches {
		names = append(names, strings.TrimSuffix(filepath.Base(m), ".json"))
	}
	sort.Strings(names)
	return names
}

// Ensure registers the spec and starts it unless it already runs.
func (s *Supervisor) Ensure(spec Spec) error {
	if err := s.Register(spec); err != nil {
		return err
	}
	if st := s.Status(spec.Name); st.Running {
		return nil
	}
	return s.Start(spec.Name)
}

// Start launches a registered component in the background.
func (s *Supervisor) Start(name string) error {
	spec, err := s.Spec(name)
	if err != nil {
		return err
	}
	if st := s.Status(name); st.Running {
		return fmt.Errorf("%s already runs as pid %d", name, st.Pid)
	}
	if err := os.MkdirAll(s.LogDir, 0o755); err != nil {
		return err
	}
	logf, err := os.OpenFile(s.LogPath(name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "==== %s kovn-lab starts %s: %s\n", time.Now().Format(time.RFC3339), name, strings.Join(spec.Argv, " "))

	argv := spec.Argv
	// nsenter execs the command after joining the namespaces (no --fork), so
	// the pid we record is the daemon's own pid.
	if spec.NetNS != "" || spec.MountNS != "" || spec.UTSNS != "" {
		ns := []string{"nsenter"}
		if spec.NetNS != "" {
			ns = append(ns, "--net="+spec.NetNS)
		}
		if spec.MountNS != "" {
			ns = append(ns, "--mount="+spec.MountNS)
		}
		if spec.UTSNS != "" {
			ns = append(ns, "--uts="+spec.UTSNS)
		}
		argv = append(append(ns, "--"), argv...)
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	cmd := exec.Command(path, argv[1:]...)
	cmd.Env = append(os.Environ(), spec.Env...)
	cmd.Dir = spec.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	pid := cmd.Process.Pid
	if err := writeFileAtomic(s.pidPath(name), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		return err
	}
	// Reap it if it dies while we are still running, so that a quick crash
	// is reported instead of lingering as a zombie that looks alive.
	go func() { _ = cmd.Wait() }()
	return nil
}

// Pid returns the recorded pid of a component, or 0.
func (s *Supervisor) Pid(name string) int {
	b, err := os.ReadFile(s.pidPath(name))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// Status reports whether a component's recorded process is alive.
func (s *Supervisor) Status(name string) Status {
	st := Status{Name: name, Pid: s.Pid(name), Log: s.LogPath(name)}
	st.Running = st.Pid > 0 && Alive(st.Pid)
	return st
}

// Stop sends sig (SIGTERM when zero) and waits up to grace for the process
// to go, then kills it. Stopping a component that is not running is no error.
func (s *Supervisor) Stop(name string, sig syscall.Signal, grace time.Duration) error {
	if _, err := s.Spec(name); err != nil {
		return err
	}
	pid := s.Pid(name)
	if pid == 0 || !Alive(pid) {
		_ = os.Remove(s.pidPath(name))
		return nil
	}
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	_ = syscall.Kill(pid, sig)
	if !WaitGone(pid, grace) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		if !WaitGone(pid, 5*time.Second) {
			return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", name, pid)
		}
	}
	_ = os.Remove(s.pidPath(name))
	return nil
}

// Alive is true for an existing process that is not a zombie.
func Alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name, which may itself
	// contain spaces or parentheses.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	return b[i+2] != 'Z' && b[i+2] != 'X'
}

// WaitGone polls until pid is gone or the timeout passes.
func WaitGone(pid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if !Alive(pid) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
