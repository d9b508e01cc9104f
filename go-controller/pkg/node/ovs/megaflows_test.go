package ovs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExactFlowsOncePerProcess(t *testing.T) {
	dir := t.TempDir()
	var calls []string
	answer, fail := "megaflows disabled\n", error(nil)
	e := &ExactFlows{RunDir: dir, Appctl: func(_ context.Context, args ...string) (string, error) {
		calls = append(calls, strings.Join(args, " "))
		return answer, fail
	}}
	ctx := context.Background()
	if _, err := e.Ensure(ctx); err == nil {
		t.Fatal("no pid file: want an error")
	}
	writePID := func(pid string) {
		if err := os.WriteFile(filepath.Join(dir, "ovs-vswitchd.pid"), []byte(pid+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writePID("41")
	for i, want := range []bool{true, false, false} {
		sent, err := e.Ensure(ctx)
		if err != nil || sent != want {
			t.Fatalf("call %d: sent=%v err=%v, want sent=%v", i, sent, err, want)
		}
	}
	if len(calls) != 1 || calls[0] != "-t "+filepath.Join(dir, "ovs-vswitchd.41.ctl")+" upcall/disable-megaflows" {
		t.Fatalf("calls %q", calls)
	}
	// A restarted ovs-vswitchd forgets; a failure is retried next time.
	writePID("42")
	fail = errors.New("connection refused")
	if sent, err := e.Ensure(ctx); err == nil || sent {
		t.Fatalf("failing appctl: sent=%v err=%v", sent, err)
	}
	fail, answer = nil, "unknown command\n"
	if _, err := e.Ensure(ctx); err == nil {
		t.Fatal("unexpected answer: want an error")
	}
	answer = "megaflows disabled\n"
	if sent, err := e.Ensure(ctx); err != nil || !sent {
		t.Fatalf("after restart: sent=%v err=%v", sent, err)
	}
	writePID("garbage")
	if _, err := e.Ensure(ctx); err == nil {
		t.Fatal("garbage pid: want an error")
	}
}
