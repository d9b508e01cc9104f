package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// How long perf may take: to start (it reads every process' maps before
// it listens), to answer a command, to write its file once interrupted,
// and to report (it reads the symbols of big Go binaries).
const (
	perfStartTimeout  = 30 * time.Second
	perfAckTimeout    = 5 * time.Second
	perfStopTimeout   = 30 * time.Second
	perfReportTimeout = 2 * time.Minute
	// perfMaxRecord bounds a recording whose stop never comes (perf
	// records until its workload, a sleep, exits).
	perfMaxRecord = 2 * time.Hour
)

// perfRecording is a running system-wide `perf record`. Its events start
// disabled and are enabled and disabled through perf's control
// descriptors, so that the samples cover the phase, not perf's start
// (reading every process' maps) nor its stop (writing the file). A nil
// recording is no profile (--perf-hz 0): every method does nothing. One
// that failed keeps why in err, and finish says so.
type perfRecording struct {
	o        PerfOptions
	cmd      *exec.Cmd
	ctl      *os.File    // we write "enable" and "disable" to it
	acks     chan string // perf's answers
	exited   chan struct{}
	stderr   bytes.Buffer
	on, off  time.Time
	err      error
	finished bool
}

// startProfile starts perf and enables its events, and returns when
// perf has said they are on. A failure is kept for finish to report: the
// phase runs without a profile.
func startProfile(o PerfOptions) *perfRecording {
	if o.Hz <= 0 {
		return nil
	}
	r := &perfRecording{o: o}
	if r.err = r.start(); r.err == nil {
		r.err = r.command("enable", perfStartTimeout)
		r.on = time.Now()
	}
	if r.err != nil {
		r.close()
	}
	return r
}

func (r *perfRecording) start() error {
	bin, err := exec.LookPath("perf")
	if err != nil {
		return fmt.Errorf("%w (Debian package linux-perf)", err)
	}
	if err := os.MkdirAll(filepath.Dir(r.o.File), 0o755); err != nil {
		return err
	}
	// perf would keep an older file as <file>.old.
	if err := os.Remove(r.o.File); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	ctlR, ctlW, err := os.Pipe()
	if err != nil {
		return err
	}
	ackR, ackW, err := os.Pipe()
	if err != nil {
		ctlR.Close()
		ctlW.Close()
		return err
	}
	// cpu-clock: the machine has no hardware cycles event. No call
	// graphs (-g) and no build-ids (-B): a small file and a quick stop;
	// perf report then finds the binaries by path.
	r.cmd = exec.Command(bin, "record", "-a", "-e", "cpu-clock", "-F", strconv.Itoa(r.o.Hz), "-B",
		"-D", "-1", "--control", "fd:3,4", "-o", r.o.File,
		"--", "sleep", strconv.Itoa(int(perfMaxRecord.Seconds())))
	r.cmd.ExtraFiles = []*os.File{ctlR, ackW} // fds 3 and 4
	r.cmd.Stdout, r.cmd.Stderr = &r.stderr, &r.stderr
	// Its own process group, so that a ^C reaches us and we stop it; and
	// it stops when we die without stopping it.
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	// Its sleep shares its stderr: once perf has exited, do not wait for
	// a sleep that outlived it.
	r.cmd.WaitDelay = time.Second
	err = r.cmd.Start()
	ctlR.Close()
	ackW.Close()
	if err != nil {
		ctlW.Close()
		ackR.Close()
		return err
	}
	// Room for every ack (two), so that the reader never blocks; it ends
	// when perf and its sleep are gone.
	r.ctl, r.acks, r.exited = ctlW, make(chan string, 2), make(chan struct{})
	go func() {
		defer ackR.Close()
		sc := bufio.NewScanner(ackR)
		for sc.Scan() {
			// perf 6.1 writes "ack\n" with its terminating NUL.
			r.acks <- strings.Trim(sc.Text(), "\x00")
		}
	}()
	go func() {
		r.cmd.Wait()
		close(r.exited)
	}()
	return nil
}

// command sends perf a control command and waits for its ack.
func (r *perfRecording) command(c string, timeout time.Duration) error {
	if _, err := r.ctl.WriteString(c + "\n"); err != nil {
		return fmt.Errorf("perf %s: %w", c, err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case a := <-r.acks:
		if a != "ack" {
			return fmt.Errorf("perf %s: answered %q", c, a)
		}
		return nil
	case <-r.exited:
		return fmt.Errorf("perf record exited (%v): %s", r.cmd.ProcessState, bytes.TrimSpace(r.stderr.Bytes()))
	case <-t.C:
		return fmt.Errorf("perf %s: no answer within %v", c, timeout)
	}
}

// pause disables the events: the end of the profile's window. Call it
// with the phase's other end readings; finish does the slow part.
func (r *perfRecording) pause() {
	if r == nil || r.err != nil || !r.off.IsZero() {
		return
	}
	r.err = r.command("disable", perfAckTimeout)
	r.off = time.Now()
}

// close stops perf if it still runs: interrupted, it writes its file
// (and ends its sleep). For the failure paths; finish calls it too.
func (r *perfRecording) close() {
	if r == nil || r.cmd == nil || r.cmd.Process == nil || r.ctl == nil {
		return
	}
	// An exit status after the interrupt is the sleep's, killed: not an
	// error. Whether the file is whole, perf report says.
	r.cmd.Process.Signal(os.Interrupt)
	t := time.NewTimer(perfStopTimeout)
	defer t.Stop()
	select {
	case <-r.exited:
	case <-t.C:
		r.cmd.Process.Kill()
		<-r.exited
		if r.err == nil {
			r.err = fmt.Errorf("perf record did not stop within %v: killed", perfStopTimeout)
		}
	}
	r.ctl.Close()
	r.ctl = nil
}

// finish stops perf and summarises its file. No profile (nil, nil) for
// --perf-hz 0; an error says why there is none, for the report's
// warnings: a missing perf is no reason to fail a run.
func (r *perfRecording) finish(ctx context.Context) (*CPUProfile, error) {
	if r == nil || r.finished {
		return nil, nil
	}
	r.finished = true
	r.pause()
	r.close()
	if r.err != nil {
		return nil, fmt.Errorf("no CPU profile: %w", r.err)
	}
	ctx, cancel := context.WithTimeout(ctx, perfReportTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "perf", perfReportArgs(r.o.File)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("no CPU profile: perf report -i %s: %w: %s", r.o.File, err, bytes.TrimSpace(stderr.Bytes()))
	}
	rows, err := parsePerfReport(string(out))
	if err != nil {
		return nil, fmt.Errorf("no CPU profile: %w", err)
	}
	var goSyms []string
	if unresolved(rows) {
		// Without the paths, addresses stay addresses: still a profile.
		if out, err := exec.CommandContext(ctx, "perf", perfMmapArgs(r.o.File)...).Output(); err == nil {
			rows, goSyms = resolveGoSymbols(rows, parseMmapPaths(string(out)))
		}
	}
	p := summariseProfile(rows, r.o.Hz)
	p.File, p.WindowSeconds, p.GoSymbolsFrom = r.o.File, secs(r.off.Sub(r.on)), goSyms
	return p, nil
}
