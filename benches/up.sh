#!/usr/bin/env bash
# Benchmark of `den up` against the engine itself (and devcontainers/cli
# when it can be installed). Prints medians of N runs, measured in one run, so
# compare the ratios, not absolute times from another day.
#
#   benches/up.sh            # N=5
#   N=10 benches/up.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-5}
IMAGE=${IMAGE:-den-test/debian:bookworm}

. benches/lib.sh
trap 'DEN_HOME=$DEN_HOME $DEN delete --force bench >/dev/null 2>&1 || true; docker rm -f den-bench-floor >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
mkdir -p "$work/bench/.devcontainer"
cat >"$work/bench/.devcontainer/devcontainer.json" <<JSON
{ "image": "$IMAGE", "postCreateCommand": "echo created > /tmp/created" }
JSON

median() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['results'][0]['median'])" "$json/$1.json"; }

# the floor
hf floor_cold --prepare 'docker rm -f den-bench-floor >/dev/null 2>&1 || true' \
  "docker run -d --name den-bench-floor $IMAGE sleep infinity >/dev/null && docker exec den-bench-floor true"
hf floor_exec "docker exec den-bench-floor true"
# den
hf den_cold --prepare "$DEN delete --force bench >/dev/null 2>&1 || true" "$DEN up --ide none $work/bench"
$DEN up --ide none "$work/bench" >/dev/null 2>&1
hf den_warm "$DEN up --ide none $work/bench"

have_cli=0
if devcontainer_cli; then
  have_cli=1
  hf cli_cold --prepare "docker rm -f \$(docker ps -aq --filter label=devcontainer.local_folder=$work/bench) >/dev/null 2>&1 || true" \
    "devcontainer up --workspace-folder $work/bench"
  hf cli_warm "devcontainer up --workspace-folder $work/bench"
  docker rm -f $(docker ps -aq --filter label=devcontainer.local_folder=$work/bench) >/dev/null 2>&1 || true
fi

python3 - "$json" "$have_cli" <<'PY'
import json, sys, os
d, have_cli = sys.argv[1], sys.argv[2] == "1"
m = lambda n: json.load(open(os.path.join(d, n + ".json")))["results"][0]["median"]
fc, fe, dc, dw = m("floor_cold"), m("floor_exec"), m("den_cold"), m("den_warm")
rows = [
    ("floor: docker run -d + docker exec true", fc, fc, "cold floor"),
    ("floor: one docker exec true", fe, fe, "warm floor"),
    ("den up, cold (no container)", dc, fc, "target <= 1.5"),
    ("den up, warm (running)", dw, fe, "target <= 2.0"),
]
if have_cli:
    rows += [("devcontainer up, cold", m("cli_cold"), fc, "peer"), ("devcontainer up, warm", m("cli_warm"), fe, "peer")]
print(f"{'measure':42} {'median':>9} {'ratio':>7}  note")
for name, v, base, note in rows:
    print(f"{name:42} {v*1000:8.1f}ms {v/base:6.2f}x  {note}")
PY
