package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

const (
	// readyTimeout bounds every wait for a daemon or connection; generous
	// for a loaded 2-core CI machine, short enough to fail a broken setup fast.
	readyTimeout = 10 * time.Second
	stopTimeout  = 3 * time.Second
	logTailLines = 40
)

// daemon is one foreground child process with its own log file.
type daemon struct {
	name    string
	logFile string // written by the daemon itself (--log-file)
	outFile string // stdout+stderr, for what is printed before the log opens
	cmd     *exec.Cmd
	done    chan struct{}
	err     error // exit status; read only after done is closed
}

func startDaemon(dir string, env []string, name, bin string, args ...string) (*daemon, error) {
	d := &daemon{
		name:    name,
		logFile: filepath.Join(dir, name+".log"),
		outFile: filepath.Join(dir, name+".out"),
		done:    make(chan struct{}),
	}
	// Appended to, like the log, so a restarted daemon's output follows
	// the previous run's instead of replacing it.
	out, err := os.OpenFile(d.outFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	d.cmd = exec.Command(bin, append(args, "--log-file="+d.logFile, "-vconsole:off", "-vsyslog:off")...)
	d.cmd.Dir, d.cmd.Env, d.cmd.Stdout, d.cmd.Stderr = dir, env, out, out
	// If the test binary dies without running cleanups (e.g. -timeout),
	// the kernel kills the daemon instead of leaving it behind.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	started := make(chan error, 1)
	go func() {
		defer close(d.done)
		defer out.Close()
		// Pdeathsig fires when the forking *thread* exits, so this
		// goroutine keeps its thread until the child is gone.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := d.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		d.err = d.cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return d, nil
}

// exited reports whether the process has ended and why.
func (d *daemon) exited() (bool, error) {
	select {
	case <-d.done:
		if d.err == nil {
			return true, errors.New("exited with status 0")
		}
		return true, d.err
	default:
		return false, nil
	}
}

// stop asks the daemon to exit cleanly (so its log is complete) and kills it
// if it does not within stopTimeout.
func (d *daemon) stop() {
	if done, _ := d.exited(); done {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(stopTimeout):
		_ = d.cmd.Process.Kill()
		<-d.done
	}
}

// kill ends the daemon with SIGKILL and waits until it is gone.
func (d *daemon) kill() {
	if done, _ := d.exited(); done {
		return
	}
	_ = d.cmd.Process.Kill()
	<-d.done
}

// report is what a failed test prints about the daemon: the end of its log,
// plus anything it printed to stdout/stderr beyond the usual banner.
func (d *daemon) report() string {
	var b strings.Builder
	fmt.Fprintf(&b, "--- %s: last %d lines of %s ---\n%s", d.name, logTailLines, d.logFile, tail(d.logFile, logTailLines))
	out := tail(d.outFile, logTailLines)
	for line := range strings.Lines(out) {
		if strings.TrimSpace(line) != "" && !strings.Contains(line, "opened log file") {
			fmt.Fprintf(&b, "--- %s: stdout/stderr ---\n%s", d.name, out)
			break
		}
	}
	return b.String()
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)\n", err)
	}
	lines := bytes.SplitAfter(bytes.TrimRight(b, "\n"), []byte("\n"))
	return string(bytes.Join(lines[max(0, len(lines)-n):], nil)) + "\n"
}

// waitFor polls cond until it succeeds, any of the daemons exits, or
// readyTimeout passes.
func waitFor(what string, daemons []*daemon, cond func() error) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		for _, d := range daemons {
			if done, why := d.exited(); done {
				return fmt.Errorf("waiting for %s: %s %v", what, d.name, why)
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v: %w", what, readyTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
