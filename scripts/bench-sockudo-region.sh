#!/usr/bin/env bash
# The region fan-out against the peer: NODES Sockudo processes (default 2) sharing a real
# redis-server through Sockudo's Redis adapter, subscribers spread over every node and triggers
# over every node, so each event crosses Redis — the shape of scripts/bench-region.sh. CPU and
# memory are summed over every server process, Redis included.
#
#   SOCKUDO=target-peer/install/bin/sockudo scripts/bench-sockudo-region.sh -n 1000 --rate 100 \
#     --duration 30 --payload 200
#
# Environment: SOCKUDO (required), HERALD and BENCH_BIN (else built), NODES, WORK, BENCH_APP_*.
source "$(dirname "$0")/bench-lib.sh"

start_redis
flags=(--server-pid "$REDIS_PID")
for i in $(seq 0 $((${NODES:-2} - 1))); do
  port=$(free_port)
  start_sockudo "sockudo$i" "$port" ADAPTER_DRIVER=redis CACHE_DRIVER=redis REDIS_URL="$REDIS_URL" \
    INSTANCE_PROCESS_ID="sockudo$i"
  flags+=(--ws "ws://127.0.0.1:$port" --api "http://127.0.0.1:$port" --server-pid "$SOCKUDO_PID")
done
describe >&2
wait_quiet
echo "sockudo $("$SOCKUDO" --version 2>/dev/null || true) × ${NODES:-2} over $REDIS_URL; logs in $WORK" >&2

"$BENCH_BIN" fanout "${flags[@]}" \
  --app-id "$BENCH_APP_ID" --app-key "$BENCH_APP_KEY" --app-secret "$BENCH_APP_SECRET" "$@"
