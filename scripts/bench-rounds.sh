# shellcheck shell=bash
# Shared by the scripts that run benchmarks in rounds (bench-table.sh, bench-region-shards.sh):
# one run whose JSON report and stderr are kept. Sourced, not run; starts nothing by itself
# (scripts/bench-lib.sh, which builds and starts servers, is sourced by each run's own script).

# run_saved OUT NAME COMMAND...: runs COMMAND --json with WORK=OUT/NAME, its report in
# OUT/NAME.json and its stderr in OUT/NAME.err; logs the load average first and a failure after,
# and carries on (one failed run must not end the rounds).
run_saved() {
  local out=$1 name=$2
  shift 2
  echo "$name: load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  WORK="$out/$name" "$@" --json >"$out/$name.json" 2>"$out/$name.err" ||
    echo "$name exited $? (see $out/$name.err)" >&2
}
