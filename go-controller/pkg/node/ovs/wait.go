package ovs

import (
	"context"
	"fmt"
	"time"
)

// WaitInstalled blocks until ovn-controller has set external_ids:
// ovn-installed=true on interface ifaceName, i.e. the port's flows are in
// and the pod can send; at once if it already is. It fails right away when
// ovs-vswitchd reports an error for the interface (its error column), and
// after timeout (or when ctx ends) with what it last saw, wrapping ctx's
// error. It is woken by cache events, so it costs nothing while it waits
// and answers as soon as the update arrives.
func (c *Client) WaitInstalled(ctx context.Context, ifaceName string, timeout time.Duration) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// Before the first read: a change between read and wait still wakes.
	wake, stop := c.watches.watch(ifaceKey(ifaceName))
	defer stop()
	for {
		iface, err := c.iface(ctx, ifaceName)
		if err != nil {
			return err
		}
		last := "interface not in the database (deleted, or never added?)"
		if iface != nil {
			var p PortInfo
			p.fill(iface)
			if p.Installed {
				return nil
			}
			if p.Error != "" {
				return fmt.Errorf("interface %s: ovs-vswitchd reports: %s", ifaceName, p.Error)
			}
			last = p.describe()
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return fmt.Errorf("interface %s not installed by ovn-controller after %v: %s: %w",
				ifaceName, time.Since(start).Round(time.Millisecond), last, ctx.Err())
		}
	}
}
