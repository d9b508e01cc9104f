#!/usr/bin/env bash
# The short demo `make lab` ends with: two test-server pods on different
# nodes, then what they can reach and what kovn wrote into OVN for them.
# It is idempotent and leaves the pods running for you to poke at.
set -euo pipefail
cd "$(dirname "$0")/.."
lab=_output/bin/kovn-lab
eval "$($lab env)"
nodes=($LAB_NODES)
k() { $lab kubectl "$@"; }

k apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Namespace
metadata: {name: demo}
$(for i in 0 1; do cat <<POD
---
apiVersion: v1
kind: Pod
metadata: {name: web-$i, namespace: demo, labels: {app: web}}
spec:
  nodeName: ${nodes[$i]}
  terminationGracePeriodSeconds: 0
  containers:
  - name: server
    image: $TEST_SERVER_IMAGE
    imagePullPolicy: Never
    env:
    - {name: POD_NAMESPACE, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
    - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: NODE_NAME, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
POD
done)
YAML
k -n demo wait --for=condition=Ready pod/web-0 pod/web-1 --timeout=120s >/dev/null
k -n demo get pods -o wide
ip1=$(k -n demo get pod web-1 -o jsonpath='{.status.podIP}')
show() { printf '\n$ %s\n' "$*"; "$@"; }
show $lab probe --from demo/web-0 --to "$ip1:8080"              # pod → pod across nodes, no NAT
show $lab probe --from demo/web-0 --to "$EXTERNAL_IP:80"         # pod → outside, seen as the node IP
show $lab probe --from "host:${nodes[0]}" --to "$ip1:8080" --proto tcp   # host → pod via the management port
show ovn-nbctl --db="$OVN_NB_DB" --columns=name,addresses,options,external_ids find logical_switch_port external_ids:kovn.io/owner=demo/web-1
show ovn-nbctl --db="$OVN_NB_DB" --columns=name,addresses find address_set external_ids:kovn.io/owner=demo
cat <<EOT

The demo pods stay up. Try:
  eval \$($lab env)
  $lab kubectl get pods -A -o wide
  $lab exec demo/web-0 -- ping -c1 $ip1
  ovn-nbctl --db=\$OVN_NB_DB show
  $lab kubectl delete ns demo        # when done; make lab-down removes everything
EOT
