package ovs

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"k8s.io/klog/v2"
)

// FlowPurger empties the userspace datapath's flow cache after every burst
// of OpenFlow changes on the integration bridge.
//
// Why: OVS 3.1's userspace datapath (dpif-netdev) applies a revalidator's
// "modify actions" to whichever installed flow a lookup of the flow's key
// finds first, not to the flow the revalidator meant: it looks up by key,
// not by flow id. After a NetworkPolicy change a broad new flow ("drop
// everything from pod A") can coexist with a narrow old one ("allow pod A
// to pod B port 80"); the revalidator's attempt to turn the narrow one
// into a drop lands on the broad one, and the narrow one goes on allowing
// new connections for as long as traffic keeps it alive. In the lab this
// was one wrongly allowed entry in most runs of the NetworkPolicy truth
// table: the installed flow said allow, ofproto/trace of its key said
// drop, and `ovs-appctl revalidator/purge` cured it. Purging deletes flows
// by id, so it is not affected; afterwards every flow is translated again
// from the current tables.
//
// Every adds a purge at a fixed interval whatever happened, so that a
// stale flow from a cause the monitor does not see lives at most that long.
//
// Disabling megaflows also avoids the overlap, but multiplied upcalls by
// about 70 under the policy suite's traffic and starved ovs-vswitchd; a
// purge costs one upcall per active megaflow, once per burst of changes.
// The kernel datapath looks flows up by id and does not need this.
type FlowPurger struct {
	Bridge string
	// Quiet is how long the OpenFlow table must stay unchanged before the
	// purge; MaxDelay bounds the wait during a long burst.
	Quiet, MaxDelay time.Duration
	// Every, if positive, is the longest time between two purges.
	Every time.Duration
	// Monitor streams one line per OpenFlow change (default: ovs-ofctl
	// monitor); Purge empties the datapath flow cache (default:
	// revalidator/purge on ovs-vswitchd's control socket).
	Monitor func(ctx context.Context, bridge string) (io.ReadCloser, func() error, error)
	Purge   func(ctx context.Context) error
	// Purged, if set, is told after each purge (for tests and metrics):
	// why ("change" or "periodic") and the purge's error.
	Purged func(reason string, err error)
}

// Run watches and purges until ctx ends, restarting the monitor (for
// example after ovs-vswitchd restarts) with a short pause.
func (p *FlowPurger) Run(ctx context.Context) {
	changes := make(chan struct{}, 1)
	go p.watch(ctx, changes)
	var timer *time.Timer
	var fire <-chan time.Time
	var first time.Time
	var periodic <-chan time.Time
	if p.Every > 0 {
		t := time.NewTicker(p.Every)
		defer t.Stop()
		periodic = t.C
	}
	purge := func(reason string) {
		err := p.purge(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			klog.ErrorS(err, "purge the userspace datapath's flows", "bridge", p.Bridge, "reason", reason)
		}
		if p.Purged != nil {
			p.Purged(reason, err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return
		case <-periodic:
			purge("periodic")
		case <-changes:
			now := time.Now()
			if first.IsZero() {
				first = now
			}
			at := now.Add(p.Quiet)
			if limit := first.Add(p.MaxDelay); at.After(limit) {
				at = limit
			}
			if timer == nil {
				timer = time.NewTimer(time.Until(at))
			} else {
				timer.Stop()
				select { // drain a fire that raced the stop
				case <-timer.C:
				default:
				}
				timer.Reset(time.Until(at))
			}
			fire = timer.C
		case <-fire:
			fire, first = nil, time.Time{}
			purge("change")
		}
	}
}

// watch feeds changes from the monitor, and starts a new monitor when one
// ends. A (re)started monitor counts as a change: flows may have changed
// while nobody watched.
func (p *FlowPurger) watch(ctx context.Context, changes chan<- struct{}) {
	monitor := p.Monitor
	if monitor == nil {
		monitor = ofctlMonitor
	}
	signal := func() {
		select {
		case changes <- struct{}{}:
		default: // one pending signal is enough
		}
	}
	for ctx.Err() == nil {
		out, wait, err := monitor(ctx, p.Bridge)
		if err != nil {
			klog.ErrorS(err, "watch OpenFlow changes", "bridge", p.Bridge)
		} else {
			signal()
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if strings.Contains(sc.Text(), "event=") {
					signal()
				}
			}
			out.Close()
			if err := wait(); err != nil && ctx.Err() == nil {
				klog.InfoS("OpenFlow monitor ended; restarting it", "bridge", p.Bridge, "err", err)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (p *FlowPurger) purge(ctx context.Context) error {
	if p.Purge != nil {
		return p.Purge(ctx)
	}
	_, err := Appctl(ctx, "ovs-vswitchd", "revalidator/purge")
	return err
}

// ofctlMonitor streams br-int's flow changes without the initial table
// and without actions (only the fact of a change matters). stderr shares
// stdout's pipe: with stderr on /dev/null (exec's default), OVS 3.1's
// ovs-ofctl monitor printed its first reply and then no flow event at all,
// which silently turned the purge after changes off.
func ofctlMonitor(ctx context.Context, bridge string) (io.ReadCloser, func() error, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.CommandContext(ctx, "ovs-ofctl", "monitor", bridge, "watch:!initial,!actions")
	cmd.Stdout, cmd.Stderr = w, w
	err = cmd.Start()
	w.Close() // the child holds its own copy
	if err != nil {
		r.Close()
		return nil, nil, fmt.Errorf("ovs-ofctl monitor %s: %w", bridge, err)
	}
	return r, cmd.Wait, nil
}
