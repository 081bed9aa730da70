#!/usr/bin/env bash
# Fan-out benchmark across a region: Redis, HUBS `herald hub --redis` (default 2) and EDGES
# `herald edge` (default 3) spread over the hubs, release build, on loopback; then
# `herald-bench fanout` with subscribers spread over every edge and triggers over every hub's
# HTTP API, so each event crosses Redis to reach the other hub's edges. CPU and memory are
# summed over every server process, Redis included.
#
#   scripts/bench-region.sh -n 1000 --rate 100 --duration 30 --payload 200   # BENCHMARKS.md K
#   REDIS_CLUSTER=3 scripts/bench-region.sh -n 1000 --rate 100 --duration 30 --payload 200 --channels 16
#
# Redis is one redis-server, or with REDIS_CLUSTER=N a Redis Cluster of N primaries without
# replicas (cluster-enabled on loopback ports, formed by the script; the hubs detect it). Spread
# the events over channels (`--channels N`) so that the shards share them. After the run, one
# line per Redis process on stderr: its pid (as in the report), slots, and the scripts and
# publishes it ran — the events each shard carried.
#
# Environment: HERALD and BENCH_BIN (prebuilt binaries; else both are built), HUBS, EDGES, WORK
# (logs), BENCH_APP_*, REDIS_CLUSTER; REDIS_REPLICA=1 (standalone only) gives the primary a
# replica (hubs then answer a trigger once it holds the event, unless
# HERALD_REDIS__MIN_REPLICAS_ACKED=0), whose CPU is counted too.
source "$(dirname "$0")/bench-lib.sh"

start_region "${HUBS:-2}" "${EDGES:-3}"
describe >&2
wait_quiet
echo "redis ${REDIS_PIDS[*]} (slots ${REDIS_SLOTS[*]}), hubs ${HUB_PIDS[*]}, edges ${EDGE_PIDS[*]} at ${EDGE_WS[*]}; logs in $WORK" >&2

flags=()
for pid in "${REDIS_PIDS[@]}"; do flags+=(--server-pid "$pid"); done
[ -n "${REDIS_REPLICA_PID:-}" ] && flags+=(--server-pid "$REDIS_REPLICA_PID")
for ws in "${EDGE_WS[@]}"; do flags+=(--ws "$ws"); done
for http in "${HUB_HTTPS[@]}"; do flags+=(--api "http://$http"); done
for pid in "${HUB_PIDS[@]}" "${EDGE_PIDS[@]}"; do flags+=(--server-pid "$pid"); done
status=0
"$BENCH_BIN" fanout "${flags[@]}" \
  --app-id "$BENCH_APP_ID" --app-key "$BENCH_APP_KEY" --app-secret "$BENCH_APP_SECRET" "$@" ||
  status=$?
redis_node_stats >&2
echo "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
exit "$status"
