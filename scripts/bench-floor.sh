#!/usr/bin/env bash
# The same benchmarks against `herald-bench floor`, the do-nothing WebSocket writer (upgrade,
# subscribe, write each event to every socket; no checks, no queues): the floor Herald's CPU per
# delivery, latency, memory and connect rate are compared with (BENCHMARKS.md).
#
#   scripts/bench-floor.sh fanout -n 1000 --rate 100 --duration 30
#   scripts/bench-floor.sh idle -n 10000 --source-ips 127.0.0.1,127.0.0.2
#
# Environment: HERALD and BENCH_BIN (prebuilt binaries; else both are built), WORK (logs).
source "$(dirname "$0")/bench-lib.sh"

mode=${1:?usage: bench-floor.sh fanout|idle [herald-bench flags]}
shift
"$BENCH_BIN" floor --listen 127.0.0.1:0 >"$WORK/floor.json" 2>"$WORK/floor.log" &
FLOOR_PID=$!
PIDS+=("$FLOOR_PID")
wait_ready floor "$WORK/floor.json" "$FLOOR_PID"
describe >&2
wait_quiet
echo "floor pid $FLOOR_PID at $(json_field "$WORK/floor.json" http); log in $WORK" >&2
run_single "$mode" "$(json_field "$WORK/floor.json" http)" "$FLOOR_PID" "$@"
