#!/usr/bin/env bash
# Idle-socket benchmark: `herald hub` + one `herald edge` (release build) on loopback, then
# `herald-bench idle` with the flags given, measuring the edge's RSS before and after through
# --server-pid (the report's "KiB/subscriber" on the edge's row is the figure).
#
#   scripts/bench-idle.sh -n 10000 --source-ips 127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4
#
# Environment: HERALD and BENCH_BIN (prebuilt binaries; else both are built), WORK (logs), BENCH_APP_*.
source "$(dirname "$0")/bench-lib.sh"

start_hub
start_edges 1
describe >&2
wait_quiet
echo "hub pid $HUB_PID, edge ${EDGE_PIDS[0]} at ${EDGE_WS[0]}; logs in $WORK" >&2
"$BENCH_BIN" idle --ws "${EDGE_WS[0]}" --server-pid "${EDGE_PIDS[0]}" \
  --server-pid "$HUB_PID" --app-key "$BENCH_APP_KEY" "$@"
