#!/usr/bin/env bash
# Offline checks of the AWS deployment in terraform/ (issue 6). Called by .ci/run after the
# Rust tests; runnable alone: bash .ci/deploy-checks.sh
#
#   1. terraform fmt -check            (when a terraform binary is present)
#   2. terraform validate + test of the provider-free user_data module (same guard)
#   3. the rendered boot scripts (edge, hub) and the scripts they install: bash -n, shellcheck
#   4. the systemd units they install: systemd-analyze verify (warnings count as failures)
#   5. checkov 3.3.30: Herald's policies (terraform/policies) and the stock AWS checks; every
#      Herald policy must have been evaluated, every stock failure fixed or skipped inline with
#      a written reason
#
# The terraform binary cannot be installed from the registries this project reaches, so steps
# 1-4 are skipped without it; tests/tests/black_box/terraform_invariants.rs (hcl-rs, run by cargo test)
# checks the same invariants on the HCL everywhere. Exits non-zero if any step failed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"
work="$root/target/deploy-checks"
rm -rf "$work"
mkdir -p "$work"

passed=0
failed=0
skipped=0

ok() {
  passed=$((passed + 1))
  echo "deploy-checks: ok: $1"
}

failed() {
  failed=$((failed + 1))
  echo "deploy-checks: FAILED: $1" >&2
}

skip() {
  skipped=$((skipped + 1))
  echo "deploy-checks: skipped: $1"
}

# Runs "$@" as one named check: its output goes to $work/<name>.log and is shown on failure.
check() {
  local name="$1" log
  shift
  log="$work/$(tr -c 'A-Za-z0-9_.-' '_' <<< "$name").log"
  if "$@" > "$log" 2>&1; then
    ok "$name"
  else
    cat "$log" >&2
    failed "$name"
  fi
}

# --- terraform --------------------------------------------------------------------------------

user_data_dir="$root/terraform/modules/user_data"

terraform_user_data() (
  cd "$user_data_dir" &&
    terraform init -backend=false -input=false -no-color &&
    terraform validate -no-color &&
    terraform test -no-color
)

# Renders local.rendered for testdata/<role>.tfvars into $work/user_data-<role>.sh.
render() {
  local role="$1"
  (cd "$user_data_dir" && echo 'jsonencode(local.rendered)' |
    terraform console -var-file="testdata/$role.tfvars") |
    python3 -c 'import json, sys; sys.stdout.write(json.loads(json.loads(sys.stdin.read())))' \
      > "$work/user_data-$role.sh"
}

# Splits a rendered boot script into the files it installs: <<'UNIT' heredocs become
# $work/units-<role>/<unit name> (ExecStart swapped for /bin/true: the binaries are not here),
# <<'PUBLISH' and <<'WATCH' heredocs become $work/scripts-<role>/<name>.sh.
extract() {
  local role="$1"
  python3 - "$work/user_data-$role.sh" "$work/units-$role" "$work/scripts-$role" <<'PY'
import os, re, sys
text = open(sys.argv[1]).read()
units, scripts = sys.argv[2], sys.argv[3]
os.makedirs(units, exist_ok=True)
os.makedirs(scripts, exist_ok=True)
for match in re.finditer(r"cat > /etc/systemd/system/(\S+) <<'UNIT'\n(.*?)\nUNIT\n", text, re.S):
    body = re.sub(r"^ExecStart=.*$", "ExecStart=/bin/true", match.group(2), flags=re.M)
    open(os.path.join(units, match.group(1)), "w").write(body + "\n")
for match in re.finditer(r"cat > (\S+) <<'(PUBLISH|WATCH)'\n(.*?)\n\2\n", text, re.S):
    open(os.path.join(scripts, os.path.basename(match.group(1)) + ".sh"), "w").write(match.group(3) + "\n")
PY
}

shell_syntax() {
  local script
  for script in "$@"; do
    bash -n "$script" || return 1
  done
}

# systemd-analyze verify reports unknown keys as warnings with status 0: any output fails.
verify_units() {
  local dir="$1" output
  output="$(cd "$dir" && systemd-analyze verify ./* 2>&1)" || {
    echo "$output"
    return 1
  }
  if [ -n "$output" ]; then
    echo "$output"
    return 1
  fi
}

if command -v terraform > /dev/null 2>&1; then
  export TF_IN_AUTOMATION=1 TF_INPUT=0
  export TF_DATA_DIR="$work/terraform-data" TF_CLI_CONFIG_FILE="$work/terraformrc"
  : > "$TF_CLI_CONFIG_FILE"
  check "terraform fmt" terraform fmt -check -recursive -diff "$root/terraform"
  check "terraform validate + test (modules/user_data)" terraform_user_data

  if ! command -v shellcheck > /dev/null 2>&1 && command -v apt-get > /dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "deploy-checks: installing shellcheck"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck; } > "$work/apt.log" 2>&1 ||
      cat "$work/apt.log" >&2
  fi

  for role in edge hub; do
    if ! (render "$role" && extract "$role") > "$work/render-$role.log" 2>&1; then
      cat "$work/render-$role.log" >&2
      failed "render user_data ($role)"
      continue
    fi
    ok "render user_data ($role, $(wc -c < "$work/user_data-$role.sh") bytes)"
    scripts=("$work/user_data-$role.sh")
    for script in "$work/scripts-$role"/*.sh; do
      [ -e "$script" ] && scripts+=("$script")
    done
    check "bash -n user_data ($role)" shell_syntax "${scripts[@]}"
    if command -v shellcheck > /dev/null 2>&1; then
      check "shellcheck user_data ($role)" shellcheck -s bash "${scripts[@]}"
    else
      skip "shellcheck user_data ($role): shellcheck is not installed and could not be"
    fi
    if command -v systemd-analyze > /dev/null 2>&1; then
      check "systemd-analyze verify ($role units)" verify_units "$work/units-$role"
    else
      skip "systemd-analyze verify ($role units): systemd-analyze is not installed"
    fi
  done
else
  skip "terraform fmt, validate, test and the user_data lint: no terraform binary (the hcl-rs test in cargo test still checks the HCL)"
fi

# --- checkov ----------------------------------------------------------------------------------

checkov_venv="$root/target/venvs/checkov"

install_checkov() {
  if [ -f "$checkov_venv/.installed-3.3.30" ]; then
    return 0
  fi
  echo "deploy-checks: installing checkov 3.3.30 into target/venvs/checkov"
  rm -rf "$checkov_venv"
  python3 -m venv "$checkov_venv" &&
    "$checkov_venv/bin/pip" install --quiet --disable-pip-version-check checkov==3.3.30 &&
    touch "$checkov_venv/.installed-3.3.30"
}

# One run over everything (stock checks and terraform/policies), read from JSON: no failure,
# every skip has a written reason, every Herald policy was evaluated on at least one resource.
run_checkov() {
  local status=0
  "$checkov_venv/bin/checkov" -d "$root/terraform" --framework terraform --skip-download \
    --external-checks-dir "$root/terraform/policies" --output json \
    > "$work/checkov.json" 2> "$work/checkov.stderr" || status=$?
  # checkov exits 1 when a check fails; the JSON below says which.
  if [ "$status" -gt 1 ]; then
    cat "$work/checkov.stderr"
    return 1
  fi
  python3 - "$work/checkov.json" "$root/terraform/policies" <<'PY'
import glob, json, re, sys
report = json.load(open(sys.argv[1]))
reports = report if isinstance(report, list) else [report]
results = {"passed_checks": [], "failed_checks": [], "skipped_checks": []}
for one in reports:
    for kind in results:
        results[kind] += one.get("results", {}).get(kind, [])
policies = set()
for path in glob.glob(sys.argv[2] + "/*.yaml"):
    match = re.search(r'^\s+id:\s*"?([A-Z0-9_]+)"?', open(path).read(), re.M)
    if match:
        policies.add(match.group(1))
# Python policies (what YAML cannot compare, e.g. numbers inside container_definitions).
for path in glob.glob(sys.argv[2] + "/*.py"):
    policies.update(re.findall(r'id="(HERALD_[A-Z0-9_]+)"', open(path).read()))
problems = []
for result in results["failed_checks"]:
    problems.append("failed %s %s (%s): %s" % (result["check_id"], result["resource"], result["file_path"], result["check_name"]))
for result in results["skipped_checks"]:
    reason = (result.get("check_result") or {}).get("suppress_comment") or ""
    if not reason.strip() or reason.strip() == "No comment provided":
        problems.append("skipped without a reason: %s %s" % (result["check_id"], result["resource"]))
evaluated = {r["check_id"] for kind in ("passed_checks", "failed_checks") for r in results[kind]}
for policy in sorted(policies - evaluated):
    problems.append("policy %s matched no resource (an attribute path or resource type is wrong)" % policy)
herald = [r for r in results["passed_checks"] if r["check_id"] in policies]
print("checkov: %d passed (%d by %d Herald policies), %d failed, %d skipped with reasons"
      % (len(results["passed_checks"]), len(herald), len(policies), len(results["failed_checks"]), len(results["skipped_checks"])))
for problem in problems:
    print("checkov: " + problem)
sys.exit(1 if problems else 0)
PY
}

if install_checkov > "$work/checkov-install.log" 2>&1; then
  check "checkov (Herald policies + stock AWS checks)" run_checkov
  grep -h '^checkov: [0-9]' "$work"/checkov*.log 2> /dev/null || true
else
  cat "$work/checkov-install.log" >&2
  failed "install checkov 3.3.30"
fi

echo "deploy-checks: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
