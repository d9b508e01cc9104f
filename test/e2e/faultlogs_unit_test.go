package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestLogContext runs without a lab: it picks the lines of both log
// formats that fall in the window around a failure.
func TestLogContext(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name+".log"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	at := time.Date(2026, 11, 21, 18, 10, 30, 500e6, time.Local)
	// OVS stamps UTC seconds, klog local microseconds.
	ovs := func(d time.Duration, msg string) string {
		return at.Add(d).UTC().Format("2006-01-02T15:04:05Z") + "|1|bridge|INFO|" + msg
	}
	klog := func(d time.Duration, msg string) string {
		return "I" + at.Add(d).Format("0102 15:04:05.000000") + " 1 x.go:1] " + msg
	}
	inOVS, inKlog := ovs(-time.Second, "added interface kvX"), klog(-400*time.Millisecond, "purge")
	write("ovs-vswitchd:node1", ovs(-2*time.Second, "too early")+"\n"+inOVS+"\n"+ovs(3*time.Second, "too late")+"\n")
	write("kovn-node:node2", klog(-1600*time.Millisecond, "too early")+"\n"+inKlog+"\nnot a log line\n")
	got := logContext(dir, at, 10)
	want := []string{"ovs-vswitchd:node1: " + inOVS, "kovn-node:node2: " + inKlog}
	if len(got) != len(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: got %q, want %q", i, got[i], want[i])
		}
	}
	if got := logContext(dir, at, 1); len(got) != 2 || got[1] != "(more lines cut at 1)" {
		t.Errorf("cap: got %q", got)
	}
}
