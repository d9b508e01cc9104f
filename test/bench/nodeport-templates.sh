#!/usr/bin/env bash
# Measures how NodePort services should be programmed in OVN NB, against a
# private NB/SB ovsdb-server pair and ovn-northd (no lab, no controller):
#
#   c  baseline: the ClusterIP load balancers alone, one Load_Balancer per
#      service in one Load_Balancer_Group attached to every node switch and
#      every gateway router;
#   a  per-node rows: c, plus for each service and each node one
#      Load_Balancer "<nodeIP>:<nodePort>" attached to that node's GR_<node>;
#   b  templates: c, plus one Load_Balancer per service with
#      options:template=true, address-family=ipv4 and VIP
#      "^KOVN_NODEIP:<nodePort>" in the same group, and one
#      Chassis_Template_Var per node (KOVN_NODEIP=<node IP>).
#
# Every design and node count runs on fresh daemons. The topology is
# ovn-kubernetes' shape: a cluster router, a join switch, and per node a
# switch nodeK (10.128.K.0/24), a gateway router GR_nodeK
# (options:chassis=chassis-K) and its external switch (172.18.0.(10+K)/24).
# Chassis rows are registered in SB with ovn-sbctl chassis-add.
#
# Figures (two markdown tables on stdout; progress on stderr):
#   size    NB Load_Balancer, Load_Balancer_Group, Chassis_Template_Var
#           rows; NB and SB file sizes after ovsdb-server/compact; SB
#           Logical_Flow, Logical_DP_Group, Load_Balancer rows; ovn-northd RSS
#   bulk    the services in one NB transaction (commit time), then at once
#           `ovn-nbctl --wait=sb sync`; times from the start of the commit
#           to the SB update carrying the flows (a Logical_Flow monitor, as
#           ovn-controller gets them) and to the sync's return
#   idle    a transaction that only bumps NB_Global.nb_cfg, until northd
#           sets sb_cfg (5 rounds): what --wait=sb itself costs
#   change  CHANGES endpoint changes of one service: the last backend
#           replaced in every row that carries it (the ClusterIP LB too),
#           committed with an nb_cfg bump in the same transaction; times to
#           the SB flow update and to sb_cfg (what `ovn-nbctl --wait=sb`
#           waits for), median and max; NB rows written per change; recomputes
#           of northd's lflow engine node (inc-engine/show-stats); the
#           longest ovn-northd main-loop iteration (stopwatch/show)
#
# Usage: test/bench/nodeport-templates.sh
# Environment: NODES ("3 50"), DESIGNS ("c a b"), SERVICES (500),
# BACKENDS (5), CHANGES (20), N_THREADS (northd --n-threads, 1),
# KEEP=1 keeps the temp dir (databases and logs).
set -euo pipefail

NODES=${NODES:-"3 50"}
DESIGNS=${DESIGNS:-"c a b"}
SERVICES=${SERVICES:-500}
BACKENDS=${BACKENDS:-5}
CHANGES=${CHANGES:-20}
N_THREADS=${N_THREADS:-1}
KEEP=${KEEP:-0}

# python3 is a dependency of ovn-common, so the system one is always there;
# it speaks JSON-RPC to ovsdb-server because a transaction of thousands of
# rows does not fit in one command-line argument of ovsdb-client.
PY=/usr/bin/python3
bin() {
  local b
  b=$(PATH=$PATH:/usr/sbin:/usr/local/sbin command -v "$1") || { echo "missing: $1" >&2; exit 1; }
  echo "$b"
}
OVSDB_TOOL=$(bin ovsdb-tool)
OVSDB_SERVER=$(bin ovsdb-server)
NORTHD=$(bin ovn-northd)
NBCTL=$(bin ovn-nbctl)
SBCTL=$(bin ovn-sbctl)
APPCTL=$(bin ovn-appctl)
[ -x "$PY" ] || { echo "missing: $PY" >&2; exit 1; }
NB_SCHEMA=${NB_SCHEMA:-/usr/share/ovn/ovn-nb.ovsschema}
SB_SCHEMA=${SB_SCHEMA:-/usr/share/ovn/ovn-sb.ovsschema}

# Short path: unix socket names are limited to 107 bytes.
top=$(mktemp -d /tmp/kovn-np.XXXXXX)
dir=
stop_daemons() {
  local d=$1 p pid
  [ -n "$d" ] || return 0
  # northd first, so it does not log the databases going away.
  for p in northd sb nb; do
    [ -f "$d/$p.pid" ] || continue
    pid=$(cat "$d/$p.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$d/$p.pid"
  done
}
cleanup() {
  local rc=$?
  stop_daemons "$dir"
  if [ "$rc" -ne 0 ] && [ -n "$dir" ] && [ -f "$dir/northd.log" ]; then
    echo "--- last lines of $dir/northd.log" >&2
    tail -n 30 "$dir/northd.log" >&2
  fi
  if [ "$KEEP" = 1 ]; then echo "kept $top" >&2; else rm -rf "$top"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat >"$top/np.py" <<'PYEOF'
import json, os, socket, statistics, subprocess, sys, time

def rpc_conn(sock):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock)
    return s

class Conn:
    def __init__(self, sock):
        self.s = rpc_conn(sock)
        self.buf = b""
        self.id = 0
        self.dec = json.JSONDecoder()

    def call(self, method, params):
        self.id += 1
        self.s.sendall(json.dumps({"method": method, "params": params, "id": self.id}).encode())
        while True:
            msg = self.recv()
            if msg.get("method") == "echo":
                self.s.sendall(json.dumps({"result": msg["params"], "error": None, "id": msg["id"]}).encode())
                continue
            if msg.get("id") == self.id:
                if msg.get("error"):
                    raise SystemExit("%s: %s" % (method, msg["error"]))
                return msg["result"]

    def recv(self):
        # Messages are not delimited: try to parse only when what arrived
        # ends like a message does, so a large update is parsed once.
        while True:
            if self.buf.rstrip().endswith(b"}"):
                try:
                    text = self.buf.decode()
                    obj, end = self.dec.raw_decode(text)
                    self.buf = text[end:].lstrip().encode()
                    return obj
                except ValueError:
                    pass
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise SystemExit("connection closed")
            self.buf += chunk

    def monitor_new_flows(self):
        self.call("monitor", ["OVN_Southbound", "lflows", {"Logical_Flow": {"columns": ["actions"],
            "select": {"initial": False, "insert": True, "delete": False, "modify": True}}}])

    def wait_update(self, needle):
        while True:
            msg = self.recv()
            if msg.get("method") == "echo":
                self.s.sendall(json.dumps({"result": msg["params"], "error": None, "id": msg["id"]}).encode())
            elif msg.get("method") == "update":
                for row in msg["params"][1].get("Logical_Flow", {}).values():
                    if needle in row.get("new", {}).get("actions", ""):
                        return

    def transact(self, db, ops):
        res = self.call("transact", [db] + ops)
        for i, r in enumerate(res):
            if r is not None and "error" in r:
                raise SystemExit("transaction failed at op %d: %s" % (i, json.dumps(r)))
        if len(res) > len(ops):
            raise SystemExit("transaction failed: %s" % json.dumps(res[len(ops):]))
        return res

def nset(names):
    return ["set", [["named-uuid", n] for n in names]]

def smap(d):
    return ["map", [[k, v] for k, v in d.items()]]

def ins(table, name, row):
    return {"op": "insert", "table": table, "uuid-name": name, "row": row}

def mac(k, last):
    return "0a:58:0a:80:%02x:%02x" % (k, last)

def topology(n):
    ops = [ins("Load_Balancer_Group", "grp", {"name": "clusterLBGroup"})]
    cr_ports = ["crj"]
    ops.append(ins("Logical_Router_Port", "crj", {"name": "rtoj-ovn_cluster_router",
        "mac": "0a:58:64:40:00:01", "networks": "100.64.0.1/16"}))
    join_ports = ["jcr"]
    ops.append(ins("Logical_Switch_Port", "jcr", {"name": "jtor-ovn_cluster_router", "type": "router",
        "addresses": "router", "options": smap({"router-port": "rtoj-ovn_cluster_router"})}))
    for k in range(1, n + 1):
        node, gr = "node%d" % k, "GR_node%d" % k
        ops += [
            # node switch <-> cluster router
            ins("Logical_Router_Port", "crs%d" % k, {"name": "rtos-" + node, "mac": mac(k, 1),
                "networks": "10.128.%d.1/24" % k}),
            ins("Logical_Switch_Port", "str%d" % k, {"name": "stor-" + node, "type": "router",
                "addresses": "router", "options": smap({"router-port": "rtos-" + node})}),
            ins("Logical_Switch_Port", "mgmt%d" % k, {"name": "k8s-" + node,
                "addresses": "%s 10.128.%d.2" % (mac(k, 2), k)}),
            ins("Logical_Switch", "ls%d" % k, {"name": node, "ports": nset(["str%d" % k, "mgmt%d" % k]),
                "other_config": smap({"subnet": "10.128.%d.0/24" % k}),
                "load_balancer_group": nset(["grp"])}),
            # GR <-> join switch
            ins("Logical_Router_Port", "grj%d" % k, {"name": "rtoj-" + gr, "mac": "0a:58:64:40:00:%02x" % (k + 1),
                "networks": "100.64.0.%d/16" % (k + 1)}),
            ins("Logical_Switch_Port", "jgr%d" % k, {"name": "jtor-" + gr, "type": "router",
                "addresses": "router", "options": smap({"router-port": "rtoj-" + gr})}),
            # GR <-> external switch with a localnet port
            ins("Logical_Router_Port", "gre%d" % k, {"name": "rtoe-" + gr, "mac": "02:42:ac:12:00:%02x" % (10 + k),
                "networks": "172.18.0.%d/24" % (10 + k)}),
            ins("Logical_Switch_Port", "egr%d" % k, {"name": "etor-" + gr, "type": "router",
                "addresses": "router", "options": smap({"router-port": "rtoe-" + gr})}),
            ins("Logical_Switch_Port", "eln%d" % k, {"name": "breth0_" + node, "type": "localnet",
                "addresses": "unknown", "options": smap({"network_name": "physnet"})}),
            ins("Logical_Switch", "ext%d" % k, {"name": "ext_" + node, "ports": nset(["egr%d" % k, "eln%d" % k])}),
            ins("Logical_Router", "gr%d" % k, {"name": gr, "ports": nset(["grj%d" % k, "gre%d" % k]),
                "options": smap({"chassis": "chassis-%d" % k}),
                "load_balancer_group": nset(["grp"])}),
            ins("Logical_Router_Static_Route", "rt%d" % k, {"ip_prefix": "10.128.0.0/14", "nexthop": "100.64.0.1"}),
            {"op": "mutate", "table": "Logical_Router", "where": [["_uuid", "==", ["named-uuid", "gr%d" % k]]],
             "mutations": [["static_routes", "insert", nset(["rt%d" % k])]]},
            ins("NAT", "nat%d" % k, {"type": "snat", "logical_ip": "10.128.0.0/14",
                "external_ip": "172.18.0.%d" % (10 + k)}),
            {"op": "mutate", "table": "Logical_Router", "where": [["_uuid", "==", ["named-uuid", "gr%d" % k]]],
             "mutations": [["nat", "insert", nset(["nat%d" % k])]]},
        ]
        cr_ports.append("crs%d" % k)
        join_ports.append("jgr%d" % k)
    ops.append(ins("Logical_Router", "cr", {"name": "ovn_cluster_router", "ports": nset(cr_ports)}))
    ops.append(ins("Logical_Switch", "join", {"name": "join", "ports": nset(join_ports)}))
    return ops

def backends(svc, n, b, gen=0):
    out = []
    for j in range(b):
        idx = svc * b + j
        if j == b - 1 and gen:
            # the replaced backend: a pod elsewhere
            out.append("10.129.%d.%d:8080" % (gen // 250 % 250, gen % 250 + 1))
        else:
            out.append("10.128.%d.%d:8080" % (idx % n + 1, idx // n % 250 + 3))
    return ",".join(out)

def cluster_vip(svc):
    return "10.96.%d.%d:80" % (svc // 250, svc % 250 + 1)

def node_vip(k, svc):
    return "172.18.0.%d:%d" % (10 + k, 30000 + svc)

def tmpl_vip(svc):
    return "^KOVN_NODEIP:%d" % (30000 + svc)

def lb(name, vip, be, svc, extra=None):
    row = {"name": name, "protocol": "tcp", "vips": smap({vip: be}),
           "external_ids": smap({"k8s.ovn.org/owner": "default/svc%d" % svc})}
    if extra:
        row.update(extra)
    return row

def services(design, n, s, b):
    ops, grp = [], []
    for i in range(1, s + 1):
        be = backends(i, n, b)
        ops.append(ins("Load_Balancer", "c%d" % i, lb("svc%d_cluster" % i, cluster_vip(i), be, i)))
        grp.append("c%d" % i)
        if design == "b":
            ops.append(ins("Load_Balancer", "t%d" % i, lb("svc%d_nodeport" % i, tmpl_vip(i), be, i,
                {"options": smap({"template": "true", "address-family": "ipv4"})})))
            grp.append("t%d" % i)
        elif design == "a":
            for k in range(1, n + 1):
                ops.append(ins("Load_Balancer", "n%d_%d" % (i, k),
                               lb("svc%d_nodeport_node%d" % (i, k), node_vip(k, i), be, i)))
    if design == "a":
        for k in range(1, n + 1):
            ops.append({"op": "mutate", "table": "Logical_Router", "where": [["name", "==", "GR_node%d" % k]],
                        "mutations": [["load_balancer", "insert", nset(["n%d_%d" % (i, k) for i in range(1, s + 1)])]]})
    if design == "b":
        for k in range(1, n + 1):
            ops.append({"op": "insert", "table": "Chassis_Template_Var",
                        "row": {"chassis": "chassis-%d" % k,
                                "variables": smap({"KOVN_NODEIP": "172.18.0.%d" % (10 + k)})}})
    ops.append({"op": "mutate", "table": "Load_Balancer_Group", "where": [["name", "==", "clusterLBGroup"]],
                "mutations": [["load_balancer", "insert", nset(grp)]]})
    return ops

def count(conn, db, table):
    r = conn.transact(db, [{"op": "select", "table": table, "where": [], "columns": ["_uuid"]}])
    return len(r[0]["rows"])

def bump_and_wait(conn, ops, sb=None, needle=None):
    """Commits ops with an nb_cfg bump in the same transaction. If sb (a
    Conn monitoring SB Logical_Flow) is given, first waits for the SB
    update that carries needle in a flow's actions: when the change reached
    SB, as ovn-controller sees it. Then waits until northd has reported the
    bump done (NB_Global.sb_cfg == nb_cfg), as `ovn-nbctl --wait=sb` does.
    Returns (seconds to SB flows or None, seconds to sb_cfg)."""
    t0 = time.monotonic()
    r = conn.transact("OVN_Northbound", ops + [
        {"op": "mutate", "table": "NB_Global", "where": [], "mutations": [["nb_cfg", "+=", 1]]},
        {"op": "select", "table": "NB_Global", "where": [], "columns": ["nb_cfg"]}])
    cfg = r[-1]["rows"][0]["nb_cfg"]
    t_sb = None
    if sb is not None:
        sb.wait_update(needle)
        t_sb = time.monotonic() - t0
    conn.transact("OVN_Northbound", [{"op": "wait", "table": "NB_Global", "where": [], "timeout": 120000,
        "columns": ["sb_cfg"], "until": "==", "rows": [{"sb_cfg": cfg}]}])
    return t_sb, time.monotonic() - t0

def ms(xs):
    return "%.0f" % (statistics.median(xs) * 1000), "%.0f" % (max(xs) * 1000)

def main():
    cmd = sys.argv[1]
    if cmd == "topology":
        sock, n = sys.argv[2], int(sys.argv[3])
        Conn(sock).transact("OVN_Northbound", topology(n))
    elif cmd == "services":
        # The bulk: all services in one NB transaction, then at once
        # `ovn-nbctl --wait=sb sync` (argv[7:]) while watching SB for the
        # flows. Prints ms from the start: NB commit, flows in SB, sync done.
        sock, sbsock, design, n, s, b = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
        ops = services(design, n, s, b)
        conn = Conn(sock)
        sb = Conn(sbsock)
        sb.monitor_new_flows()
        t0 = time.monotonic()
        conn.transact("OVN_Northbound", ops)
        t_commit = time.monotonic() - t0
        sync = subprocess.Popen(sys.argv[8:])
        try:
            # northd writes every flow of one run in one SB transaction
            sb.wait_update(backends(s, n, b))
            t_sb = time.monotonic() - t0
            if sync.wait() != 0:
                raise SystemExit("ovn-nbctl sync failed")
        finally:
            if sync.poll() is None:
                sync.kill()
        t_sync = time.monotonic() - t0
        print("%.0f %.0f %.0f" % (t_commit * 1000, t_sb * 1000, t_sync * 1000))
    elif cmd == "count":
        sock, db = sys.argv[2], sys.argv[3]
        conn = Conn(sock)
        print(" ".join(str(count(conn, db, t)) for t in sys.argv[4:]))
    elif cmd == "idle":
        sock, rounds = sys.argv[2], int(sys.argv[3])
        conn = Conn(sock)
        xs = [bump_and_wait(conn, [])[1] for _ in range(rounds)]
        print(*ms(xs))
    elif cmd == "changes":
        # prints: to-SB-flows median_ms max_ms, to-sb_cfg median_ms max_ms, rows_per_change
        sock, sbsock, design, n, s, b, rounds = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8])
        conn = Conn(sock)
        sb = Conn(sbsock)
        sb.monitor_new_flows()
        svc = 1 + s // 2
        # The controller knows its rows' UUIDs from its cache; look them up
        # once, outside the timed part.
        names = ["svc%d_cluster" % svc]
        if design == "a":
            names += ["svc%d_nodeport_node%d" % (svc, k) for k in range(1, n + 1)]
        elif design == "b":
            names.append("svc%d_nodeport" % svc)
        r = conn.transact("OVN_Northbound", [{"op": "select", "table": "Load_Balancer",
            "where": [["name", "==", nm]], "columns": ["_uuid", "vips"]} for nm in names])
        rows = [x["rows"][0] for x in r]
        to_sb, to_cfg = [], []
        for g in range(1, rounds + 1):
            be = backends(svc, n, b, gen=g)
            ops = []
            for row in rows:
                vip = row["vips"][1][0][0]
                ops.append({"op": "update", "table": "Load_Balancer", "where": [["_uuid", "==", row["_uuid"]]],
                            "row": {"vips": smap({vip: be})}})
            a, c = bump_and_wait(conn, ops, sb, backends(svc, n, b, gen=g).split(",")[-1])
            to_sb.append(a)
            to_cfg.append(c)
        print(*ms(to_sb), *ms(to_cfg), len(rows))
    else:
        raise SystemExit("unknown command " + cmd)

main()
PYEOF

# cpu PIDFILE...: CPU time (user + system) the daemons have used so far, in ms.
cpu() {
  local f t=0 u st
  for f in "$@"; do
    read -r u st < <(awk '{ print $14, $15 }' "/proc/$(cat "$f")/stat")
    t=$((t + u + st))
  done
  echo $((t * 1000 / CLK_TCK))
}
CLK_TCK=$(getconf CLK_TCK)
# longest NAME: the longest sample of northd stopwatch NAME, in ms.
longest() { awk -v n="'$2'" '$0 ~ "^Statistics for " n { f = 1; next } f && /Maximum:/ { print $2; exit }' "$1"; }

# run DESIGN N: one measurement on fresh daemons; appends one line of
# results to $top/results.
run() {
  local design=$1 n=$2
  dir=$top/$design-$n
  mkdir -p "$dir"
  local env=(OVS_RUNDIR="$dir" OVS_LOGDIR="$dir" OVS_DBDIR="$dir" OVN_RUNDIR="$dir" OVN_LOGDIR="$dir" OVN_DBDIR="$dir")
  local nb="unix:$dir/nb.sock" sb="unix:$dir/sb.sock" ctl="$dir/northd.ctl"
  local db schema
  for db in nb sb; do
    schema=$NB_SCHEMA; [ "$db" = sb ] && schema=$SB_SCHEMA
    "$OVSDB_TOOL" create "$dir/$db.db" "$schema"
    env "${env[@]}" "$OVSDB_SERVER" "$dir/$db.db" --remote="punix:$dir/$db.sock" \
      --pidfile="$dir/$db.pid" --unixctl="$dir/$db.ctl" --log-file="$dir/$db.log" \
      --detach --no-chdir 2>/dev/null
  done
  env "${env[@]}" "$NBCTL" --db="$nb" init
  env "${env[@]}" "$SBCTL" --db="$sb" init
  env "${env[@]}" "$NORTHD" --ovnnb-db="$nb" --ovnsb-db="$sb" --n-threads="$N_THREADS" \
    --pidfile="$dir/northd.pid" --unixctl="$ctl" --log-file="$dir/northd.log" \
    --detach --no-chdir 2>/dev/null
  local i
  for i in $(seq 100); do
    "$APPCTL" -t "$ctl" status 2>/dev/null | grep -q 'Status: active' && break
    [ "$i" = 100 ] && { echo "ovn-northd did not become active" >&2; return 1; }
    sleep 0.1
  done

  # Chassis rows without ovn-controller: a name is all Chassis_Template_Var
  # needs. Encap (type, ip) is unique, so each gets its own address.
  local args=() k
  for k in $(seq "$n"); do
    args+=(-- chassis-add "chassis-$k" geneve "192.168.$((k / 250)).$((k % 250 + 1))")
  done
  env "${env[@]}" "$SBCTL" --db="$sb" "${args[@]}"
  "$PY" "$top/np.py" topology "$dir/nb.sock" "$n"
  env "${env[@]}" "$NBCTL" --db="$nb" --wait=sb --timeout=300 sync

  # Bulk: the services in one NB transaction, then --wait=sb sync.
  "$APPCTL" -t "$ctl" stopwatch/reset >/dev/null
  local bulk c0 n0 s0 bnd bsb bnb
  c0=$(cpu "$dir/northd.pid"); n0=$(cpu "$dir/nb.pid"); s0=$(cpu "$dir/sb.pid")
  bulk=$(env "${env[@]}" "$PY" "$top/np.py" services "$dir/nb.sock" "$dir/sb.sock" "$design" "$n" "$SERVICES" "$BACKENDS" \
    "$NBCTL" --db="$nb" --wait=sb --timeout=300 sync)
  bnd=$(( $(cpu "$dir/northd.pid") - c0 )); bnb=$(( $(cpu "$dir/nb.pid") - n0 )); bsb=$(( $(cpu "$dir/sb.pid") - s0 ))
  "$APPCTL" -t "$ctl" stopwatch/show >"$dir/stopwatch-bulk.txt"

  local idle changes
  idle=$("$PY" "$top/np.py" idle "$dir/nb.sock" 5)
  "$APPCTL" -t "$ctl" inc-engine/clear-stats >/dev/null
  "$APPCTL" -t "$ctl" stopwatch/reset >/dev/null
  local cnd csb
  c0=$(cpu "$dir/northd.pid"); s0=$(cpu "$dir/sb.pid")
  changes=$("$PY" "$top/np.py" changes "$dir/nb.sock" "$dir/sb.sock" "$design" "$n" "$SERVICES" "$BACKENDS" "$CHANGES")
  cnd=$(( ($(cpu "$dir/northd.pid") - c0) / CHANGES )); csb=$(( ($(cpu "$dir/sb.pid") - s0) / CHANGES ))
  "$APPCTL" -t "$ctl" inc-engine/show-stats >"$dir/engine-stats.txt"
  "$APPCTL" -t "$ctl" stopwatch/show >"$dir/stopwatch-changes.txt"
  local recomputes
  recomputes=$(awk '/^Node: lflow$/ { f = 1; next } f && /recompute:/ { print $3; exit }' "$dir/engine-stats.txt")

  local nbc sbc
  nbc=$("$PY" "$top/np.py" count "$dir/nb.sock" OVN_Northbound Load_Balancer Load_Balancer_Group Chassis_Template_Var)
  sbc=$("$PY" "$top/np.py" count "$dir/sb.sock" OVN_Southbound Logical_Flow Logical_DP_Group Load_Balancer Chassis_Template_Var)
  "$APPCTL" -t "$dir/nb.ctl" ovsdb-server/compact >/dev/null
  "$APPCTL" -t "$dir/sb.ctl" ovsdb-server/compact >/dev/null
  local nbk sbk rss
  nbk=$(( $(stat -c %s "$dir/nb.db") / 1024 ))
  sbk=$(( $(stat -c %s "$dir/sb.db") / 1024 ))
  rss=$(( $(awk '/^VmRSS/ { print $2 }' "/proc/$(cat "$dir/northd.pid")/status") / 1024 ))

  # Anything northd rejected shows here; its "long poll interval" warnings
  # only repeat the timings.
  if grep -E '\|(ERR|EMER|WARN)\|' "$dir/northd.log" | grep -v -E '\|timeval\|' >"$dir/northd-warnings.txt"; then
    echo "ovn-northd warnings ($design, N=$n):" >&2
    sed 's/^[^|]*|[^|]*|//' "$dir/northd-warnings.txt" | sort | uniq -c | head -20 >&2
  fi
  stop_daemons "$dir"

  echo "$design $n $nbc $sbc $nbk $sbk $rss $bulk $(longest "$dir/stopwatch-bulk.txt" ovn-northd-loop) $idle $changes ${recomputes:-?} $(longest "$dir/stopwatch-changes.txt" ovn-northd-loop) $bnd $bnb $bsb $cnd $csb" >>"$top/results"
}

: >"$top/results"
load0=$(cut -d' ' -f1-3 /proc/loadavg)
for n in $NODES; do
  for d in $DESIGNS; do
    echo "running design $d with $n nodes" >&2
    run "$d" "$n"
  done
done

echo "Load average before/after: $load0 / $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews the times)"
echo "OVN $("$NORTHD" --version | head -1 | awk '{print $NF}'), OVS $("$OVSDB_SERVER" --version | head -1 | awk '{print $NF}'), $(nproc) CPUs, ovn-northd --n-threads=$N_THREADS; $SERVICES services x $BACKENDS backends; $CHANGES endpoint changes per run"
echo
echo "Size (c: ClusterIP LBs only; a: + per-node NodePort LBs on each GR; b: + template NodePort LBs in the group):"
echo
echo '| design | nodes | NB Load_Balancer | NB LB_Group | NB Chassis_Template_Var | SB Chassis_Template_Var | NB KiB | SB KiB | SB Logical_Flow | SB Logical_DP_Group | SB Load_Balancer | northd RSS MiB |'
echo '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |'
while read -r d n lb lbg ctv lfl dpg sblb sbctv nbk sbk rss _; do
  echo "| $d | $n | $lb | $lbg | $ctv | $sbctv | $nbk | $sbk | $lfl | $dpg | $sblb | $rss |"
done <"$top/results"
echo
echo "Time in ms (median / max over the endpoint changes):"
echo
echo '| design | nodes | bulk: NB commit | bulk → SB flows | bulk → --wait=sb sync done | bulk: longest northd loop | nb_cfg bump alone → sb_cfg (median / max of 5) | endpoint change → SB flows | endpoint change → sb_cfg | NB rows per endpoint change | lflow recomputes / changes | change: longest northd loop |'
echo '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |'
while read -r d n _ _ _ _ _ _ _ _ _ _ tx bsb sync bloop imed imax smed smax cmed cmax rows rec cloop _; do
  echo "| $d | $n | $tx | $bsb | $sync | $bloop | $imed / $imax | $smed / $smax | $cmed / $cmax | $rows | $rec / $CHANGES | $cloop |"
done <"$top/results"
echo
echo "CPU time in ms (user + system, from /proc; less sensitive to other load than the wall times):"
echo
echo '| design | nodes | bulk: ovn-northd | bulk: NB ovsdb-server | bulk: SB ovsdb-server | per endpoint change: ovn-northd | per endpoint change: SB ovsdb-server |'
echo '| --- | ---: | ---: | ---: | ---: | ---: | ---: |'
while read -r -a f; do
  echo "| ${f[0]} | ${f[1]} | ${f[25]} | ${f[26]} | ${f[27]} | ${f[28]} | ${f[29]} |"
done <"$top/results"
