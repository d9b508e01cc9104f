package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// TestOVNRaftLeaderKill needs a lab with clustered OVN databases
// (kovn-lab up --ovn-ha). It kills the NB RAFT leader with SIGKILL on a
// converged lab: a new leader must be elected, the controller must send
// nothing while nothing changes in the API (its reconnect is no reason to
// write), and must then program a new pod through the new leader, leaving
// nothing for `kovn-lab verify` to do. The fault suite kills the NB and SB
// leaders under churn.
func TestOVNRaftLeaderKill(t *testing.T) {
	e := setup(t)
	if !e.lab.OVNHA {
		t.Skip("the lab's OVN databases are standalone; kovn-lab up --ovn-ha clusters them")
	}
	requireController(t, e)
	nb := e.nb(t)
	ns := e.namespace(t, "raft")
	ctx := context.Background()
	waitPort := func(name string) {
		t.Helper()
		if err := poll(60*time.Second, func() error {
			_, err := nbops.GetSwitchPort(nb, own.PodPort(ns, name))
			return err
		}); err != nil {
			t.Fatalf("pod %s/%s has no port: %v", ns, name, err)
		}
	}
	for i := 0; i < 4; i++ {
		p := pausePod(ns, fmt.Sprintf("before-%d", i), e.lab.NodeNames[i%len(e.lab.NodeNames)])
		if _, err := e.cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 4; i++ {
		waitPort(fmt.Sprintf("before-%d", i))
	}
	leader := e.leader(t)
	sent := e.quietTransactions(t, leader)

	old, err := e.lab.OVNLeader("nb")
	if err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	if _, err := e.labCmd(t, nil, "restart", "--signal", "KILL", old); err != nil {
		t.Fatal(err)
	}
	var now string
	if err := poll(30*time.Second, func() error {
		now, err = e.lab.OVNLeader("nb")
		return err
	}); err != nil {
		t.Fatalf("no NB leader after killing %s: %v", old, err)
	}
	t.Logf("killed NB leader %s; %s leads %.1fs later", old, now, time.Since(killed).Seconds())
	// Long enough for the controller's client to notice the lost leader
	// and reconnect (its inactivity probe and backoff are a few seconds):
	// a write triggered by the reconnect would show up in this window.
	time.Sleep(5 * time.Second)
	if after := e.quietTransactions(t, leader); after != sent {
		t.Errorf("the controller sent %v NB transactions after the NB leader was killed, with nothing changed; want 0", after-sent)
	}
	if got := e.leader(t); got != leader {
		t.Errorf("the controller lost its Lease (replica %d leads now, was %d): an NB leader change must not restart it", got, leader)
	}

	p := pausePod(ns, "after", e.lab.NodeNames[0])
	if _, err := e.cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPort("after")
	if err := poll(60*time.Second, func() error {
		out, err := e.labCmd(t, nil, "verify")
		if err != nil {
			return fmt.Errorf("%v: %s", err, problemLines(out))
		}
		return nil
	}); err != nil {
		t.Fatalf("kovn-lab verify after the NB leader change: %v", err)
	}
}

// quietTransactions waits until replica i's count of NB transactions has
// stopped moving for two seconds and returns it.
func (e *env) quietTransactions(t *testing.T, i int) float64 {
	t.Helper()
	last := -1.0
	if err := poll(90*time.Second, func() error {
		_, page, err := controllerGet(i, "/metrics")
		if err != nil {
			return err
		}
		n := metricSum(page, "kovn_nb_transactions_total")
		if n != last {
			last = n
			time.Sleep(2 * time.Second)
			return fmt.Errorf("still sending")
		}
		return nil
	}); err != nil {
		t.Fatalf("controller %d not quiet: %v", i, err)
	}
	return last
}
