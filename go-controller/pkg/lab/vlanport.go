package lab

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/kovn-io/kovn/go-controller/pkg/lab/supervise"
)

// The lab router's port in the pods' VLAN. A kernel VLAN subinterface
// (ip link add … type vlan) would do, but kernels built without 802.1Q
// (CONFIG_VLAN_8021Q, e.g. small VM kernels) refuse it, and bridge VLAN
// filtering needs the same option. So the ul namespace runs a userspace
// OVS switch of its own, the way a physical router's VLAN-aware switch
// port would:
//
//	br-ul ── vlan-trunk-br ═ vlan-trunk ── br-vlan (OVS, netdev) ── vlan-access ═ br-ul.N (172.20.0.1)
//	                         trunks=N                                 tag=N
//
// br-ul has no vlan_filtering, so it carries the nodes' tagged frames to
// the trunk; the address lives on a veth, not on an OVS internal port, so
// it survives a restart of the switch's daemons.
const (
	vlanTrunk    = "vlan-trunk"    // OVS trunk port
	vlanTrunkBr  = "vlan-trunk-br" // its peer, a port of br-ul
	vlanAccess   = "vlan-access"   // OVS access port
	vlanSwitchBr = "br-vlan"
)

// ulOVSDir holds the ul switch's database, sockets and pid files.
func (l *Lab) ulOVSDir() string { return l.path("ul-ovs") }

func (l *Lab) setupVLANRouterPort() error {
	dev, vid := l.underlayRouterDev(), strconv.Itoa(l.UnderlayVLAN)
	ul := []string{"ip", "-n", underlayNS}
	steps := [][]string{
		append(ul, "link", "add", vlanTrunk, "type", "veth", "peer", "name", vlanTrunkBr),
		append(ul, "link", "set", vlanTrunkBr, "master", underlayBr),
		append(ul, "link", "add", vlanAccess, "type", "veth", "peer", "name", dev),
		append(ul, "addr", "add", UnderlayPodGateway+"/24", "dev", dev),
	}
	for _, link := range []string{vlanTrunk, vlanTrunkBr, vlanAccess, dev} {
		steps = append(steps, append(ul, "link", "set", link, "up"))
	}
	for _, s := range steps {
		if _, err := run(s...); err != nil {
			return err
		}
	}
	// As on every lab veth: userspace OVS forwards partial checksums unfixed.
	for _, link := range []string{vlanTrunk, vlanTrunkBr, vlanAccess, dev} {
		if _, err := inNet("ul", "ethtool", "-K", link, "tx", "off"); err != nil {
			return err
		}
	}
	if err := l.startULSwitch(); err != nil {
		return err
	}
	_, err := run("ovs-vsctl", "--db=unix:"+l.ulOVSDir()+"/db.sock", "--timeout=20",
		"--may-exist", "add-br", vlanSwitchBr, "--", "set", "Bridge", vlanSwitchBr, "datapath_type=netdev",
		"--", "--may-exist", "add-port", vlanSwitchBr, vlanTrunk, "trunks="+vid,
		"--", "--may-exist", "add-port", vlanSwitchBr, vlanAccess, "tag="+vid)
	return err
}

// startULSwitch starts the ul namespace's ovsdb-server and ovs-vswitchd
// (components ovsdb-server:ul and ovs-vswitchd:ul, so `ovs:ul` names both).
func (l *Lab) startULSwitch() error {
	dir := l.ulOVSDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	confDB := dir + "/conf.db"
	if _, err := os.Stat(confDB); os.IsNotExist(err) {
		if _, err := run("ovsdb-tool", "create", confDB, "/usr/share/openvswitch/vswitch.ovsschema"); err != nil {
			return err
		}
	}
	env := ovsEnv(dir)
	logOpts := []string{"-vconsole:info", "-vsyslog:off", "-vfile:off"}
	spec := func(name string, argv ...string) supervise.Spec {
		return supervise.Spec{Name: name + ":ul", NetNS: NetNSPath("ul"), Env: env, Argv: append(argv, logOpts...)}
	}
	if err := l.sup.Ensure(spec("ovsdb-server", "ovsdb-server", confDB,
		"--remote=punix:"+dir+"/db.sock", "--pidfile="+dir+"/ovsdb-server.pid")); err != nil {
		return err
	}
	if err := waitFor("ovsdb-server in ul", 20*time.Second, func() error {
		_, err := run("ovs-vsctl", "--db=unix:"+dir+"/db.sock", "--timeout=2", "--no-wait", "init")
		return err
	}); err != nil {
		return fmt.Errorf("VLAN switch: %w", err)
	}
	return l.sup.Ensure(spec("ovs-vswitchd", "ovs-vswitchd", "unix:"+dir+"/db.sock", "--pidfile="+dir+"/ovs-vswitchd.pid"))
}
