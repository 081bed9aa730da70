# shellcheck shell=bash disable=SC2034 # variables set here are read by the scripts that source this file
# Shared by scripts/bench-*.sh: start `herald hub` and N `herald edge` processes on loopback
# (port 0, addresses read from their --ready-json lines), and stop them on exit.
# Sourced, not run. Needs: HERALD and BENCH_BIN (the binaries; built when unset; not
# HERALD_BENCH: herald refuses unknown HERALD_* variables), WORK (a
# scratch directory). HUB_WORKER_THREADS / EDGE_WORKER_THREADS, when set, give the hubs / edges
# that many runtime threads (--worker-threads; default: the CPU count).

set -euo pipefail

BENCH_APP_ID=${BENCH_APP_ID:-100001}
BENCH_APP_KEY=${BENCH_APP_KEY:-herald-dev-key}
BENCH_APP_SECRET=${BENCH_APP_SECRET:-herald-dev-secret}
BENCH_CLUSTER_KEY=${BENCH_CLUSTER_KEY:-bench-cluster-key-0123456789}
PIDS=()

# stop_all: stops every process started, the last started first (edges, then hubs, then Redis:
# a hub whose Redis is gone first would spend its shutdown reconnecting).
stop_all() {
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    kill "${PIDS[$i]}" 2>/dev/null || true
    wait "${PIDS[$i]}" 2>/dev/null || true
  done
}
trap stop_all EXIT

# json_field FILE FIELD: a string field of the one-line JSON in FILE.
json_field() {
  sed -n "s/.*\"$2\":\"\([^\"]*\)\".*/\1/p" "$1" | head -n 1
}

# wait_ready NAME FILE PID: waits (30 s at most) for the ready line in FILE.
wait_ready() {
  for _ in $(seq 300); do
    # The whole line, newline included: a reader may see a write in progress.
    if grep -q '"event":"ready"' "$2" 2>/dev/null && [ -z "$(tail -c 1 "$2")" ]; then
      return 0
    fi
    if ! kill -0 "$3" 2>/dev/null; then
      echo "$1 exited before it was ready; its log:" >&2
      cat "$WORK/$1.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "$1 printed no ready line within 30 s" >&2
  exit 1
}

# start_hub: sets HUB_PID HUB_HTTP HUB_LINK HUB_CERT.
start_hub() {
  "$HERALD" hub --cluster-key "$BENCH_CLUSTER_KEY" --app-id "$BENCH_APP_ID" \
    --app-key "$BENCH_APP_KEY" --app-secret "$BENCH_APP_SECRET" \
    --http-listen 127.0.0.1:0 --link-listen 127.0.0.1:0 --ready-json \
    ${HUB_WORKER_THREADS:+--worker-threads "$HUB_WORKER_THREADS"} \
    >"$WORK/hub.json" 2>"$WORK/hub.log" &
  HUB_PID=$!
  PIDS+=("$HUB_PID")
  wait_ready hub "$WORK/hub.json" "$HUB_PID"
  HUB_HTTP=$(json_field "$WORK/hub.json" http)
  HUB_LINK=$(json_field "$WORK/hub.json" link)
  HUB_CERT=$(json_field "$WORK/hub.json" cert_sha256)
}

# start_edges N: sets EDGE_PIDS EDGE_WS (ws:// URLs) EDGE_ADMIN (host:port).
start_edges() {
  EDGE_PIDS=() EDGE_WS=() EDGE_ADMIN=()
  for i in $(seq "$1"); do
    "$HERALD" edge --cluster-key "$BENCH_CLUSTER_KEY" --hub "$HUB_LINK" \
      --hub-cert-sha256 "$HUB_CERT" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
      ${EDGE_WORKER_THREADS:+--worker-threads "$EDGE_WORKER_THREADS"} \
      --ready-json >"$WORK/edge$i.json" 2>"$WORK/edge$i.log" &
    local pid=$!
    PIDS+=("$pid")
    wait_ready "edge$i" "$WORK/edge$i.json" "$pid"
    EDGE_PIDS+=("$pid")
    EDGE_WS+=("ws://$(json_field "$WORK/edge$i.json" websocket)")
    EDGE_ADMIN+=("$(json_field "$WORK/edge$i.json" admin)")
  done
}

# start_dev: `herald dev` (hub and edge in one process, like the peer); sets HUB_PID (its pid),
# HUB_HTTP, EDGE_PIDS, EDGE_WS the way start_hub and start_edges do.
start_dev() {
  "$HERALD" dev --app-id "$BENCH_APP_ID" --app-key "$BENCH_APP_KEY" \
    --app-secret "$BENCH_APP_SECRET" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
    --http-listen 127.0.0.1:0 --ready-json >"$WORK/dev.json" 2>"$WORK/dev.log" &
  HUB_PID=$!
  PIDS+=("$HUB_PID")
  wait_ready dev "$WORK/dev.json" "$HUB_PID"
  HUB_HTTP=$(json_field "$WORK/dev.json" http)
  EDGE_PIDS=() EDGE_WS=("ws://$(json_field "$WORK/dev.json" websocket)")
}

# free_port: a free loopback TCP port.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_redis: a redis-server on a free port, nothing persisted; sets REDIS_PID and REDIS_URL.
start_redis() {
  local port
  port=$(free_port)
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
    >"$WORK/redis.log" 2>&1 &
  REDIS_PID=$!
  PIDS+=("$REDIS_PID")
  REDIS_URL="redis://127.0.0.1:$port"
  local up=
  for _ in $(seq 100); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && { up=1; break; }
    sleep 0.1
  done
  if [ -z "$up" ]; then
    echo "redis-server did not start; its log:" >&2
    cat "$WORK/redis.log" >&2
    exit 1
  fi
  [ "${REDIS_REPLICA:-0}" = 1 ] && start_redis_replica "$port"
  return 0
}

# start_redis_replica PRIMARY_PORT: a replica of the primary on a free port, waited for until
# its link is up (hubs then wait for it: redis.min_replicas_acked defaults to 1); sets
# REDIS_REPLICA_PID.
start_redis_replica() {
  local primary=$1 port
  port=$(free_port)
  # A replica writes the snapshot it syncs from to its directory: keep it in $WORK.
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" \
    --replicaof 127.0.0.1 "$primary" >"$WORK/redis-replica.log" 2>&1 &
  REDIS_REPLICA_PID=$!
  PIDS+=("$REDIS_REPLICA_PID")
  for _ in $(seq 100); do
    redis-cli -p "$port" info replication 2>/dev/null | grep -q '^master_link_status:up' && return 0
    sleep 0.1
  done
  echo "the Redis replica did not sync; its log:" >&2
  cat "$WORK/redis-replica.log" >&2
  exit 1
}

# start_sockudo NAME PORT [VAR=VALUE...]: the peer, Sockudo, on PORT with Herald's bench app,
# everything in memory and its rate limits and per-app quotas lifted so they do not cap the
# measurement; extra variables (e.g. a Redis adapter) are added. Waits until it answers a
# WebSocket probe; sets SOCKUDO_PID.
start_sockudo() {
  local name=$1 port=$2
  shift 2
  env HOST=127.0.0.1 PORT="$port" DEBUG=false \
    SOCKUDO_DEFAULT_APP_ID="$BENCH_APP_ID" SOCKUDO_DEFAULT_APP_KEY="$BENCH_APP_KEY" \
    SOCKUDO_DEFAULT_APP_SECRET="$BENCH_APP_SECRET" \
    SOCKUDO_DEFAULT_APP_MAX_CONNECTIONS=1000000 \
    SOCKUDO_DEFAULT_APP_MAX_BACKEND_EVENTS_PER_SECOND=1000000 \
    SOCKUDO_DEFAULT_APP_MAX_READ_REQUESTS_PER_SECOND=1000000 \
    RATE_LIMITER_ENABLED=false ADAPTER_DRIVER=local CACHE_DRIVER=memory QUEUE_DRIVER=memory \
    APP_MANAGER_DRIVER=memory METRICS_ENABLED=false "$@" \
    "${SOCKUDO:?set SOCKUDO to the sockudo binary}" >"$WORK/$name.log" 2>&1 &
  SOCKUDO_PID=$!
  PIDS+=("$SOCKUDO_PID")
  for _ in $(seq 300); do
    if "$HERALD" probe "ws://127.0.0.1:$port" --app-key "$BENCH_APP_KEY" --timeout 1 >/dev/null 2>&1; then
      return 0
    fi
    if ! kill -0 "$SOCKUDO_PID" 2>/dev/null; then
      echo "$name exited; its log:" >&2
      cat "$WORK/$name.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "$name did not answer within 30 s" >&2
  exit 1
}

# wait_redis PORT LOG: waits (10 s at most) until the redis-server on PORT answers PING.
wait_redis() {
  for _ in $(seq 100); do
    redis-cli -p "$1" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "redis-server on port $1 did not start; its log:" >&2
  cat "$2" >&2
  exit 1
}

# start_redis_cluster N: a Redis Cluster of N primaries (no replicas; N = 1 is allowed, which
# `redis-cli --cluster create` refuses) on free loopback ports, nothing persisted but each
# node's nodes.conf (in $WORK). Nodes announce 127.0.0.1: a node that met no other knows no
# address of its own and names an empty endpoint in CLUSTER SHARDS. Node i serves slots i·16384/N … (i+1)·16384/N − 1 (ADDSLOTSRANGE)
# and meets node 0 (CLUSTER MEET with its bus port); returns once every node reports
# cluster_state:ok with N known nodes and all slots served, polled (30 s at most). Sets
# REDIS_PIDS, REDIS_PORTS, REDIS_URL (node 0: a hub learns the others) and REDIS_SLOTS
# ("first-last" per node).
start_redis_cluster() {
  local n=$1 i port bus dir buses=()
  REDIS_PIDS=() REDIS_PORTS=() REDIS_SLOTS=()
  for i in $(seq 0 $((n - 1))); do
    port=$(free_port)
    bus=$(free_port)
    while [ "$bus" = "$port" ]; do bus=$(free_port); done
    dir="$WORK/redis-node$i"
    mkdir -p "$dir"
    rm -f "$dir/nodes.conf"
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
      --cluster-enabled yes --cluster-config-file nodes.conf --cluster-port "$bus" \
      --cluster-announce-ip 127.0.0.1 \
      >"$WORK/redis-node$i.log" 2>&1 &
    REDIS_PIDS+=("$!")
    PIDS+=("$!")
    wait_redis "$port" "$WORK/redis-node$i.log"
    local first=$((i * 16384 / n)) last=$(((i + 1) * 16384 / n - 1))
    redis-cli -p "$port" cluster addslotsrange "$first" "$last" | grep -qx OK
    REDIS_PORTS+=("$port")
    REDIS_SLOTS+=("$first-$last")
    buses+=("$bus")
  done
  for i in $(seq 1 $((n - 1))); do
    redis-cli -p "${REDIS_PORTS[0]}" cluster meet 127.0.0.1 "${REDIS_PORTS[$i]}" "${buses[$i]}" |
      grep -qx OK
  done
  local info formed
  for _ in $(seq 300); do
    formed=1
    for port in "${REDIS_PORTS[@]}"; do
      info=$(redis-cli -p "$port" cluster info 2>/dev/null | tr -d '\r')
      grep -qx 'cluster_state:ok' <<<"$info" &&
        grep -qx "cluster_known_nodes:$n" <<<"$info" &&
        grep -qx 'cluster_slots_ok:16384' <<<"$info" || { formed=; break; }
    done
    [ -n "$formed" ] && break
    sleep 0.1
  done
  if [ -z "$formed" ]; then
    echo "the Redis Cluster did not form within 30 s; node on port $port says:" >&2
    echo "$info" >&2
    exit 1
  fi
  REDIS_URL="redis://127.0.0.1:${REDIS_PORTS[0]}"
}

# redis_node_stats: one line per Redis Cluster node (or the standalone server): its pid, port,
# slots, and the scripts (EVALSHA/EVAL/FCALL), sharded publishes and commands it ran so far.
redis_node_stats() {
  local i stats
  for i in "${!REDIS_PORTS[@]}"; do
    stats=$(redis-cli -p "${REDIS_PORTS[$i]}" info commandstats | tr -d '\r' |
      sed -n 's/^cmdstat_\(evalsha\|eval\|fcall\|spublish\|publish\):calls=\([0-9]*\).*/\1 \2/p' |
      paste -sd ' ' -)
    echo "redis pid ${REDIS_PIDS[$i]} port ${REDIS_PORTS[$i]} slots ${REDIS_SLOTS[$i]}: calls ${stats:-none}"
  done
}

# start_region HUBS EDGES: Redis — a redis-server on a free port, or with REDIS_CLUSTER=N a
# Redis Cluster of N primaries (start_redis_cluster) —, HUBS `herald hub --redis` (hub i in
# zone z<i>) and EDGES `herald edge` knowing every hub (edge i in zone z<i % HUBS>, so it links
# to hub i % HUBS first); sets REDIS_*, HUB_PIDS, HUB_HTTPS (host:port), EDGE_PIDS, EDGE_WS.
start_region() {
  local hubs=$1 edges=$2
  if [ "${REDIS_CLUSTER:-0}" -gt 0 ]; then
    start_redis_cluster "$REDIS_CLUSTER"
  else
    start_redis
    REDIS_PIDS=("$REDIS_PID") REDIS_PORTS=("${REDIS_URL##*:}") REDIS_SLOTS=(standalone)
  fi
  HUB_PIDS=() HUB_HTTPS=()
  local hub_flags=()
  for i in $(seq 0 $((hubs - 1))); do
    "$HERALD" hub --cluster-key "$BENCH_CLUSTER_KEY" --app-id "$BENCH_APP_ID" \
      --app-key "$BENCH_APP_KEY" --app-secret "$BENCH_APP_SECRET" \
      --redis "$REDIS_URL" \
      --http-listen 127.0.0.1:0 --link-listen 127.0.0.1:0 --ready-json \
      ${HUB_WORKER_THREADS:+--worker-threads "$HUB_WORKER_THREADS"} \
      >"$WORK/hub$i.json" 2>"$WORK/hub$i.log" &
    local pid=$!
    PIDS+=("$pid")
    wait_ready "hub$i" "$WORK/hub$i.json" "$pid"
    HUB_PIDS+=("$pid")
    HUB_HTTPS+=("$(json_field "$WORK/hub$i.json" http)")
    hub_flags+=(--hub "z$i=$(json_field "$WORK/hub$i.json" link)")
    hub_flags+=(--hub-cert-sha256 "$(json_field "$WORK/hub$i.json" cert_sha256)")
  done
  EDGE_PIDS=() EDGE_WS=()
  for i in $(seq 0 $((edges - 1))); do
    HERALD_EDGE__ZONE="z$((i % hubs))" "$HERALD" edge --cluster-key "$BENCH_CLUSTER_KEY" \
      "${hub_flags[@]}" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
      ${EDGE_WORKER_THREADS:+--worker-threads "$EDGE_WORKER_THREADS"} \
      --ready-json >"$WORK/edge$i.json" 2>"$WORK/edge$i.log" &
    local pid=$!
    PIDS+=("$pid")
    wait_ready "edge$i" "$WORK/edge$i.json" "$pid"
    EDGE_PIDS+=("$pid")
    EDGE_WS+=("ws://$(json_field "$WORK/edge$i.json" websocket)")
  done
}

# run_single MODE HOST:PORT PID [flags]: `herald-bench MODE` against a server that serves the
# WebSocket endpoint and the HTTP API on one port (Sockudo, the floor, herald dev's shape).
run_single() {
  local mode=$1 addr=$2 pid=$3
  shift 3
  case "$mode" in
    fanout)
      "$BENCH_BIN" fanout --ws "ws://$addr" --api "http://$addr" --server-pid "$pid" \
        --app-id "$BENCH_APP_ID" --app-key "$BENCH_APP_KEY" --app-secret "$BENCH_APP_SECRET" "$@"
      ;;
    idle)
      "$BENCH_BIN" idle --ws "ws://$addr" --server-pid "$pid" --app-key "$BENCH_APP_KEY" "$@"
      ;;
    *)
      echo "unknown mode $mode: fanout or idle" >&2
      exit 64
      ;;
  esac
}

# busy_percent: how busy the machine's CPUs were over the last 2 s.
busy_percent() {
  local a b
  read -r -a a < <(grep '^cpu ' /proc/stat)
  sleep 2
  read -r -a b < <(grep '^cpu ' /proc/stat)
  local total=0 idle=$(( b[4] - a[4] + b[5] - a[5] ))
  for i in 1 2 3 4 5 6 7 8; do total=$(( total + b[i] - a[i] )); done
  echo $(( total > 0 ? 100 * (total - idle) / total : 0 ))
}

# wait_quiet: waits (QUIET_WAIT seconds at most, default 600) until the machine is idle
# (< 10 % busy) so that other work does not compete with the measurement; says so if it is not.
wait_quiet() {
  local waited=0 busy
  while busy=$(busy_percent); [ "$busy" -ge 10 ]; do
    if [ "$waited" -ge "${QUIET_WAIT:-600}" ]; then
      echo "warning: the machine is still ${busy}% busy; measuring anyway" >&2
      return 0
    fi
    waited=$(( waited + 2 ))
  done
  echo "machine ${busy}% busy before the run" >&2
}

# describe: the machine and the commit, for BENCHMARKS.md.
describe() {
  echo "commit $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet || echo '+dirty')"
  echo "load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "cpu $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; RAM $(free -g | awk '/^Mem:/{print $2}') GiB; open files $(ulimit -Hn)"
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -z "${HERALD:-}" ] || [ -z "${BENCH_BIN:-}" ]; then
  (cd "$ROOT" && cargo build --release --quiet -p herald -p herald-bench)
  HERALD=${HERALD:-${CARGO_TARGET_DIR:-$ROOT/target}/release/herald}
  BENCH_BIN=${BENCH_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/herald-bench}
fi
WORK=${WORK:-$(mktemp -d)}
mkdir -p "$WORK"
