#!/usr/bin/env bash
# Runs the end-to-end suite. A healthy lab that is already up is used and
# left up (a developer's); otherwise — and always in CI — a fresh lab is
# brought up for the run and taken down afterwards, and the teardown itself
# is checked (kovn-lab down fails if anything is left behind).
set -euo pipefail
cd "$(dirname "$0")/../.."
lab=_output/bin/kovn-lab
own=0
if [ "${CI:-}" = true ] || ! $lab status >/dev/null 2>&1; then
  own=1
  $lab down
  start=$(date +%s)
  # One bare-metal host: the external-port test plugs its address in.
  if ! $lab up --skip-deps --external-hosts 1; then
    $lab status || true
    exit 1
  fi
  echo "kovn-lab up took $(( $(date +%s) - start ))s"
fi
rc=0
KOVN_E2E=1 go test -count=1 -timeout 40m -v ./test/e2e/... 2>&1 | tee _output/e2e.log || rc=$?
if [ "$own" = 1 ] && [ "$rc" = 0 ]; then
  # Underlay mode needs a lab of its own, tagged so the test sees VLAN
  # frames on the underlay bridge; the same lab runs OVN NB and SB as RAFT
  # clusters, for the tests that kill their leaders. Only on a lab this
  # script owns: a developer's lab is not replaced (make test-underlay does
  # that).
  $lab down
  if ! $lab up --skip-deps --mode underlay --underlay-vlan 100 --ovn-ha; then
    $lab status || true
    exit 1
  fi
  KOVN_E2E=1 go test -count=1 -timeout 10m -v -run 'TestUnderlay$|TestLab|TestOVNRaftLeaderKill$|TestOVNOverSSL$' ./test/e2e/... 2>&1 | tee _output/e2e-underlay.log || rc=$?
  # The fault suite last, on the clustered lab (its NB and SB faults kill
  # RAFT leaders): the API server fault leaves kube-controller-manager's
  # caches stale for up to a minute, which the lab is not reused after.
  if [ "$rc" = 0 ]; then
    KOVN_E2E=1 KOVN_FAULTS=1 go test -count=1 -timeout 20m -v -run 'TestFaults$' ./test/e2e/... 2>&1 | tee _output/e2e-faults.log || rc=$?
  fi
  # Last, kovn installed the way a user installs it: the image built from
  # dist/images imported on every node, OVN central, kovn-controller and
  # kovn-node as pods from dist/ (docs/lab.md, "Deploy modes"), with cluster
  # DNS, as a real cluster has it. On the network those pods make: a smoke
  # subset of the suite, then Kubernetes' own sig-network conformance specs
  # (all 45, ~6 min) and a subset of its NetworkPolicy suite
  # (docs/conformance.md; make conformance runs all of it).
  if [ "$rc" = 0 ]; then
    $lab down
    if ! $lab up --skip-deps --deploy manifests --ovn-plain-tcp --dns --e2e-images; then
      $lab status || true
      exit 1
    fi
    smoke='TestDeployedFromManifests$|TestLab|TestManifestsServerDryRun$|TestPodToPod$|TestPodToExternal$|TestHostPort$'
    smoke+='|TestServiceClusterIP$|TestServiceNodePort$|TestKovnctlTrace$|TestKovnctlStatus$|TestMetricsEndpoints$|TestHostileObjects$'
    KOVN_E2E=1 go test -count=1 -timeout 15m -v -run "$smoke" ./test/e2e/... 2>&1 | tee _output/e2e-manifests.log || rc=$?
    if [ "$rc" = 0 ]; then
      $lab conformance --suite sig-network-conformance --report-dir _output/conformance-ci 2>&1 | tee _output/conformance-ci.log || rc=$?
    fi
    if [ "$rc" = 0 ]; then
      $lab conformance --suite netpol --subset-file test/conformance/ci-netpol-subset.txt \
        --report-dir _output/conformance-ci-netpol 2>&1 | tee _output/conformance-ci-netpol.log || rc=$?
    fi
  fi
fi
if [ "$own" = 1 ]; then
  if [ "$rc" != 0 ]; then
    $lab status || true
    # down deletes the lab's logs; keep them for the post-mortem.
    rm -rf _output/lab-logs && cp -r "${KOVN_LAB_STATE:-/var/lib/kovn-lab}/log" _output/lab-logs || true
  fi
  $lab down
fi
exit "$rc"
