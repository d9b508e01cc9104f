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
fi
if [ "$own" = 1 ]; then
  if [ "$rc" != 0 ]; then
    $lab status || true
  fi
  $lab down
fi
exit "$rc"
