package kovntest

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/kovn-io/kovn/go-controller/pkg/testenv"
)

// AddChassis registers a chassis as ovn-controller would: the Chassis
// with its tunnel endpoint and hostname, and its Chassis_Private row.
// With port-up-notif (what every current ovn-controller announces)
// northd leaves Port_Binding.up to the chassis; without it northd calls a
// port up as soon as it is bound.
func (c *Cluster) AddChassis(t *testing.T, name, hostname, ip string, nbCfg int) {
	t.Helper()
	c.OVN.SBCtl(t, "chassis-add", name, "geneve", ip,
		"--", "set", "chassis", name, "hostname="+hostname, "other_config:port-up-notif=true")
	uuid := strings.TrimSpace(c.OVN.SBCtl(t, "--bare", "--columns=_uuid", "find", "chassis", "name="+name))
	c.OVN.SBCtl(t, "create", "chassis_private", "name="+name, "chassis="+uuid, "nb_cfg="+strconv.Itoa(nbCfg))
}

// Bind binds a port to a chassis and sets Port_Binding.up, as
// ovn-controller does once it has installed the port. It first waits for
// northd to make the Port_Binding from the NB port: the topology was just
// written, and lsp-bind fails on a port northd has not reached yet.
func (c *Cluster) Bind(t *testing.T, port, chassis string, up bool) {
	t.Helper()
	testenv.WaitFor(t, Timeout, func() error {
		if strings.TrimSpace(c.OVN.SBCtl(t, "--bare", "--columns=_uuid", "find", "port_binding", "logical_port="+port)) == "" {
			return fmt.Errorf("no Port_Binding %s in SB yet", port)
		}
		return nil
	})
	c.OVN.SBCtl(t, "lsp-bind", port, chassis)
	val := "false"
	if up {
		val = "true"
	}
	c.OVN.SBCtl(t, "set", "port_binding", port, "up="+val)
}
