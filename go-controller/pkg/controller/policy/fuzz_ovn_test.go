package policy

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	"github.com/kovn-io/kovn/go-controller/pkg/testenv"
)

// calibration are matches on which the in-process checker and OVN's parser
// must agree: kovn's shapes and their edge cases that OVN accepts, and
// mistakes that it rejects. "@CAL" and "$CALSET" exist.
var calibration = []struct {
	match string
	ok    bool
}{
	{"outport == @CAL && ip4", true},
	{"outport == @CAL && ip4.src == 0.0.0.0/0", true},
	{"outport == @CAL && ip4.src == 10.0.0.1/24", true},
	{"outport == @CAL && ip4.src == 10.0.0.1/32", true},
	{"outport == @CAL && tcp.dst == {80, 80}", true},
	{"outport == @CAL && tcp.dst == 0", true},
	{"outport == @CAL && sctp.dst == 65535", true},
	{"outport == @CAL && tcp.dst >= 100 && tcp.dst <= 50", true},
	{"outport == @CAL && ip4.src != {10.0.0.0/8, 10.1.0.0/16}", true},
	{"inport == @CAL && ip4.dst == $CALSET && ((ip4.dst == {10.0.0.1, 10.0.0.2} && tcp.dst == 8080) || udp || sctp.dst == {1, 2})", true},
	{"outport == @CAL && ip4.src == {", false},
	{"outport == @CAL && ip4.src == {}", false},
	{"outport == @CAL && tcp.dst == 65536", false},
	{"outport == @CAL && tcp.dst == 99999", false},
	{"outport == @CAL && tcp.dst == -1", false},
	{"outport == @CAL && tcp.dst >= {1, 2}", false},
	{"outport == @CAL && ip4.dst == fd00::1", false},
	{"outport == @CAL && ip4.src == 10.0.0.1/33", false},
	{"outport == @CAL && ip4.src == 10.0.0.256", false},
	{"outport == @CAL && ip4.src == $kovn_no_such_set", false},
	{"outport == @kovn_no_such_pg && ip4", false},
	{"outport == @CAL && tcp.dst == 80 || udp.dst == 53", false},
	{"outport == @CAL && (tcp.dst == 80", false},
	{"outport == @CAL && tcp.dst == 80)", false},
	{"outport == @CAL && tcp.dst = 80", false},
	{"outport == @CAL && tcp == 80", false},
	{"outport == @CAL && tcp.dport == 80", false},
	{"outport == @CAL && ip4.src ==", false},
}

// readCorpus reads a go-fuzz corpus directory of []byte entries.
func readCorpus(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.SplitN(string(data), "\n", 3)
		if len(lines) < 2 || lines[0] != "go test fuzz v1" {
			t.Fatalf("%s: not a fuzz corpus file", e.Name())
		}
		arg, ok := strings.CutPrefix(strings.TrimSpace(lines[1]), "[]byte(")
		if !ok || !strings.HasSuffix(arg, ")") {
			t.Fatalf("%s: want one []byte argument, got %q", e.Name(), lines[1])
		}
		s, err := strconv.Unquote(strings.TrimSuffix(arg, ")"))
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		out[e.Name()] = s
	}
	return out
}

// genScenario writes a random scenario in FuzzPolicyACLs' language, mixing
// what the API admits with what it would reject.
func genScenario(r *rand.Rand) string {
	pick := func(xs ...string) string { return xs[r.IntN(len(xs))] }
	namespaces := []string{"team-a", "team-b", "default", "x"}
	selector := func() string {
		var items []string
		for range r.IntN(3) {
			if r.IntN(4) == 0 {
				items = append(items, pick("app", "team", "role", "bad key", "k8s.io/x")+"~"+
					pick("In", "NotIn", "Exists", "DoesNotExist", "Bogus")+"~"+pick("web", "a/b", "", "client/x"))
			} else {
				items = append(items, pick("app", "team", "role", "")+"="+pick("web", "client", "a", "b", "", "-bad-"))
			}
		}
		return strings.Join(items, ",")
	}
	cidr := func() string {
		return pick(fmt.Sprintf("10.%d.0.0/16", r.IntN(256)), fmt.Sprintf("192.168.%d.%d/%d", r.IntN(256), r.IntN(256), r.IntN(33)),
			"0.0.0.0/0", "1.2.3.4/32", "1.2.3.4", "fd00::/64", "::ffff:10.0.0.0/104", "10.0.0.0/33", "nonsense", "")
	}
	var b strings.Builder
	for _, ns := range namespaces {
		if r.IntN(4) != 0 {
			fmt.Fprintf(&b, "ns %s l=team:%s l=env:%s", ns, pick("a", "b"), pick("prod", "dev"))
			if r.IntN(3) == 0 {
				fmt.Fprintf(&b, " log=%s", pick(`{"deny":"alert","allow":"notice"}`, `{"allow":"debug"}`, `{"deny":"loud"}`, `x`))
			}
			b.WriteString("\n")
		}
	}
	for i := range r.IntN(12) {
		fmt.Fprintf(&b, "pod %s/p%d l=app:%s l=role:%s", pick(namespaces...), i, pick("web", "client", "db"), pick("a", "b"))
		switch r.IntN(6) {
		case 0:
			fmt.Fprintf(&b, " sip=10.128.%d.%d", r.IntN(4), r.IntN(256))
		case 1:
			b.WriteString(" ip=fd00::5")
		default:
			fmt.Fprintf(&b, " ip=10.128.%d.%d", r.IntN(4), r.IntN(256))
		}
		for range r.IntN(3) {
			fmt.Fprintf(&b, " port=%s:%d/%s", pick("http", "dns", "metrics"), 1+r.IntN(65535), pick("TCP", "UDP", "SCTP", ""))
		}
		if r.IntN(8) == 0 {
			b.WriteString(pick(" host", " done"))
		}
		b.WriteString("\n")
	}
	for i := range 1 + r.IntN(4) {
		name := fmt.Sprintf("np%d", i)
		if r.IntN(5) == 0 {
			name = strings.Repeat("long-policy-name.", 1+r.IntN(8)) + name // past the 63-character ACL name
		}
		fmt.Fprintf(&b, "np %s/%s sel=%s", pick(namespaces...), name, selector())
		if r.IntN(3) == 0 {
			fmt.Fprintf(&b, " types=%s", pick("ingress", "egress", "ingress,egress", "Bogus", ""))
		}
		b.WriteString("\n")
		for range r.IntN(5) {
			b.WriteString(pick("in", "eg"))
			for range r.IntN(4) {
				var parts []string
				switch r.IntN(4) {
				case 0:
					parts = append(parts, "p:"+selector())
				case 1:
					parts = append(parts, "n:"+selector())
					if r.IntN(2) == 0 {
						parts = append(parts, "p:"+selector())
					}
				case 2:
					parts = append(parts, "c:"+cidr())
					for range r.IntN(3) {
						parts = append(parts, "x:"+pick(fmt.Sprintf("10.%d.%d.0/24", r.IntN(256), r.IntN(256)), cidr()))
					}
				}
				b.WriteString(" peer=" + strings.Join(parts, "+"))
			}
			for range r.IntN(5) {
				port := pick("TCP", "UDP", "SCTP", "", "tcp", "ICMP") + ":"
				switch r.IntN(5) {
				case 0:
					port += pick("http", "dns", "metrics", "nope")
				case 1:
					port = strings.TrimSuffix(port, ":")
				case 2:
					p := r.IntN(66000) - 100
					port += fmt.Sprintf("%d-%d", p, p+r.IntN(200)-20)
				default:
					port += strconv.Itoa(r.IntN(66000))
				}
				b.WriteString(" port=" + port)
			}
			b.WriteString("\n")
		}
	}
	if r.IntN(4) == 0 {
		fmt.Fprintf(&b, "del %s\n", pick("pod team-a/p0", "np team-a/np0", "ns team-a"))
	}
	return b.String()
}

// TestPolicyMatchesAcceptedByOVN is the proof behind the fuzzer's
// in-process check: every seed-corpus scenario and a generated set go
// through the same translation, their ACLs (with the port groups and
// address sets they name) are written to a real NB, northd turns them into
// logical flows, and ovn-trace parses every flow as ovn-controller would.
// Calibration matches, good and bad, show that ovn-trace does report a
// bad match and that the in-process checker agrees with OVN.
func TestPolicyMatchesAcceptedByOVN(t *testing.T) {
	o := testenv.StartOVN(t)
	trace, err := exec.LookPath("ovn-trace")
	if err != nil {
		if os.Getenv("KOVN_REQUIRE_OVN") == "1" {
			t.Fatal("ovn-trace not found; KOVN_REQUIRE_OVN=1 forbids skipping")
		}
		t.Skip("ovn-trace not found")
	}

	inputs := readCorpus(t, filepath.Join("testdata", "fuzz", "FuzzPolicyACLs"))
	for i, s := range policySeeds {
		inputs[fmt.Sprintf("seed#%d", i)] = s
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		inputs[fmt.Sprintf("generated#%d", i)] = genScenario(r)
	}

	// Distinct ACLs of every input, and what they refer to.
	type rowKey struct{ dir, match, action, severity, name string }
	rows := map[rowKey]*nbdb.ACL{}
	origin := map[string]string{} // match → an input it came from
	portGroups := map[string]bool{"CAL": true}
	addressSets := map[string]bool{"CALSET": true}
	for _, name := range slices.Sorted(maps.Keys(inputs)) {
		sc := runScenario(inputs[name])
		var acls []scenarioACL
		t.Run(name, func(t *testing.T) { acls = checkScenario(t, sc) })
		_, _, checker := sc.desired()
		for pg := range checker.portGroups {
			portGroups[pg] = true
		}
		for as := range checker.addressSets {
			addressSets[as] = true
		}
		for _, sa := range acls {
			a := sa.acl
			sev := ""
			if a.Severity != nil {
				sev = *a.Severity
			}
			rows[rowKey{a.Direction, a.Match, a.Action, sev, *a.Name}] = a
			if _, ok := origin[a.Match]; !ok {
				origin[a.Match] = name
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	calChecker := &matchChecker{addressSets: map[string]bool{"CALSET": true}, portGroups: map[string]bool{"CAL": true}}
	for _, c := range calibration {
		if err := calChecker.check(c.match); (err == nil) != c.ok {
			t.Errorf("in-process checker on calibration %q: %v, want ok=%v", c.match, err, c.ok)
		}
	}
	var matches []string
	for m := range origin {
		matches = append(matches, m)
	}
	t.Logf("%d inputs (%d from testdata), %d distinct ACLs, %d distinct matches, %d port groups, %d address sets",
		len(inputs), len(inputs)-len(policySeeds)-300, len(rows), len(matches), len(portGroups), len(addressSets))
	if len(matches) < 200 {
		t.Fatalf("only %d distinct matches: the generator or the corpus lost its variety", len(matches))
	}

	// NB: one switch and port; every port group holds the port (so that
	// northd puts it in SB), every address set one address; all ACLs hang
	// off one carrier group, plus the calibration ACLs.
	var models []model.Model
	models = append(models,
		&nbdb.LogicalSwitch{UUID: "u_ls", Name: "n1", Ports: []string{"u_lsp"}},
		&nbdb.LogicalSwitchPort{UUID: "u_lsp", Name: "p1"})
	var aclUUIDs []string
	i := 0
	addACL := func(a *nbdb.ACL) {
		i++
		c := *a
		c.UUID = fmt.Sprintf("u_acl_%d", i)
		aclUUIDs = append(aclUUIDs, c.UUID)
		models = append(models, &c)
	}
	for _, a := range rows {
		addACL(a)
	}
	for _, c := range calibration {
		addACL(&nbdb.ACL{Direction: nbdb.ACLDirectionToLport, Priority: 1, Action: nbdb.ACLActionDrop, Match: c.match})
	}
	models = append(models, &nbdb.PortGroup{UUID: "u_carrier", Name: "kovn_fuzz_carrier", Ports: []string{"u_lsp"}, ACLs: aclUUIDs})
	j := 0
	for pg := range portGroups {
		j++
		models = append(models, &nbdb.PortGroup{UUID: fmt.Sprintf("u_pg_%d", j), Name: pg, Ports: []string{"u_lsp"}})
	}
	for as := range addressSets {
		j++
		models = append(models, &nbdb.AddressSet{UUID: fmt.Sprintf("u_as_%d", j), Name: as, Addresses: []string{"10.0.0.1"}})
	}
	nb := o.NB(t)
	var ops []ovsdb.Operation
	for _, m := range models { // one Create per model: libovsdb rejects mixed tables in one call
		op, err := nb.Create(m)
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, op...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := nb.Transact(ctx, ops...)
	if err == nil {
		_, err = ovsdb.CheckOperationResults(res, ops)
	}
	if err != nil {
		t.Fatalf("NB transaction: %v", err)
	}

	// Wait until northd has made a flow of every match.
	all := append(slices.Clone(matches), func() (ms []string) {
		for _, c := range calibration {
			ms = append(ms, c.match)
		}
		return
	}()...)
	testenv.WaitFor(t, time.Minute, func() error {
		flows := o.SBCtl(t, "--bare", "--columns=match", "list", "Logical_Flow")
		for _, m := range all {
			if !strings.Contains(flows, "("+m+")") {
				return fmt.Errorf("no logical flow for %q yet", m)
			}
		}
		return nil
	})

	cmd := exec.CommandContext(ctx, trace, "--db="+o.SBAddr, "--minimal", "n1", `inport == "p1"`)
	cmd.Env = append(os.Environ(), "OVS_RUNDIR="+o.Dir, "OVS_LOGDIR="+o.Dir, "OVN_RUNDIR="+o.Dir, "OVN_LOGDIR="+o.Dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ovn-trace: %v\n%s", err, stderr.String())
	}

	// Attribute every complaint to the match whose flow it is.
	rejected := map[string]string{}
	for _, line := range strings.Split(stderr.String(), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		flow, why, ok := strings.Cut(line, ": parsing ")
		if !ok {
			t.Errorf("ovn-trace: %s", line)
			continue
		}
		found := false
		for _, m := range all {
			if strings.HasSuffix(flow, "("+m+")") {
				rejected[m], found = why, true
			}
		}
		if !found {
			t.Errorf("ovn-trace rejected a flow of no known match: %s", line)
		}
	}
	for _, c := range calibration {
		if why, bad := rejected[c.match]; bad == c.ok {
			t.Errorf("OVN on calibration %q: rejected=%v (%s), want ok=%v", c.match, bad, why, c.ok)
		}
	}
	n := 0
	for _, m := range matches {
		if why, bad := rejected[m]; bad {
			n++
			t.Errorf("OVN rejects %q (from input %s): %s", m, origin[m], why)
		}
	}
	t.Logf("ovn-trace parsed the flows of %d kovn matches: %d rejected; calibration: %d good, %d bad, all as expected unless reported above",
		len(matches), n, countCal(true), countCal(false))
	if log := o.NorthdLog(t); strings.Contains(log, "|ERR|") || strings.Contains(log, "Syntax error") {
		t.Errorf("northd log:\n%s", log)
	}
}

func countCal(ok bool) int {
	n := 0
	for _, c := range calibration {
		if c.ok == ok {
			n++
		}
	}
	return n
}
