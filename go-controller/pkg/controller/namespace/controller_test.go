package namespace

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

func TestSetCreatedForNamespaceWithoutPods(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.createNamespace("team-a")
	h.createNamespace("kube-system")
	as := h.waitSet("kovn_ns_team_a_v4", true)
	if len(as.Addresses) != 0 {
		t.Errorf("addresses %v, want none", as.Addresses)
	}
	want := map[string]string{own.KindKey: own.KindNamespace, own.OwnerKey: "team-a", own.IDKey: "v4"}
	if !maps.Equal(as.ExternalIDs, want) {
		t.Errorf("external_ids %v, want %v", as.ExternalIDs, want)
	}
	h.waitSet("kovn_ns_kube_system_v4", true)
}

func TestSetDeletedWithNamespace(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.createNamespace("gone")
	h.createNamespace("kept")
	h.waitSet("kovn_ns_gone_v4", true)
	h.waitSet("kovn_ns_kept_v4", true)
	h.deleteNamespace("gone")
	h.waitSet("kovn_ns_gone_v4", false)
	h.waitSet("kovn_ns_kept_v4", true)
}

func TestSetDeletedWhenNamespaceTerminates(t *testing.T) {
	h := newHarness(t)
	inst := h.start()
	terminating := func(ns *corev1.Namespace) {
		now := metav1.NewTime(time.Now())
		ns.DeletionTimestamp = &now
		ns.Finalizers = []string{"kubernetes"}
	}
	h.createNamespace("born-ending", terminating)
	h.createNamespace("ending")
	h.waitSet("kovn_ns_ending_v4", true)
	inst.WaitSynced(t, 2)
	if _, err := nbops.GetAddressSet(h.NB, "kovn_ns_born_ending_v4"); err == nil {
		t.Error("set created for a terminating namespace")
	}

	ns, err := h.KC.CoreV1().Namespaces().Get(context.Background(), "ending", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	terminating(ns)
	if _, err := h.KC.CoreV1().Namespaces().Update(context.Background(), ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitSet("kovn_ns_ending_v4", false)
}

// Members belong to the pod controller: an existing set is left alone.
func TestExistingSetMembersUntouched(t *testing.T) {
	h := newHarness(t)
	h.addSet(nsSet("a", "10.128.0.3", "10.128.0.4"))
	h.createNamespace("a")
	inst := h.start()
	h.createNamespace("b")
	inst.WaitSynced(t, 2)
	h.waitSet("kovn_ns_b_v4", true)
	as := h.waitSet("kovn_ns_a_v4", true)
	if got := slices.Sorted(slices.Values(as.Addresses)); !slices.Equal(got, []string{"10.128.0.3", "10.128.0.4"}) {
		t.Errorf("members %v changed", got)
	}
	if txns, _ := inst.Tx.Stats(); txns != 1 {
		t.Errorf("%d transactions, want 1 (b's set)", txns)
	}
}

func TestStartDeletesSetsOfNamespacesGone(t *testing.T) {
	h := newHarness(t)
	h.createNamespace("kept")
	h.addSet(nsSet("kept", "10.128.0.3"))
	h.addSet(nsSet("gone", "10.128.0.4"))
	h.addSet(nsSet("also-gone"))
	// Sets kovn does not own as a namespace's are not Start's business.
	h.addSet(&nbdb.AddressSet{Name: "someone_else", ExternalIDs: map[string]string{"owner": "gone"}})
	h.addSet(&nbdb.AddressSet{Name: "kovn_policy_x", ExternalIDs: own.IDs("NetworkPolicy", "gone/x", "")})

	inst := h.startNoRun()
	if txns, _ := inst.Tx.Stats(); txns != 1 {
		t.Errorf("Start sent %d transactions, want 1", txns)
	}
	h.waitSet("kovn_ns_gone_v4", false)
	h.waitSet("kovn_ns_also_gone_v4", false)
	h.waitSet("someone_else", true)
	h.waitSet("kovn_policy_x", true)
	if as := h.waitSet("kovn_ns_kept_v4", true); !slices.Equal(as.Addresses, []string{"10.128.0.3"}) {
		t.Errorf("kept set members %v", as.Addresses)
	}
}

func TestRestartIsQuiet(t *testing.T) {
	h := newHarness(t)
	first := h.start()
	for _, ns := range []string{"a", "b", "c"} {
		h.createNamespace(ns)
		h.waitSet(own.NamespaceAddressSet(ns, "v4"), true)
	}
	first.Stop()
	second := h.start()
	second.WaitSynced(t, 3)
	if txns, ops := second.Tx.Stats(); txns != 0 {
		t.Errorf("restart sent %d transactions (%d ops)", txns, ops)
	}
}
