package e2e

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// investigateWrongAllows takes each wrongly allowed entry of the last
// observation (at most three) through a sequence of checks that separate
// the possible causes: the entry is probed again as it is; then after the
// node's datapath flows are purged (a stale megaflow would be gone); then
// after ovn-controller recomputes its OpenFlow (stale OpenFlow would be
// gone). It logs the datapath flows and conntrack entries of the pair
// before touching anything.
func (s *npSuite) investigateWrongAllows(t *testing.T, want, got *npMatrix) {
	t.Helper()
	n := len(want.names)
	seen := 0
	for i := 0; i < n && seen < 3; i++ {
		for j := 0; j < n && seen < 3; j++ {
			for k, pp := range npPorts {
				if want.at(i, j, k).allow || !got.at(i, j, k).allow {
					continue
				}
				seen++
				s.investigate(t, s.pods[i], s.pods[j], pp)
			}
		}
	}
}

func (s *npSuite) investigate(t *testing.T, from, to *corev1.Pod, pp npPort) {
	t.Helper()
	what := fmt.Sprintf("%s → %s %s", s.display(from.Namespace, from.Name), s.display(to.Namespace, to.Name), pp)
	nodes := []string{to.Spec.NodeName}
	if from.Spec.NodeName != to.Spec.NodeName {
		nodes = append(nodes, from.Spec.NodeName)
	}
	for _, node := range nodes {
		out, err := s.e.labCmd(t, nil, "exec", "host:"+node, "--", "ovs-appctl", "dpctl/dump-flows")
		flows := grepLines(out, "dst="+to.Status.PodIP+",")
		t.Logf("investigate %s: %s datapath flows with %s (%v):\n%s", what, node, to.Status.PodIP, err, flows)
		// A fresh translation of each new-connection flow's key: if it
		// disagrees with the installed actions, revalidation missed it.
		for _, f := range strings.Split(flows, "\n") {
			if !strings.Contains(f, "+new") {
				continue
			}
			key, _, _ := strings.Cut(strings.TrimSpace(f), ", packets:")
			tr, err := s.e.labCmd(t, nil, "exec", "host:"+node, "--", "ovs-appctl", "ofproto/trace", "ovs-netdev", key)
			lines := strings.Split(strings.TrimSpace(tr), "\n")
			if len(lines) > 4 {
				lines = lines[len(lines)-4:]
			}
			t.Logf("investigate %s: %s fresh translation of %s (%v):\n%s", what, node, key, err, strings.Join(lines, "\n"))
		}
		out, err = s.e.labCmd(t, nil, "exec", "host:"+node, "--", "ovs-appctl", "upcall/show")
		t.Logf("investigate %s: %s upcall/show (%v):\n%s", what, node, err, out)
		out, err = s.e.labCmd(t, nil, "exec", "host:"+node, "--", "ovs-appctl", "dpctl/dump-conntrack")
		t.Logf("investigate %s: %s conntrack of the pair (%v):\n%s", what, node, err,
			grepLines(out, "src="+from.Status.PodIP+",dst="+to.Status.PodIP+","))
	}
	try := func(after string) {
		allowed := 0
		for r := 0; r < 3; r++ {
			addr := netip.AddrPortFrom(netip.MustParseAddr(to.Status.PodIP), uint16(pp.port)).String()
			if _, err := s.e.labCmd(t, nil, "probe", "--from", from.Namespace+"/"+from.Name, "--to", addr,
				"--proto", strings.ToLower(string(pp.proto)), "--timeout", npProbeTimeout); err == nil {
				allowed++
			}
		}
		t.Logf("investigate %s: %s: %d of 3 probes allowed", what, after, allowed)
	}
	try("as found")
	for _, node := range nodes {
		if _, err := s.e.labCmd(t, nil, "exec", "host:"+node, "--", "ovs-appctl", "revalidator/purge"); err != nil {
			t.Logf("investigate %s: purge on %s: %v", what, node, err)
		}
	}
	try("after revalidator/purge")
	for _, node := range nodes {
		if _, err := s.e.labCmd(t, nil, "exec", "host:"+node, "--", "ovn-appctl", "-t", "ovn-controller", "recompute"); err != nil {
			t.Logf("investigate %s: recompute on %s: %v", what, node, err)
		}
	}
	try("after ovn-controller recompute")
}

func grepLines(text, substr string) string {
	var keep []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}
