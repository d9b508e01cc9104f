package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPerfMissing: without perf the phase runs and says why it has no
// profile.
func TestPerfMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	r := startProfile(PerfOptions{Hz: 99, File: filepath.Join(t.TempDir(), "x.perf.data")})
	r.pause()
	p, err := r.finish(context.Background())
	if p != nil || err == nil || !strings.Contains(err.Error(), "no CPU profile") || !strings.Contains(err.Error(), "linux-perf") {
		t.Errorf("finish without perf = %v, %v; want no profile and an error naming linux-perf", p, err)
	}
	var off *perfRecording // --perf-hz 0
	if startProfile(PerfOptions{}) != nil {
		t.Error("Hz 0 started a recording")
	}
	off.pause()
	off.close()
	if p, err := off.finish(context.Background()); p != nil || err != nil {
		t.Errorf("finish of no recording = %v, %v", p, err)
	}
}

// perfUsable skips unless perf can record system-wide here (root, perf
// installed) and the run is not -short: it takes a few seconds.
func perfUsable(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: records with perf for seconds")
	}
	if os.Geteuid() != 0 {
		t.Skip("perf record -a needs root")
	}
	if _, err := exec.LookPath("perf"); err != nil {
		t.Skip("no perf (Debian package linux-perf)")
	}
}

// TestPerfRecordsBusyLoop records the machine while a shell spins under
// a name of its own and checks that the profile gives it the CPU.
func TestPerfRecordsBusyLoop(t *testing.T) {
	perfUsable(t)
	dir := t.TempDir()
	spin := filepath.Join(dir, "kovnperfspin") // the comm perf will see
	if err := os.Symlink("/bin/sh", spin); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "out", "t.perf.data")
	r := startProfile(PerfOptions{Hz: DefaultPerfHz, File: file})
	loop := exec.Command(spin, "-c", "while :; do :; done")
	if err := loop.Start(); err != nil {
		r.close()
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	r.pause()
	loop.Process.Kill()
	loop.Wait()
	p, err := r.finish(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.exited:
	default:
		t.Error("perf still runs after finish")
	}
	if _, err := os.Stat(file); err != nil {
		t.Errorf("perf.data not kept: %v", err)
	}
	if p.File != file || p.Hz != DefaultPerfHz || p.Samples == 0 || p.WindowSeconds < 0.9 {
		t.Errorf("profile %+v: want file %s, %d Hz, samples, a window of about 1 s", p, file, DefaultPerfHz)
	}
	var spun *CommandCPU
	for i, c := range p.ByCommand {
		if c.Comm == "kovnperfspin" {
			spun = &p.ByCommand[i]
		}
	}
	// A core for about a second; the machine may be busy with others.
	if spun == nil || spun.CPUSeconds < 0.3 || len(spun.Symbols) == 0 {
		t.Fatalf("busy loop not found with ≥ 0.3 CPU s and its symbols in %+v", p.ByCommand)
	}
	t.Logf("busy loop: %.2f CPU s (%.0f%% of %d samples) in %.2f s; rows: %v", spun.CPUSeconds, 100*spun.Share, p.Samples, p.WindowSeconds, p.rows(""))
}

// TestPerfCloseStops: a phase that fails before its end must not leave
// perf running.
func TestPerfCloseStops(t *testing.T) {
	perfUsable(t)
	r := startProfile(PerfOptions{Hz: 99, File: filepath.Join(t.TempDir(), "c.perf.data")})
	if r.err != nil {
		t.Fatal(r.err)
	}
	r.close()
	select {
	case <-r.exited:
	default:
		t.Fatal("perf still runs after close")
	}
	r.close() // twice: no-op
}
