package nbops_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"strings"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
	"github.com/kovn-io/kovn/go-controller/pkg/testenv"
)

// nodeTopology is what a node controller might want for node1: its
// switch with three pods, a gateway router joined to it, the pods' address
// set, an SNAT for the pod subnet and a route to the other nodes' pods.
// It builds every op against e's cache, as a controller would.
func nodeTopology(e *env) ([]ovsdb.Operation, error) {
	var all []ovsdb.Operation
	add := func(ops []ovsdb.Operation, err error) error {
		all = append(all, ops...)
		return err
	}
	node := own.IDs("Node", "node1", "")

	ops, sw, err := nbops.EnsureSwitch(e.c, &nbdb.LogicalSwitch{
		Name:        "node1",
		OtherConfig: map[string]string{"subnet": "10.128.1.0/24", "exclude_ips": "10.128.1.2"},
		ExternalIDs: own.IDs("Node", "node1", ""),
	})
	if err := add(ops, err); err != nil {
		return nil, err
	}
	ops, lr, err := nbops.EnsureRouter(e.c, &nbdb.LogicalRouter{
		Name:        "GR_node1",
		Options:     map[string]string{"chassis": "chassis-node1", "always_learn_from_arp_request": "false"},
		ExternalIDs: own.IDs("Node", "node1", ""),
	})
	if err := add(ops, err); err != nil {
		return nil, err
	}
	ops, _, err = nbops.EnsureRouterPort(e.c, lr, &nbdb.LogicalRouterPort{
		Name:        "rtos-node1",
		MAC:         "0a:58:0a:80:01:01",
		Networks:    []string{"10.128.1.1/24"},
		ExternalIDs: own.IDs("Node", "node1", ""),
	})
	if err := add(ops, err); err != nil {
		return nil, err
	}
	ops, _, err = nbops.EnsureSwitchPort(e.c, sw, &nbdb.LogicalSwitchPort{
		Name:        "stor-node1",
		Type:        "router",
		Addresses:   []string{"router"},
		Options:     map[string]string{"router-port": "rtos-node1"},
		ExternalIDs: own.IDs("Node", "node1", ""),
	})
	if err := add(ops, err); err != nil {
		return nil, err
	}
	var ips []string
	for i := 1; i <= 3; i++ {
		ip := fmt.Sprintf("10.128.1.%d", 10+i)
		mac := fmt.Sprintf("0a:58:0a:80:01:%02x", 10+i)
		ips = append(ips, ip)
		ops, _, err = nbops.EnsureSwitchPort(e.c, sw, &nbdb.LogicalSwitchPort{
			Name:         fmt.Sprintf("default_pod%d", i),
			Addresses:    []string{mac + " " + ip},
			PortSecurity: []string{mac + " " + ip},
			ExternalIDs:  own.IDs("Pod", fmt.Sprintf("default/pod%d", i), ""),
		})
		if err := add(ops, err); err != nil {
			return nil, err
		}
	}
	ops, _, err = nbops.EnsureAddressSet(e.c, &nbdb.AddressSet{
		Name:        "a_default_v4",
		Addresses:   ips,
		ExternalIDs: own.IDs("Namespace", "default", "v4"),
	})
	if err := add(ops, err); err != nil {
		return nil, err
	}
	ids := own.IDs("Node", "node1", "")
	ops, err = nbops.EnsureNATs(e.c, lr, node, []*nbdb.NAT{{
		Type: nbdb.NATTypeSNAT, LogicalIP: "10.128.1.0/24", ExternalIP: "172.18.0.2", ExternalIDs: ids,
	}})
	if err := add(ops, err); err != nil {
		return nil, err
	}
	ops, err = nbops.EnsureStaticRoutes(e.c, lr, node, []*nbdb.LogicalRouterStaticRoute{{
		IPPrefix: "10.244.0.0/16", Nexthop: "10.128.1.10", ExternalIDs: ids,
	}})
	return all, add(ops, err)
}

func TestIntegrationNodeTopology(t *testing.T) {
	o := testenv.StartOVN(t)
	e := newEnv(t, o.NBAddr)

	ops, err := nodeTopology(e)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.tx.Transact(context.Background(), "node1 topology", ops); err != nil {
		t.Fatal(err)
	}
	if txns, n := e.tx.Stats(); txns != 1 {
		t.Fatalf("%d transactions (%d ops), want the whole topology in one", txns, n)
	}
	t.Logf("node topology: %d ops in one transaction", len(ops))

	show := o.NBCtl(t, "show")
	for _, want := range []string{
		"switch", "(node1)",
		"port stor-node1", "type: router", "router-port: rtos-node1",
		"port default_pod1", `addresses: ["0a:58:0a:80:01:0b 10.128.1.11"]`,
		"port default_pod2", "port default_pod3",
		"router", "(GR_node1)",
		"port rtos-node1", `mac: "0a:58:0a:80:01:01"`, `networks: ["10.128.1.1/24"]`,
		"nat", `external ip: "172.18.0.2"`, `logical ip: "10.128.1.0/24"`, `type: "snat"`,
	} {
		if !strings.Contains(show, want) {
			t.Errorf("ovn-nbctl show lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("ovn-nbctl show:\n%s", show)
	}
	routes := o.NBCtl(t, "lr-route-list", "GR_node1")
	if !strings.Contains(routes, "10.244.0.0/16") || !strings.Contains(routes, "10.128.1.10") || !strings.Contains(routes, "dst-ip") {
		t.Errorf("lr-route-list GR_node1:\n%s", routes)
	}
	as := csvList(t, o, "Address_Set", "name,addresses,external_ids")
	if len(as) != 1 || as[0][0] != "a_default_v4" ||
		as[0][1] != `["10.128.1.11", "10.128.1.12", "10.128.1.13"]` ||
		as[0][2] != `{"kovn.io/id"=v4, "kovn.io/owner"=default, "kovn.io/owner-kind"=Namespace}` {
		t.Errorf("Address_Set rows: %q", as)
	}
	ls := csvList(t, o, "Logical_Switch", "name,other_config,external_ids")
	if len(ls) != 1 || ls[0][0] != "node1" ||
		ls[0][1] != `{exclude_ips="10.128.1.2", subnet="10.128.1.0/24"}` ||
		ls[0][2] != `{"kovn.io/owner"=node1, "kovn.io/owner-kind"=Node}` {
		t.Errorf("Logical_Switch rows: %q", ls)
	}
	nat := csvList(t, o, "NAT", "type,logical_ip,external_ip")
	if len(nat) != 1 || strings.Join(nat[0], " ") != `snat "10.128.1.0/24" "172.18.0.2"` {
		t.Errorf("NAT rows: %q", nat)
	}

	// northd turned it all into port bindings, without complaint.
	testenv.WaitFor(t, waitTimeout, func() error {
		out := o.SBCtl(t, "--bare", "--columns=logical_port", "list", "Port_Binding")
		for _, p := range []string{"stor-node1", "rtos-node1", "default_pod1", "default_pod2", "default_pod3"} {
			if !strings.Contains(out, p) {
				return fmt.Errorf("no SB Port_Binding for %s yet:\n%s", p, out)
			}
		}
		return nil
	})
	northd := o.NorthdLog(t)
	for _, line := range strings.Split(northd, "\n") {
		switch {
		case strings.Contains(line, "|ERR|") || strings.Contains(line, "|EMER|"):
			t.Errorf("northd: %s", line)
		case strings.Contains(line, "|WARN|"):
			t.Logf("northd: %s", line)
		}
	}

	// Converged: the same client builds no ops once its cache caught up…
	e.converged(func() ([]ovsdb.Operation, error) { return nodeTopology(e) })
	// …and a restarted controller, with a fresh client and Transactor,
	// sends nothing at all.
	restarted := newEnv(t, o.NBAddr)
	ops, err = nodeTopology(restarted)
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 0 {
		t.Fatalf("restarted controller builds %d ops:%s", len(ops), opsString(ops))
	}
	if err := restarted.tx.Transact(context.Background(), "restart", ops); err != nil {
		t.Fatal(err)
	}
	if txns, n := restarted.tx.Stats(); txns != 0 || n != 0 {
		t.Fatalf("restarted Transactor sent %d transactions, %d ops", txns, n)
	}
	if txns, _ := e.tx.Stats(); txns != 1 {
		t.Fatalf("first Transactor moved to %d transactions", txns)
	}
}

func TestIntegrationNewClient(t *testing.T) {
	o := testenv.StartOVN(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	// A second, dead endpoint first: the client must move on to the live
	// one, as with a RAFT member that is down.
	c, err := nbops.NewClient(ctx, []string{"unix:" + o.Dir + "/nonexistent.sock", o.NBAddr}, nbops.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	e := &env{t: t, c: c, tx: nbops.NewTransactor(c, nil)}
	ops, _, err := nbops.EnsureSwitch(c, &nbdb.LogicalSwitch{Name: "s"})
	e.apply(ops, err)
	if !strings.Contains(o.NBCtl(t, "ls-list"), "(s)") {
		t.Fatal("switch not in the NB")
	}
}

// csvList returns the rows of "ovn-nbctl --format=csv list table" without
// the header, as an operator would read them.
func csvList(t *testing.T, o *testenv.OVN, table, columns string) [][]string {
	t.Helper()
	out := o.NBCtl(t, "--format=csv", "--columns="+columns, "list", table)
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(rows) == 0 {
		t.Fatalf("list %s: %v\n%s", table, err, out)
	}
	return rows[1:]
}
