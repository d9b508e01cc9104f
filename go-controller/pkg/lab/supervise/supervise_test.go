package supervise

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func newSup(t *testing.T) *Supervisor {
	d := t.TempDir()
	return &Supervisor{Dir: filepath.Join(d, "run"), LogDir: filepath.Join(d, "log")}
}

func TestStartStopRestart(t *testing.T) {
	s := newSup(t)
	spec := Spec{Name: "sleeper", Argv: []string{"sh", "-c", "echo hello; exec sleep 60"}}
	if err := s.Ensure(spec); err != nil {
		t.Fatal(err)
	}
	st := s.Status("sleeper")
	if !st.Running || st.Pid == 0 {
		t.Fatalf("status after start: %+v", st)
	}
	t.Cleanup(func() { _ = syscall.Kill(st.Pid, syscall.SIGKILL) })
	// Ensure on a running component must not start a second one.
	if err := s.Ensure(spec); err != nil {
		t.Fatal(err)
	}
	if again := s.Status("sleeper"); again.Pid != st.Pid {
		t.Fatalf("Ensure restarted a running component: pid %d → %d", st.Pid, again.Pid)
	}
	if err := s.Start("sleeper"); err == nil {
		t.Fatal("Start of a running component should fail")
	}
	if err := s.Stop("sleeper", syscall.SIGKILL, time.Second); err != nil {
		t.Fatal(err)
	}
	if s.Status("sleeper").Running || Alive(st.Pid) {
		t.Fatal("still running after Stop")
	}
	if err := s.Start("sleeper"); err != nil {
		t.Fatal(err)
	}
	st2 := s.Status("sleeper")
	t.Cleanup(func() { _ = syscall.Kill(st2.Pid, syscall.SIGKILL) })
	if !st2.Running || st2.Pid == st.Pid {
		t.Fatalf("restart: %+v (old pid %d)", st2, st.Pid)
	}
	if err := waitLog(s.LogPath("sleeper"), "hello", 2); err != nil {
		t.Fatal(err)
	}
}

func waitLog(path, word string, times int) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if strings.Count(string(b), word) >= times {
			return nil
		}
		if time.Now().After(deadline) {
			return &os.PathError{Op: "wait for " + word, Path: path, Err: os.ErrNotExist}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCrashedComponentIsNotRunning(t *testing.T) {
	s := newSup(t)
	if err := s.Ensure(Spec{Name: "crash", Argv: []string{"false"}}); err != nil {
		t.Fatal(err)
	}
	pid := s.Pid("crash")
	if !WaitGone(pid, 5*time.Second) {
		t.Fatal("a crashed process still looks alive (zombie not recognised?)")
	}
	if s.Status("crash").Running {
		t.Fatal("status says running")
	}
	// Stopping what already died is not an error.
	if err := s.Stop("crash", 0, time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestUnknownComponent(t *testing.T) {
	s := newSup(t)
	_ = s.Register(Spec{Name: "a", Argv: []string{"true"}})
	err := s.Start("b")
	if err == nil || !strings.Contains(err.Error(), "known: a") {
		t.Fatalf("want an error naming the known components, got %v", err)
	}
	if names := s.Names(); len(names) != 1 || names[0] != "a" {
		t.Fatalf("Names() = %v", names)
	}
}

func TestNamespacedStartFailsClearly(t *testing.T) {
	s := newSup(t)
	_ = s.Register(Spec{Name: "x", Argv: []string{"no-such-binary-kovn"}})
	if err := s.Start("x"); err == nil || !strings.Contains(err.Error(), "no-such-binary-kovn") {
		t.Fatalf("want a clear error for a missing binary, got %v", err)
	}
}
