package lab

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/kovn-io/kovn/go-controller/pkg/lab/pki"
	"github.com/kovn-io/kovn/go-controller/pkg/lab/supervise"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdbtls"
)

// OVN central in the lab: the NB and SB databases, each either one
// standalone ovsdb-server or (--ovn-ha) a 3-member RAFT cluster, and
// northd. Hosts connect over SSL with certificates from the lab's OVN CA
// unless the lab was asked for plain TCP; the root namespace (tests,
// ovn-nbctl) uses each member's unix socket.

// ovnHAMembers is the size of a clustered database: three members keep a
// majority when one is killed.
const ovnHAMembers = 3

// memberPortStep separates the ports of RAFT members sharing the
// control-plane address: member i serves clients on NBPort+10i (SBPort+10i)
// and its peers on NBPort+2+10i (SBPort+2+10i).
const memberPortStep = 10

// ovnDatabase is NB or SB.
type ovnDatabase struct {
	short  string // "nb", "sb": the first member's component name
	name   string // OVSDB database name, for ovsdb-tool and cluster/status
	schema string
	port   int
}

func ovnDatabases() []ovnDatabase {
	return []ovnDatabase{
		{"nb", "OVN_Northbound", "/usr/share/ovn/ovn-nb.ovsschema", NBPort},
		{"sb", "OVN_Southbound", "/usr/share/ovn/ovn-sb.ovsschema", SBPort},
	}
}

func ovnDatabaseByName(db string) (ovnDatabase, error) {
	for _, d := range ovnDatabases() {
		if d.short == db {
			return d, nil
		}
	}
	return ovnDatabase{}, fmt.Errorf("OVN database %q: want nb or sb", db)
}

// OVNMember is one ovsdb-server of NB or SB.
type OVNMember struct {
	Name       string // component name: nb, nb2, nb3
	Index      int
	ClientPort int
	RaftPort   int // 0 when standalone
}

// OVNMembers lists the members of db ("nb" or "sb").
func (l *Lab) OVNMembers(db string) []OVNMember {
	d, err := ovnDatabaseByName(db)
	if err != nil {
		return nil
	}
	if !l.OVNHA {
		return []OVNMember{{Name: d.short, ClientPort: d.port}}
	}
	ms := make([]OVNMember, ovnHAMembers)
	for i := range ms {
		name := d.short
		if i > 0 {
			name += strconv.Itoa(i + 1)
		}
		p := d.port + memberPortStep*i
		ms[i] = OVNMember{Name: name, Index: i, ClientPort: p, RaftPort: p + 2}
	}
	return ms
}

func (l *Lab) ovnFile(m OVNMember, ext string) string { return l.path("ovn", m.Name+"."+ext) }

// ovnProto is how hosts reach OVN central.
func (l *Lab) ovnProto() string {
	if l.OVNPlainTCP {
		return "tcp"
	}
	return "ssl"
}

// OVNRemotes are the addresses hosts use for db, one per member.
func (l *Lab) OVNRemotes(db string) []string {
	var out []string
	for _, m := range l.OVNMembers(db) {
		out = append(out, l.ovnProto()+":"+net.JoinHostPort(l.ovnCentralIP(), strconv.Itoa(m.ClientPort)))
	}
	return out
}

// OVNUnixRemote is db's address for the root namespace, in the
// comma-separated form ovn-nbctl, ovn-sbctl and northd take.
func (l *Lab) OVNUnixRemote(db string) string {
	var out []string
	for _, m := range l.OVNMembers(db) {
		out = append(out, "unix:"+l.ovnFile(m, "sock"))
	}
	return strings.Join(out, ",")
}

// ovnPKI holds the certificates of OVN central and of every client the
// lab runs: the controller, each host's ovn-controller, and an operator
// identity for kovnctl and ovn-nbctl over SSL.
func (l *Lab) ovnPKI() (*pki.OVNBundle, error) {
	clients := []string{"kovn-controller", "admin"}
	for _, h := range l.hosts() {
		clients = append(clients, ovnControllerIdentity(h))
	}
	b, err := pki.EnsureOVN(pki.OVNRequest{Dir: l.path("pki", "ovn"), ServerIPs: []net.IP{net.ParseIP(ControlPlaneIP), net.ParseIP("127.0.0.1")}, Clients: clients})
	if err != nil {
		return nil, fmt.Errorf("OVN certificates: %w", err)
	}
	return b, nil
}

func ovnControllerIdentity(host string) string { return "ovn-controller-" + host }

// ovnSSLFlags are the --private-key/--certificate/--ca-cert options of
// an OVN daemon or ctl tool for the given client identity; none with
// plain TCP.
func (l *Lab) ovnSSLFlags(identity string) ([]string, error) {
	f, err := l.OVNClientTLS(identity)
	return f.CtlArgs(), err
}

// controllerNBFlags are kovn-controller's NB flags: every member, and its
// client certificate over SSL.
func (l *Lab) controllerNBFlags() ([]string, error) {
	var out []string
	for _, r := range l.OVNRemotes("nb") {
		out = append(out, "--nb-address="+r)
	}
	f, err := l.OVNClientTLS("kovn-controller")
	if err != nil || f.Empty() {
		return out, err
	}
	return append(out, "--nb-cert="+f.Certificate, "--nb-key="+f.PrivateKey, "--nb-ca-cert="+f.CACert), nil
}

// ovnCentralSpecs are the members of NB and SB, then northd, in start
// order. A clustered database is created by its first member and joined
// by the others, the way ovn-ctl does it.
func (l *Lab) ovnCentralSpecs() ([]supervise.Spec, error) {
	dir := l.path("ovn")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var serverSSL []string
	if !l.OVNPlainTCP {
		b, err := l.ovnPKI()
		if err != nil {
			return nil, err
		}
		serverSSL = []string{"--private-key=" + b.Server.Key, "--certificate=" + b.Server.Cert, "--ca-cert=" + b.CACert}
	}
	listen := "p" + l.ovnProto()
	var specs []supervise.Spec
	for _, d := range ovnDatabases() {
		members := l.OVNMembers(d.short)
		for _, m := range members {
			if err := l.createOVNDatabase(d, members, m); err != nil {
				return nil, fmt.Errorf("%s: %w", m.Name, err)
			}
			specs = append(specs, supervise.Spec{Name: m.Name, NetNS: NetNSPath("cp"), Env: ovsEnv(dir), Argv: append([]string{
				"ovsdb-server", l.ovnFile(m, "db"),
				"--remote=punix:" + l.ovnFile(m, "sock"),
				"--remote=" + listen + ":" + strconv.Itoa(m.ClientPort) + ":" + ControlPlaneIP,
				"--pidfile=" + l.ovnFile(m, "pid"), "--unixctl=" + l.ovnFile(m, "ctl"),
				"-vconsole:info", "-vsyslog:off", "-vfile:off",
			}, serverSSL...)})
		}
	}
	specs = append(specs, supervise.Spec{Name: "northd", NetNS: NetNSPath("cp"), Env: ovsEnv(dir), Argv: []string{
		"ovn-northd", "--ovnnb-db=" + l.OVNUnixRemote("nb"), "--ovnsb-db=" + l.OVNUnixRemote("sb"),
		"--pidfile=" + dir + "/northd.pid", "--unixctl=" + dir + "/northd.ctl",
		"-vconsole:info", "-vsyslog:off", "-vfile:off",
	}})
	return specs, nil
}

// createOVNDatabase makes m's database file if it does not exist yet. A
// file of the other kind (standalone vs clustered) means the state
// directory belongs to a lab of another shape.
func (l *Lab) createOVNDatabase(d ovnDatabase, members []OVNMember, m OVNMember) error {
	file := l.ovnFile(m, "db")
	if _, err := os.Stat(file); err == nil {
		_, clusterErr := run("ovsdb-tool", "db-is-clustered", file)
		if clustered := clusterErr == nil; clustered != l.OVNHA {
			return fmt.Errorf("%s is clustered=%v but the lab wants --ovn-ha=%v; run kovn-lab down first", file, clustered, l.OVNHA)
		}
		return nil
	}
	if !l.OVNHA {
		_, err := run("ovsdb-tool", "create", file, d.schema)
		return err
	}
	raft := func(m OVNMember) string {
		return l.ovnProto() + ":" + net.JoinHostPort(ControlPlaneIP, strconv.Itoa(m.RaftPort))
	}
	if m.Index == 0 {
		_, err := run("ovsdb-tool", "create-cluster", file, d.schema, raft(m))
		return err
	}
	// A joining member needs only one reachable member to find the rest.
	_, err := run("ovsdb-tool", "join-cluster", file, d.name, raft(m), raft(members[0]))
	return err
}

// ovnMemberReady reports whether member name of db serves: its unix
// socket answers and, when clustered, it has joined and sees a leader.
func (l *Lab) ovnMemberReady(db string, m OVNMember) error {
	c, err := net.DialTimeout("unix", l.ovnFile(m, "sock"), time.Second)
	if err != nil {
		return err
	}
	c.Close()
	if !l.OVNHA {
		return nil
	}
	st, err := l.ovnClusterStatus(db, m)
	if err != nil {
		return err
	}
	if !strings.Contains(st, "Status: cluster member") || strings.Contains(st, "Leader: unknown") {
		return fmt.Errorf("%s has not joined its cluster yet", m.Name)
	}
	return nil
}

func (l *Lab) ovnClusterStatus(db string, m OVNMember) (string, error) {
	d, err := ovnDatabaseByName(db)
	if err != nil {
		return "", err
	}
	return run("ovs-appctl", "--timeout=5", "-t", l.ovnFile(m, "ctl"), "cluster/status", d.name)
}

// OVNLeader names the member of db ("nb" or "sb") that is the RAFT leader.
func (l *Lab) OVNLeader(db string) (string, error) {
	if !l.OVNHA {
		return "", fmt.Errorf("the lab's OVN databases are not clustered (kovn-lab up --ovn-ha)")
	}
	for _, m := range l.OVNMembers(db) {
		st, err := l.ovnClusterStatus(db, m)
		if err == nil && strings.Contains(st, "\nRole: leader") {
			return m.Name, nil
		}
	}
	return "", fmt.Errorf("no member of %s is the leader", db)
}

// ovnMemberOf finds the member a component name stands for.
func (l *Lab) ovnMemberOf(name string) (string, OVNMember, bool) {
	for _, db := range []string{"nb", "sb"} {
		for _, m := range l.OVNMembers(db) {
			if m.Name == name {
				return db, m, true
			}
		}
	}
	return "", OVNMember{}, false
}

// OVNClientTLS are the certificate files of an OVN client identity
// ("admin", "kovn-controller", "ovn-controller-HOST"); empty with plain TCP.
func (l *Lab) OVNClientTLS(identity string) (ovsdbtls.Files, error) {
	if l.OVNPlainTCP {
		return ovsdbtls.Files{}, nil
	}
	b, err := l.ovnPKI()
	if err != nil {
		return ovsdbtls.Files{}, err
	}
	c, ok := b.Clients[identity]
	if !ok {
		return ovsdbtls.Files{}, fmt.Errorf("no OVN certificate for %q", identity)
	}
	return ovsdbtls.Files{PrivateKey: c.Key, Certificate: c.Cert, CACert: b.CACert}, nil
}
