#!/usr/bin/env bash
# The same benchmarks against the peer, Sockudo (https://crates.io/crates/sockudo), one process
# on loopback with Herald's dev app credentials, everything in memory, its rate limits and
# per-app quotas lifted so they do not cap the measurement (see start_sockudo in bench-lib.sh):
#
#   CARGO_TARGET_DIR=target-peer cargo install sockudo --locked --root target-peer/install
#   SOCKUDO=target-peer/install/bin/sockudo scripts/bench-sockudo.sh fanout -n 1000
#   SOCKUDO=target-peer/install/bin/sockudo scripts/bench-sockudo.sh idle -n 10000 --source-ips ...
#
# Environment: SOCKUDO (required), HERALD and BENCH_BIN (else built), SOCKUDO_PORT (default 6001), WORK.
source "$(dirname "$0")/bench-lib.sh"

mode=${1:?usage: bench-sockudo.sh fanout|idle [herald-bench flags]}
shift
port=${SOCKUDO_PORT:-6001}
start_sockudo sockudo "$port"
describe >&2
wait_quiet
echo "sockudo $("$SOCKUDO" --version 2>/dev/null || true) pid $SOCKUDO_PID on port $port; log in $WORK" >&2

run_single "$mode" "127.0.0.1:$port" "$SOCKUDO_PID" "$@"
