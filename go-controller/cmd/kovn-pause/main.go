// Command kovn-pause is the lab's pod sandbox ("pause") process: it holds
// the pod's namespaces open by existing, exits 0 on SIGINT/SIGTERM so the
// runtime can stop the sandbox cleanly, and, being init of the pod's PID
// namespace, reaps orphaned processes re-parented to it.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// version is set with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "-v" || os.Args[1] == "--version") {
		fmt.Println("kovn-pause", version)
		return
	}
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "kovn-pause: warning: not running as PID 1")
	}
	// As PID 1 the kernel drops signals that have no handler, so SIGTERM
	// only works because Notify installs one.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	reap() // children that exited before the handler existed
	for sig := range sigs {
		if sig == syscall.SIGCHLD {
			reap()
			continue
		}
		fmt.Fprintf(os.Stderr, "kovn-pause: shutting down on %v\n", sig)
		os.Exit(0)
	}
}

// reap collects every exited child: SIGCHLDs coalesce, so one signal may
// stand for many zombies.
func reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
	}
}
