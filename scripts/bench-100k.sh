#!/usr/bin/env bash
# 100k subscribed sockets on this machine (issue 15): `herald hub` + EDGES `herald edge`
# processes, then CLIENTS `herald-bench idle` processes in parallel, each spread over every edge
# (subscribers go round-robin over the --ws URLs) and bound to its own IPS_PER_CLIENT source
# addresses (127.0.0.2, 127.0.0.3, …), all subscribed to one channel. Once every client printed
# its ready line the sockets are held HOLD seconds while the edges' CPU (utime + stime from
# /proc/PID/stat) is measured; the edges' and the hub's RSS (VmRSS) are read before connecting
# and at the end of the hold; then one `herald-bench trigger` goes to the shared channel and
# every client reports when its sockets received it (`idle --await-event`). A summary follows:
# sockets held / received, dropped, RSS (total and per socket), the edges' idle CPU as % of one
# core, and the event's fan-out time (send stamp → last arrival over all clients, p50 / p99 from
# the clients' merged histograms).
#
#   HERALD=target/release/herald BENCH_BIN=target/release/herald-bench QUIET_WAIT=0 \
#     scripts/bench-100k.sh
#   HOLD=30 SOCKETS=20000 scripts/bench-100k.sh --connect-rate 1000   # a short try
#
# One process may hold 20,000 open files here. Each client takes at most PER_CLIENT sockets
# (default 17,000, so CLIENTS = ⌈SOCKETS / PER_CLIENT⌉: 6 for 100k). An edge takes
# ⌈SOCKETS / EDGES⌉ client sockets plus its own descriptors (stdio, listeners, the QUIC socket,
# epoll), so at most EDGE_CAP (19,900) each: 100,000 over 5 edges is 20,000 each, past the cap,
# hence EDGES defaults to 6 (16,667 each); EDGES=5 SOCKETS=99500 is the nearest five-edge run.
#
# Environment: SOCKETS (100000), EDGES (6), PER_CLIENT (17000), IPS_PER_CLIENT (2), CHANNEL
# (bench), HOLD (300 s), AWAIT (120 s: how long each client waits for the event after its own
# hold, which began when it was ready, before the last client was), READY_TIMEOUT (900 s for
# every client to connect), CONNECT_CONCURRENCY (100 per client), CONNECT_TIMEOUT (60 s),
# QUIET_WAIT (bench-lib's wait_quiet), HERALD and BENCH_BIN (prebuilt binaries; else both are
# built), WORK (logs and reports), BENCH_APP_*. Arguments are passed to every `herald-bench idle`.
source "$(dirname "$0")/bench-lib.sh"

SOCKETS=${SOCKETS:-100000}
EDGES=${EDGES:-6}
PER_CLIENT=${PER_CLIENT:-17000}
IPS_PER_CLIENT=${IPS_PER_CLIENT:-2}
CHANNEL=${CHANNEL:-bench}
HOLD=${HOLD:-300}
AWAIT=${AWAIT:-120}
READY_TIMEOUT=${READY_TIMEOUT:-900}
EDGE_CAP=${EDGE_CAP:-19900}
CLIENTS=$(((SOCKETS + PER_CLIENT - 1) / PER_CLIENT))
CLK_TCK=$(getconf CLK_TCK)

if (((SOCKETS + EDGES - 1) / EDGES > EDGE_CAP)); then
  echo "$SOCKETS sockets over $EDGES edges is $(((SOCKETS + EDGES - 1) / EDGES)) per edge, past" \
    "EDGE_CAP=$EDGE_CAP (the 20,000 open files a process may hold, less the edge's own):" \
    "raise EDGES or lower SOCKETS" >&2
  exit 64
fi
if ((2 + CLIENTS * IPS_PER_CLIENT > 255)); then
  echo "$CLIENTS clients × $IPS_PER_CLIENT source addresses do not fit in 127.0.0.2-254" >&2
  exit 64
fi
ulimit -n "$(ulimit -Hn)"

# cpu_ticks PID: utime + stime of PID so far, in clock ticks (fields 14 and 15 of
# /proc/PID/stat, counted after the command name's closing parenthesis).
cpu_ticks() {
  local stat
  stat=$(<"/proc/$1/stat")
  awk '{ print $12 + $13 }' <<<"${stat##*)}"
}

# rss_kib PID: the resident set of PID, KiB.
rss_kib() {
  awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

# sample NAME: one line per server (role pid cpu_ticks rss_kib) into $WORK/NAME.samples.
sample() {
  {
    echo "hub $HUB_PID $(cpu_ticks "$HUB_PID") $(rss_kib "$HUB_PID")"
    for pid in "${EDGE_PIDS[@]}"; do
      echo "edge $pid $(cpu_ticks "$pid") $(rss_kib "$pid")"
    done
  } >"$WORK/$1.samples"
}

start_hub
start_edges "$EDGES"
describe >&2
wait_quiet
echo "hub pid $HUB_PID, edges ${EDGE_PIDS[*]} at ${EDGE_WS[*]}; logs in $WORK" >&2
sample before

ws_flags=()
for ws in "${EDGE_WS[@]}"; do ws_flags+=(--ws "$ws"); done
CLIENT_PIDS=()
for i in $(seq 0 $((CLIENTS - 1))); do
  n=$((SOCKETS / CLIENTS + (i < SOCKETS % CLIENTS ? 1 : 0)))
  ips=()
  for k in $(seq 0 $((IPS_PER_CLIENT - 1))); do ips+=("127.0.0.$((2 + i * IPS_PER_CLIENT + k))"); done
  "$BENCH_BIN" idle "${ws_flags[@]}" --app-key "$BENCH_APP_KEY" -n "$n" \
    --source-ips "$(IFS=,; echo "${ips[*]}")" --channel "$CHANNEL" \
    --connect-concurrency "${CONNECT_CONCURRENCY:-100}" --connect-timeout "${CONNECT_TIMEOUT:-60}" \
    --hold "$HOLD" --await-event "$AWAIT" --ready-json --json "$@" \
    >"$WORK/client$i.out" 2>"$WORK/client$i.log" &
  CLIENT_PIDS+=("$!")
  PIDS+=("$!")
done
echo "$CLIENTS clients (pids ${CLIENT_PIDS[*]}) connecting $SOCKETS sockets; $(uptime)" >&2

# Every client's ready line, complete (newline included), polled until READY_TIMEOUT.
started=$SECONDS
for i in "${!CLIENT_PIDS[@]}"; do
  until [ "$(wc -l <"$WORK/client$i.out")" -ge 1 ] &&
    head -n 1 "$WORK/client$i.out" | grep -q '"event":"ready"'; do
    if ! kill -0 "${CLIENT_PIDS[$i]}" 2>/dev/null; then
      echo "client $i exited before it was ready; its log:" >&2
      cat "$WORK/client$i.log" >&2
      exit 1
    fi
    if ((SECONDS - started > READY_TIMEOUT)); then
      echo "client $i was not ready within $READY_TIMEOUT s; its log:" >&2
      tail -n 20 "$WORK/client$i.log" >&2
      exit 1
    fi
    sleep 1
  done
done
echo "all ready after $((SECONDS - started)) s: $(head -q -n 1 "$WORK"/client*.out | paste -sd ' ')" >&2

uptime >"$WORK/uptime-start"
sample held
hold_start=$(date +%s.%N)
sleep "$HOLD"
hold_end=$(date +%s.%N)
sample hold-end
uptime >"$WORK/uptime-end"
echo "hold over; $(cat "$WORK/uptime-end")" >&2

"$BENCH_BIN" trigger --api "http://$HUB_HTTP" --app-id "$BENCH_APP_ID" --app-key "$BENCH_APP_KEY" \
  --app-secret "$BENCH_APP_SECRET" --channel "$CHANNEL" --json >"$WORK/trigger.json"
failed=0
for i in "${!CLIENT_PIDS[@]}"; do
  wait "${CLIENT_PIDS[$i]}" || { echo "client $i exited $?" >&2; failed=1; }
done

python3 - "$WORK" "$CLIENTS" "$CLK_TCK" "$hold_start" "$hold_end" <<'PY'
import json, pathlib, sys
work, clients, tck = pathlib.Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
window = float(sys.argv[5]) - float(sys.argv[4])
def samples(name):
    rows = [line.split() for line in (work / f"{name}.samples").read_text().splitlines()]
    return {pid: (role, int(ticks), int(rss)) for role, pid, ticks, rss in rows}
before, held, end = samples("before"), samples("held"), samples("hold-end")
reports = []
for i in range(clients):
    ready, _, rest = (work / f"client{i}.out").read_text().partition("\n")
    try:
        reports.append(json.loads(rest))
    except ValueError:
        print(f"client {i} printed no report (see {work}/client{i}.log); left out")
fired = json.loads((work / "trigger.json").read_text())
connected = sum(r["connect"]["connected"] for r in reports)
requested = sum(r["connect"]["requested"] for r in reports)
awaited = [r["awaited"] for r in reports]
held_at_wait = sum(a["held"] for a in awaited)
received = sum(a["received"] for a in awaited)
dropped = {}
for r in reports:
    for code, n in r["delivery"]["disconnected"].items():
        dropped[code] = dropped.get(code, 0) + n
edges = [pid for pid, (role, _, _) in end.items() if role == "edge"]
hub = next(pid for pid, (role, _, _) in end.items() if role == "hub")
edge_rss = sum(end[p][2] for p in edges)
edge_growth = edge_rss - sum(before[p][2] for p in edges)
edge_cpu = sum(end[p][1] - held[p][1] for p in edges) / tck
firsts = [a["first_arrival_us"] for a in awaited if a["first_arrival_us"]]
lasts = [a["last_arrival_us"] for a in awaited if a["last_arrival_us"]]
merged = {}
for a in awaited:
    for us, n in a["latency_us"]:
        merged[us] = merged.get(us, 0) + n
def quantile(q):
    total, seen = sum(merged.values()), 0
    for us in sorted(merged):
        seen += merged[us]
        if seen >= q * total:
            return us / 1000
    return float("nan")
client_cpu = sum(r["client"][0]["cpu_seconds_run"] for r in reports)
client_rss = sum(r["client"][0]["after"]["rss_kib"] for r in reports)
ms = lambda us: f"{(us - fired['sent_us']) / 1000:.1f} ms"
print(f"| bench-100k: {requested} sockets, {clients} clients, {len(edges)} edges, one hub; hold {window:.0f} s | |")
print("|---|---|")
print(f"| sockets connected / held when the event came / received it | {connected} / {held_at_wait} / {received} |")
print(f"| sockets dropped (by close code) | {sum(dropped.values())} {dropped or ''} |")
print(f"| edges' RSS, total (growth from before connecting) | {edge_rss / 1024:.1f} MiB ({edge_growth / 1024:.1f} MiB) |")
print(f"| edges' RSS per socket, total / growth | {edge_rss / max(connected, 1):.2f} / {edge_growth / max(connected, 1):.2f} KiB |")
print(f"| hub RSS (before connecting → end of hold) | {before[hub][2] / 1024:.1f} → {end[hub][2] / 1024:.1f} MiB |")
print(f"| edges' CPU over the hold | {edge_cpu:.2f} s in {window:.1f} s = {100 * edge_cpu / window:.2f} % of one core |")
print(f"| hub's CPU over the hold | {(end[hub][1] - held[hub][1]) / tck:.2f} s |")
if lasts:
    print(f"| fan-out: send → first / last arrival | {ms(min(firsts))} / {ms(max(lasts))} |")
    print(f"| send → arrival p50 / p99 / max (merged) | {quantile(0.5):.1f} / {quantile(0.99):.1f} / {quantile(1.0):.1f} ms |")
else:
    print("| fan-out | no socket received the event |")
print(f"| trigger HTTP request | {fired['http_ms']:.1f} ms |")
print(f"| clients' CPU (connected → end) / RSS at the end | {client_cpu:.1f} s / {client_rss / 1024:.0f} MiB |")
for name in ("uptime-start", "uptime-end"):
    print(f"| load, {name[7:]} of the hold | {(work / name).read_text().split('load average:')[-1].strip()} |")
PY
exit "$failed"
