#!/usr/bin/env bash
# Fan-out benchmark against a real cluster: `herald hub` + EDGES `herald edge` processes
# (default 2; EDGES=0 runs one `herald dev` process instead), release build, on loopback; then `herald-bench fanout` with the flags given
# (defaults: 1,000 subscribers, 100 msg/s, 30 s, 200-byte payload), measuring the servers' CPU
# and memory through --server-pid; then everything is stopped.
#
#   scripts/bench-fanout.sh                       # the BENCHMARKS.md run
#   scripts/bench-fanout.sh -n 10000 --source-ips 127.0.0.1,127.0.0.2 --json
#
# Environment: HERALD and BENCH_BIN (prebuilt binaries; else both are built), EDGES, WORK (logs), BENCH_APP_*.
source "$(dirname "$0")/bench-lib.sh"

if [ "${EDGES:-2}" = 0 ]; then
  start_dev
else
  start_hub
  start_edges "${EDGES:-2}"
fi
describe >&2
wait_quiet
echo "hub/dev pid $HUB_PID, edges ${EDGE_PIDS[*]} at ${EDGE_WS[*]}; logs in $WORK" >&2

ws_flags=()
pid_flags=(--server-pid "$HUB_PID")
for ws in "${EDGE_WS[@]}"; do ws_flags+=(--ws "$ws"); done
for pid in "${EDGE_PIDS[@]}"; do pid_flags+=(--server-pid "$pid"); done
"$BENCH_BIN" fanout "${ws_flags[@]}" --api "http://$HUB_HTTP" "${pid_flags[@]}" \
  --app-id "$BENCH_APP_ID" --app-key "$BENCH_APP_KEY" --app-secret "$BENCH_APP_SECRET" "$@"
