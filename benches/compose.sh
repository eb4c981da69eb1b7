#!/usr/bin/env bash
# Benchmark of `den up` for a two-service compose project (an app and a
# busybox httpd) against the floor — `docker-compose up -d` plus one
# `docker exec` — and one `docker exec` for the warm case, and
# devcontainers/cli on the same folder when it can be installed. Prints
# medians of N runs; compare the ratios.
#
#   benches/compose.sh       # N=5
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-5}

. benches/lib.sh
COMPOSE=${COMPOSE:-docker-compose}
command -v docker-compose >/dev/null 2>&1 || apt-get install -y -qq docker-compose >/dev/null 2>&1
cleanup() {
  $DEN delete --force cmp >/dev/null 2>&1 || true
  $COMPOSE -p denbenchfloor -f "$work/cmp/.devcontainer/docker-compose.yml" down -t 1 >/dev/null 2>&1 || true
  docker rm -f $(docker ps -aq --filter "label=devcontainer.local_folder=$work/cmp") >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/cmp/.devcontainer"
cat >"$work/cmp/.devcontainer/docker-compose.yml" <<'YAML'
version: "3.8"
services:
  app:
    image: den-test/debian:bookworm
    command: ["sh", "-c", "trap 'exit 0' TERM; while sleep 1 & wait $$!; do :; done"]
    volumes:
      - ..:/workspace
  web:
    image: den-test/busybox
    command: ["sh", "-c", "httpd -p 8080 -h /; trap 'exit 0' TERM; while sleep 1 & wait $$!; do :; done"]
YAML
cat >"$work/cmp/.devcontainer/devcontainer.json" <<'JSON'
{ "dockerComposeFile": "docker-compose.yml", "service": "app", "workspaceFolder": "/workspace" }
JSON
F=$work/cmp/.devcontainer/docker-compose.yml

hf floor_cold --prepare "$COMPOSE -p denbenchfloor -f $F down -t 1 >/dev/null 2>&1 || true" \
  "$COMPOSE -p denbenchfloor -f $F up -d >/dev/null 2>&1 && docker exec denbenchfloor_app_1 true"
hf floor_exec "docker exec denbenchfloor_app_1 true"
$COMPOSE -p denbenchfloor -f "$F" down -t 1 >/dev/null 2>&1
hf den_cold --prepare "$DEN delete --force cmp >/dev/null 2>&1 || true" "$DEN up --ide none --id cmp $work/cmp"
$DEN up --ide none --id cmp "$work/cmp" >/dev/null 2>&1
hf den_warm "$DEN up --ide none --id cmp $work/cmp"
$DEN delete --force cmp >/dev/null 2>&1

have_cli=0
if devcontainer_cli; then
  have_cli=1
  down_cli="docker rm -f \$(docker ps -aq --filter label=com.docker.compose.project=cmp_devcontainer) >/dev/null 2>&1 || true"
  hf cli_cold --prepare "$down_cli" "devcontainer up --workspace-folder $work/cmp"
  hf cli_warm "devcontainer up --workspace-folder $work/cmp"
  eval "$down_cli"
fi

python3 - "$json" "$have_cli" <<'PY'
import json, sys, os
d, have_cli = sys.argv[1], sys.argv[2] == "1"
m = lambda n: json.load(open(os.path.join(d, n + ".json")))["results"][0]["median"]
fc, fe = m("floor_cold"), m("floor_exec")
rows = [
    ("floor: docker-compose up -d + docker exec", fc, fc, "cold floor"),
    ("floor: one docker exec", fe, fe, "warm floor"),
    ("den up, compose, cold", m("den_cold"), fc, "target <= 1.3"),
    ("den up, compose, warm", m("den_warm"), fe, "target <= 2.0"),
]
if have_cli:
    rows += [("devcontainer up, compose, cold", m("cli_cold"), fc, "peer"), ("devcontainer up, compose, warm", m("cli_warm"), fe, "peer")]
print(f"{'measure':44} {'median':>9} {'ratio':>7}  note")
for name, v, base, note in rows:
    print(f"{name:44} {v*1000:8.1f}ms {v/base:6.2f}x  {note}")
PY
