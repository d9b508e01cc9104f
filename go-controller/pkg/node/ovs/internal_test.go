package ovs

import (
	"fmt"
	"testing"

	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/vswitchd"
)

// These run without ovsdb-server.

func TestMapMutations(t *testing.T) {
	cur := map[string]string{"a": "1", "b": "2", "foreign": "x"}
	for _, tc := range []struct {
		name string
		set  map[string]string
		drop []string
		want string
	}{
		{"equal", map[string]string{"a": "1"}, []string{"gone"}, "[]"},
		{"new key", map[string]string{"c": "3"}, nil, "[{external_ids insert {map[c:3]}}]"},
		// A changed value: delete the key, then insert it (insert never overwrites).
		{"changed", map[string]string{"a": "9", "b": "2"}, nil, "[{external_ids delete {[a]}} {external_ids insert {map[a:9]}}]"},
		{"dropped", nil, []string{"b", "gone"}, "[{external_ids delete {[b]}}]"},
		{"both", map[string]string{"a": "9"}, []string{"b"}, "[{external_ids delete {[a b]}} {external_ids insert {map[a:9]}}]"},
	} {
		if got := fmt.Sprint(mapMutations("external_ids", cur, tc.set, tc.drop)); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestChassisExternalIDs(t *testing.T) {
	set, drop, err := ChassisConfig{SystemID: "n1", OVNRemote: "tcp:1.1.1.1:6642", EncapIP: "2.2.2.2"}.externalIDs()
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(set) != "map[ovn-encap-ip:2.2.2.2 ovn-encap-type:geneve ovn-remote:tcp:1.1.1.1:6642 system-id:n1]" {
		t.Errorf("set %v", set)
	}
	if fmt.Sprint(drop) != "[hostname ovn-bridge-datapath-type ovn-bridge-mappings]" {
		t.Errorf("drop %v", drop)
	}
	if _, _, err := (ChassisConfig{SystemID: "n1"}).externalIDs(); err == nil || err.Error() != "chassis configuration lacks [EncapIP OVNRemote]" {
		t.Errorf("missing fields: %v", err)
	}
}

func TestWatches(t *testing.T) {
	w := newWatches()
	wake, cancel := w.watch(ifaceKey("veth1"))
	other, cancelOther := w.watch(uuidKey("u2"))
	defer cancelOther()
	// Several changes before the waiter looks: one wake-up, no blocking.
	for range 3 {
		w.rowChanged(nil, &vswitchd.Interface{UUID: "u1", Name: "veth1"})
	}
	select {
	case <-wake:
	default:
		t.Fatal("no wake-up for veth1")
	}
	select {
	case <-wake:
		t.Fatal("second wake-up; changes should collapse")
	case <-other:
		t.Fatal("u2 woken by a change to u1")
	default:
	}
	w.rowChanged(&vswitchd.Port{UUID: "u2"}, nil)
	<-other
	cancel()
	if _, ok := w.byKey[ifaceKey("veth1")]; ok {
		t.Error("cancel left the key registered")
	}
}
