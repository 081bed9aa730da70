#!/usr/bin/env bash
# The region bench (scripts/bench-region.sh) over a standalone redis-server and over Redis
# Clusters of N primaries, back to back and alternating: ROUNDS rounds of every variant in
# VARIANTS (default "0 1 3"; 0 = standalone, N = REDIS_CLUSTER=N). Each run's JSON report and
# stderr (load average, pids, per-shard publishes) go to OUT; a summary follows: per run, then the
# median of each figure per variant, including per Redis process its CPU-s per million events it
# published (SPUBLISH/PUBLISH calls) — the per-shard cost.
#
#   HERALD=target/release/herald BENCH_BIN=target/release/herald-bench QUIET_WAIT=0 \
#     scripts/bench-region-shards.sh 3 -n 1000 --rate 100 --duration 30 --payload 200 --channels 32
#
# Environment: as scripts/bench-region.sh, plus VARIANTS and OUT (default: a new temporary
# directory).
set -euo pipefail
rounds=${1:?usage: bench-region-shards.sh ROUNDS [herald-bench fanout flags]}
shift
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
# shellcheck source=scripts/bench-rounds.sh
source "$(dirname "$0")/bench-rounds.sh"
for round in $(seq "$rounds"); do
  for variant in ${VARIANTS:-0 1 3}; do
    name="r$round-$([ "$variant" = 0 ] && echo standalone || echo "cluster$variant")"
    REDIS_CLUSTER=$variant run_saved "$out" "$name" "$(dirname "$0")/bench-region.sh" "$@"
  done
done
python3 - "$out" <<'PY'
import json, re, statistics, sys, pathlib
out = pathlib.Path(sys.argv[1])
runs = {}
for path in sorted(out.glob("r*.json")):
    name = path.stem
    err = path.with_suffix(".err").read_text()
    try:
        report = json.loads(path.read_text())
    except ValueError:
        print(f"{name}: no report"); continue
    roles = {}
    m = re.search(r"^redis ([\d ]+) \(slots.*hubs ([\d ]+), edges ([\d ]+) at", err, re.M)
    for role, pids in zip(("redis", "hub", "edge"), m.groups() if m else ()):
        for pid in pids.split():
            roles[pid] = role
    published = {m.group(1): sum(int(c) for c in re.findall(r"(?:spublish|publish) (\d+)", m.group(2)))
                 for m in re.finditer(r"^redis pid (\d+) .*?: calls (.*)$", err, re.M)}
    load = re.search(r"^load average ([\d.]+ [\d.]+ [\d.]+)", err, re.M)
    d, t = report["delivery"], report["trigger"]
    per_m = lambda role: sum(s["cpu_seconds_per_million_deliveries"] or 0 for s in report["servers"] if roles.get(s["pid"]) == role)
    redis = [(s["pid"], s["cpu_seconds_run"]) for s in report["servers"] if roles.get(s["pid"]) == "redis"]
    row = {
        "load": load.group(1) if load else "?",
        "delivered": d["received"], "lost": d["lost"], "dup": d["duplicates"], "orders": d["arrival_orders"],
        "accepted/s": t["accepted"] / max(t["elapsed_seconds"], 1e-9), "http_errors": sum(t["errors"].values()),
        "e2e_p50": d["latency_ms"]["p50"], "e2e_p99": d["latency_ms"]["p99"],
        "http_p50": t["http_ms"]["p50"], "http_p99": t["http_ms"]["p99"],
        "cpu_redis": per_m("redis"), "cpu_hubs": per_m("hub"), "cpu_edges": per_m("edge"),
        "cpu_client": report["client"][0]["cpu_seconds_per_million_deliveries"] or 0,
        "busy": report["machine"]["busy_cores"], "measured": report["machine"]["measured_cores"],
        "shard_events": [published.get(pid, 0) for pid, _ in redis],
        "shard_cpu_s": [cpu for _, cpu in redis],
        "shard_cpu_per_M_events": [cpu / max(published.get(pid, 0), 1) * 1e6 for pid, cpu in redis],
    }
    row["cpu_total"] = row["cpu_redis"] + row["cpu_hubs"] + row["cpu_edges"]
    runs[name] = row
    print(name, json.dumps(row, default=lambda x: x))
fmt = lambda v: "[" + ", ".join(f"{x:.4g}" for x in v) + "]" if isinstance(v, list) else (f"{v:.4g}" if isinstance(v, float) else str(v))
variants = sorted({n.split("-", 1)[1] for n in runs})
for variant in variants:
    rows = [r for n, r in runs.items() if n.split("-", 1)[1] == variant]
    med = {}
    for key in rows[0]:
        values = [r[key] for r in rows]
        if isinstance(values[0], list):
            med[key] = [statistics.median(v[i] for v in values) for i in range(len(values[0]))]
        elif isinstance(values[0], (int, float)):
            med[key] = statistics.median(values)
        else:
            med[key] = " / ".join(values)
    print(f"median of {len(rows)} {variant}: " + "; ".join(f"{k} {fmt(v)}" for k, v in med.items()))
PY
