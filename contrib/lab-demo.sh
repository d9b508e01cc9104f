#!/usr/bin/env bash
# The demo `make lab` ends with: a web Deployment behind a Service, two
# clients, then a NetworkPolicy that cuts one of them off — and kovnctl
# explaining what kovn wrote into OVN and why a packet passes or not.
# Every line it prints comes from a real probe between pods or a real
# query; nothing is canned. It starts from a fresh namespace each time and
# leaves the pods running for you to poke at.
set -euo pipefail
cd "$(dirname "$0")/.."
lab=_output/bin/kovn-lab
kovnctl=_output/bin/kovnctl
set -a
eval "$($lab env)"
set +a
nodes=($LAB_NODES)
k() { $lab kubectl "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }
begin=$(date +%s)

k delete namespace demo --ignore-not-found --wait=true >/dev/null

# client-a carries access=granted, client-b does not; both run the test
# server too, only so that they have a long-running process.
client() {
  cat <<POD
---
apiVersion: v1
kind: Pod
metadata: {name: $1, namespace: demo, labels: {$2}}
spec:
  nodeName: $3
  terminationGracePeriodSeconds: 0
  containers:
  - {name: main, image: $TEST_SERVER_IMAGE, imagePullPolicy: Never}
POD
}
k apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Namespace
metadata: {name: demo}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: demo}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 0
      # One replica per node, so the Service's answers come from several nodes.
      topologySpreadConstraints:
      - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: ScheduleAnyway, labelSelector: {matchLabels: {app: web}}}
      containers:
      - name: server
        image: $TEST_SERVER_IMAGE
        imagePullPolicy: Never
        env:
        - {name: POD_NAMESPACE, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
        - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
        - {name: NODE_NAME, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
$(client client-a "role: client, access: granted" "${nodes[0]}")
$(client client-b "role: client" "${nodes[${#nodes[@]}-1]}")
YAML
k -n demo rollout status deployment/web --timeout=120s >/dev/null
k -n demo wait --for=condition=Ready pod --all --timeout=120s >/dev/null

step "Pods and their addresses (kovn's IPAM, one subnet per node)"
show k -n demo get pods -o wide
vip=$(k -n demo get service web -o jsonpath='{.spec.clusterIP}')
web0=$(k -n demo get pods -l app=web -o jsonpath='{.items[0].metadata.name}')
web0ip=$(k -n demo get pod "$web0" -o jsonpath='{.status.podIP}')

step "client-a → Service web ($vip:80), 12 connections: which pods answered"
for _ in $(seq 12); do
  $lab probe --from demo/client-a --to "$vip:80"
done | sed -n 's/.*"pod":"\([^"]*\)","node":"\([^"]*\)".*/\1 on \2/p' | sort | uniq -c

step "A NetworkPolicy: only pods labelled access=granted may reach web"
k apply -f - <<YAML
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-from-granted, namespace: demo}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
  ingress:
  - from: [{podSelector: {matchLabels: {access: granted}}}]
    ports: [{protocol: TCP, port: 8080}]
YAML
# Wait for the cut itself (client-b refused), not for a fixed time.
cut=$(date +%s%N)
until ! $lab probe --from demo/client-b --to "$vip:80" --timeout 300ms >/dev/null 2>&1; do
  if (( ($(date +%s%N) - cut) > 30000000000 )); then echo "client-b still answered after 30 s" >&2; exit 1; fi
done
echo "client-b cut off $(( ($(date +%s%N) - cut) / 1000000 )) ms after the apply returned"
show $lab probe --from demo/client-a --to "$vip:80"
show $lab probe --from demo/client-b --to "$vip:80" --timeout 1s || true

step "What kovn wrote into OVN for them"
show $kovnctl show service demo/web
show $kovnctl show policy demo/web-from-granted

step "Why: ovn-trace from each client to $web0 ($web0ip) port 8080"
show $kovnctl trace --from demo/client-a --to "demo/$web0" --port 8080
show $kovnctl trace --from demo/client-b --to "demo/$web0" --port 8080

cat <<EOT

Demo done in $(( $(date +%s) - begin )) s. The pods stay up. Try:
  eval \$($lab env)
  $kovnctl status
  $lab kubectl -n demo get pods,svc,networkpolicy -o wide
  ovn-nbctl --db=\$OVN_NB_DB show
  $lab kubectl delete namespace demo   # when done; make lab-down removes everything
EOT
