#!/usr/bin/env bash
# Benchmark of `den ui` in a real headless Chromium (Debian's chromium and
# chromium-driver, as the browser tests use): page load to the workspace
# list shown, keystroke echo through the terminal websocket and SSH against
# `den ssh ID -- true`'s round trip, the server's memory idle and with three
# terminals open, and how soon a `den stop` in a shell shows on the page.
# Figures from one run; compare ratios.
#
#   benches/ui.sh                 # N=10 page loads and ssh runs, K=50 keystrokes
#   N=20 K=200 benches/ui.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10}
K=${K:-50}
IMAGE=${IMAGE:-den-test/busybox}

. benches/lib.sh
ui_pid=
driver_pid=
cleanup() {
  [ -n "$driver_pid" ] && kill -- "-$driver_pid" 2>/dev/null
  # chromium started by chromedriver: every process with this run's profile
  for p in $(pgrep -f -- "--user-data-dir=$work/profile" || true); do kill -9 "$p" 2>/dev/null || true; done
  [ -n "$ui_pid" ] && kill -- "-$ui_pid" 2>/dev/null
  $DEN delete --force uibench >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/uibench"
echo "{ \"image\": \"$IMAGE\" }" >"$work/uibench/.devcontainer.json"
$DEN up --ide none --id uibench "$work/uibench" >/dev/null 2>&1

# The reference: a command's round trip through `den ssh`.
hf ssh -N "$DEN ssh uibench -- true"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
setsid "$DEN" ui --no-open --port "$port" >"$work/ui.log" 2>&1 &
ui_pid=$!
for _ in $(seq 100); do [ -s "$DEN_HOME/ui.json" ] && break; sleep 0.1; done
url=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["url"])' "$DEN_HOME/ui.json")
sleep 1
rss_start=$(awk '/VmRSS/ {print $2}' "/proc/$ui_pid/status")

dport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
setsid chromedriver --port="$dport" >/dev/null 2>"$work/chromedriver.log" &
driver_pid=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$dport") 2>/dev/null && break; sleep 0.1; done

python3 benches/ui_driver.py "$dport" "$url" "$work" "$N" "$K" "$ui_pid" "$DEN" "$rss_start" "$json/ssh.json"
