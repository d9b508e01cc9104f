#!/usr/bin/env bash
# Runs the benchmark scenarios (docs/benchmarks.md) in order and merges
# their reports into _output/bench/results.json. Like test/e2e/run.sh, it
# uses a healthy lab that is already up and leaves it up; otherwise it
# brings one up for the run and takes it down afterwards. Every scenario
# (or the cleanup after its layers) removes what it made, so a shared lab
# is left as it was found.
#
# W2 (services) and W3 (policies) are layered on a kept W1 and restart
# runs on all three; cleanup removes them with W1's namespaces.
#
# REPEAT=N repeats the 1000-pod scenarios (figures vary with the
# machine's other load; the reports say how much CPU went elsewhere).
set -uo pipefail
cd "$(dirname "$0")/../.."
lab=_output/bin/kovn-lab
bench=_output/bin/kovn-bench
out=_output/bench
repeat=${REPEAT:-1}

[ -x "$lab" ] && [ -x _output/bin/kovn-controller ] || make build || exit 1
CGO_ENABLED=0 go build -o "$bench" ./go-controller/cmd/kovn-bench || exit 1

own=0
if [ "${CI:-}" = true ] || ! $lab status >/dev/null 2>&1; then
  own=1
  # /23 node subnets: W1 puts 334 pods on a node (ovn-kubernetes also uses /23).
  $lab down && $lab up --skip-deps --host-subnet-length 23 || exit 1
fi
mkdir -p "$out"
# Plots and perf recordings too: one this run did not make must not pass
# for its.
rm -f "$out"/run-*.json "$out"/run-*.perf.data "$out"/plots/*.png
rc=0
step=0
# run NAME ARGS…: one kovn-bench invocation, its report numbered in order.
run() {
  local name=$1; shift
  step=$((step + 1))
  local file
  file=$(printf '%s/run-%02d-%s.json' "$out" "$step" "$name")
  echo "### $name: kovn-bench $*"
  "$bench" "$@" --out "$file" || { rc=1; return 1; }
}

run smoke pods --nodes 5 --pods 100
# Real pods on node1 and node2: a deny policy's time to refuse probes and
# its deletion's to let them through. It removes its namespace itself.
run enforce enforce
# Real pause pods on every lab node: creation → Ready for a burst of 100
# and 5 pods/s for 60 s, with CNI ADD by phase. It removes its namespace.
run podready podready
for i in $(seq "$repeat"); do
  # W1 exactly: 3 nodes of 334 pods. It needs node subnets of /23 or
  # larger; kovn-bench refuses early when the controller's are smaller.
  if run w1 pods --workload w1 --keep; then
    # W2 and W3 are layered on W1's pods, and restart on all three.
    run w2-services services && run w3-policies policies &&
      run w3-restart-kill restart --signal KILL
    run w1-w3-cleanup cleanup
  fi
  # The same burst of hostNetwork pods, which kovn leaves alone: what the
  # API server needs for it without the controller's work.
  run api-baseline baseline --nodes 4 --pods 1000 --writers 32
  # W1's 1000 pods on 4 nodes: fits /24 node subnets (250 pods each).
  if run w1-4nodes pods --nodes 4 --pods 1000 --writers 32 --keep; then
    run w1-4nodes-restart-kill restart --signal KILL
    run w1-4nodes-restart-term restart --signal TERM
    # The services figure of the benchmarks issue, apart from W2: 500
    # services of 5 endpoints (50 per namespace) on these 1000 pods,
    # which fit /24 node subnets too.
    run services-500x5 services --services 500 --endpoints 5
    run w1-4nodes-cleanup cleanup
  fi
  if run pods50 pods --nodes 50 --pods 1000 --writers 32 --keep; then
    run pods50-restart-kill restart --signal KILL
    run pods50-cleanup cleanup
  fi
done
# Leave nothing behind, whatever failed above.
"$bench" cleanup >/dev/null 2>&1 || rc=1

"$bench" merge --out "$out/results.json" "$out"/run-*.json || rc=1
echo "results: $out/results.json"
# CDFs of the latency samples in the results (docs/benchmarks.md); a
# failure fails the run but the lab is still taken down below.
"$bench" plot --in "$out/results.json" --out-dir "$out/plots" || rc=1
if [ "$own" = 1 ]; then
  [ "$rc" = 0 ] || $lab status || true
  $lab down || rc=1
fi
exit "$rc"
