package pod

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kovn-io/kovn/go-controller/pkg/controller/internal/ctltest"
)

// TestAddressMetrics: the subnet's allocated count follows pods coming and
// going; its capacity is what pods can get.
func TestAddressMetrics(t *testing.T) {
	h := newSmallHarness(t)
	inst := h.start()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(inst.c.AddressMetrics())
	expect := func(allocated int) error {
		want := map[string]float64{"kovn_subnet_addresses_allocated": float64(allocated), "kovn_subnet_addresses_capacity": 4}
		mfs, err := reg.Gather()
		if err != nil {
			return err
		}
		got := map[string]float64{}
		for _, mf := range mfs {
			if len(mf.Metric) != 1 {
				return fmt.Errorf("%s: %d series, want 1 (node n1)", mf.GetName(), len(mf.Metric))
			}
			m := mf.Metric[0]
			labels := map[string]string{}
			for _, l := range m.Label {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["node"] != "n1" || labels["subnet"] != "10.128.0.0/29" {
				return fmt.Errorf("%s: labels %v", mf.GetName(), labels)
			}
			got[mf.GetName()] = m.GetGauge().GetValue()
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("got %v, want %v", got, want)
		}
		return nil
	}
	ips := fill(h, 3)
	ctltest.WaitFor(t, func() error { return expect(3) })
	h.deletePod("ns", "p1")
	h.waitGone("ns", "p1", ips["p1"])
	ctltest.WaitFor(t, func() error { return expect(2) })
}
