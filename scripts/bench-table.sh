#!/usr/bin/env bash
# Every row of BENCHMARKS.md's round-two table, back to back: ROUNDS rounds, and in each round
# every load run against Herald, the floor and Sockudo in turn (alternating, so that a slow
# stretch of the machine hits all three), then the median of each figure over the rounds and
# the ratios Herald ÷ floor and Herald ÷ Sockudo, as a Markdown table. Each run's JSON report and
# stderr are kept in OUT.
#
#   HERALD=target/release/herald BENCH_BIN=target/release/herald-bench \
#     SOCKUDO=/path/to/sockudo scripts/bench-table.sh 3
#
# Rows (ROWS, default all): fan1k (1,000 × 100/s, 200 B), fan10k (10,000 × 10/s), fan10k1
# (10,000 × 1/s), idle (10,000 idle subscribed sockets: memory and the connect burst), region
# (Redis + 2 hubs + 3 edges at the load of fan1k; Sockudo × 2 over Redis beside it).
# Environment: as scripts/bench-lib.sh, plus SOCKUDO (a Sockudo built with --features redis for
# the region row), ROWS, OUT (default: a new temporary directory), DURATION (default 20 s), IPS
# (source addresses of the 10k rows).
set -euo pipefail
rounds=${1:?usage: bench-table.sh ROUNDS}
dir=$(dirname "$0")
out=${OUT:-$(mktemp -d)}
duration=${DURATION:-20}
ips=${IPS:-127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4}
mkdir -p "$out"
fan1k=(-n 1000 --rate 100 --duration "$duration" --payload 200)
fan10k=(-n 10000 --rate 10 --duration "$duration" --payload 200 --source-ips "$ips")
fan10k1=(-n 10000 --rate 1 --duration $((duration * 3 / 2)) --payload 200 --source-ips "$ips")
idle=(-n 10000 --source-ips "$ips" --hold 10 --settle 3)

# shellcheck source=scripts/bench-rounds.sh
source "$dir/bench-rounds.sh"
# run NAME COMMAND...: one run, its JSON report in OUT/NAME.json.
run() { run_saved "$out" "$@"; }

for round in $(seq "$rounds"); do
  for row in ${ROWS:-fan1k fan10k fan10k1 idle region}; do
    case $row in
      fan1k | fan10k | fan10k1)
        declare -n flags=$row
        run "r$round-$row-herald" "$dir/bench-fanout.sh" "${flags[@]}"
        run "r$round-$row-floor" "$dir/bench-floor.sh" fanout "${flags[@]}"
        run "r$round-$row-sockudo" "$dir/bench-sockudo.sh" fanout "${flags[@]}"
        unset -n flags
        ;;
      idle)
        run "r$round-idle-herald" "$dir/bench-idle.sh" "${idle[@]}"
        run "r$round-idle-floor" "$dir/bench-floor.sh" idle "${idle[@]}"
        run "r$round-idle-sockudo" "$dir/bench-sockudo.sh" idle "${idle[@]}"
        ;;
      region)
        run "r$round-region-herald" "$dir/bench-region.sh" "${fan1k[@]}"
        run "r$round-region-sockudo" "$dir/bench-sockudo-region.sh" "${fan1k[@]}"
        ;;
      *)
        echo "unknown row $row" >&2
        exit 2
        ;;
    esac
  done
done

python3 - "$out" <<'PY'
import json, pathlib, statistics, sys
out = pathlib.Path(sys.argv[1])
runs = {}
for path in sorted(out.glob("r*.json")):
    _, row, server = path.stem.split("-")
    try:
        report = json.loads(path.read_text())
    except ValueError:
        print(f"{path.stem}: no report"); continue
    d, servers = report["delivery"], report["servers"]
    figures = {
        "cpu": sum(s["cpu_seconds_per_million_deliveries"] or 0 for s in servers),
        "p99": d["latency_ms"]["p99"],
        # The first --server-pid of an idle run is the process holding the sockets.
        "kib": servers[0]["rss_kib_per_subscriber"] if servers else 0,
        "connect": report["connect"]["per_second"],
        "lost": d["lost"], "dup": d["duplicates"], "orders": d["arrival_orders"],
        "busy": report["machine"]["busy_cores"], "measured": report["machine"]["measured_cores"],
    }
    runs.setdefault((row, server), []).append(figures)
    print(path.stem, json.dumps(figures))
med = {key: {f: statistics.median(r[f] for r in rs) for f in rs[0]} for key, rs in runs.items()}
def cell(row, server, figure, digits=2):
    value = med.get((row, server), {}).get(figure)
    return "—" if value is None else f"{value:,.{digits}f}"
def ratio(row, a, b, figure, row_b=None):
    x, y = med.get((row, a), {}).get(figure), med.get((row_b or row, b), {}).get(figure)
    return "—" if not x or not y else f"{x / y:.2f}"
lines = ["| figure (median of %d rounds) | Herald | floor | Sockudo | Herald ÷ floor | Herald ÷ Sockudo |"
         % max((len(r) for r in runs.values()), default=0), "|---|---|---|---|---|---|"]
for row, label in [("fan1k", "1k × 100/s"), ("fan10k", "10k × 10/s"), ("fan10k1", "10k × 1/s")]:
    lines.append(f"| {label}: server CPU-s per million deliveries | {cell(row,'herald','cpu')} | {cell(row,'floor','cpu')} | {cell(row,'sockudo','cpu')} | {ratio(row,'herald','floor','cpu')} | {ratio(row,'herald','sockudo','cpu')} |")
    lines.append(f"| {label}: p99 trigger → frame, ms | {cell(row,'herald','p99',1)} | {cell(row,'floor','p99',1)} | {cell(row,'sockudo','p99',1)} | {ratio(row,'herald','floor','p99')} | {ratio(row,'herald','sockudo','p99')} |")
lines.append(f"| RSS per idle subscribed socket (10k), KiB | {cell('idle','herald','kib')} | {cell('idle','floor','kib')} | {cell('idle','sockudo','kib')} | {ratio('idle','herald','floor','kib')} | {ratio('idle','herald','sockudo','kib')} |")
lines.append(f"| connect burst, 10k sockets, per second | {cell('idle','herald','connect',0)} | {cell('idle','floor','connect',0)} | {cell('idle','sockudo','connect',0)} | {ratio('idle','herald','floor','connect')} | {ratio('idle','herald','sockudo','connect')} |")
lines.append(f"| region 1k × 100/s: server CPU-s per million (Herald: Redis + 2 hubs + 3 edges; Sockudo: Redis + 2 nodes) | {cell('region','herald','cpu')} | — | {cell('region','sockudo','cpu')} | region ÷ one hub: {ratio('region','herald','herald','cpu','fan1k')} | {ratio('region','herald','sockudo','cpu')} |")
lines.append(f"| region 1k × 100/s: p99, ms | {cell('region','herald','p99',1)} | — | {cell('region','sockudo','p99',1)} | — | {ratio('region','herald','sockudo','p99')} |")
print("\n".join(lines))
bad = [f"{k[0]}-{k[1]}: lost {r['lost']}, duplicates {r['dup']}, orders {r['orders']}"
       for k, rs in runs.items() for r in rs if k[1] == "herald" and (r["lost"] or r["dup"] or r["orders"] > 1)]
print("Herald runs that lost, duplicated or reordered:", "; ".join(bad) or "none")
PY
