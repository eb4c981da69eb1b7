#!/usr/bin/env bash
# What an idle workspace costs: the CPU ticks (utime + stime, in clock
# ticks of 1/100 s) every den agent process in the container used in
# S seconds with no session open and den's port forwarder connected (on
# the direct line: the line's server, whose threads watch the ports; on the
# exec tunnel: its SSH server and the `den-ports` watcher under it), as
# `den up` leaves it.
#
#   benches/idle.sh          # S=30
#   S=60 benches/idle.sh
set -euo pipefail
cd "$(dirname "$0")/.."
S=${S:-30}
IMAGE=${IMAGE:-den-test/debian:bookworm}

. benches/lib.sh
trap '$DEN delete --force idlebench >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
mkdir -p "$work/idlebench/.devcontainer"
cat >"$work/idlebench/.devcontainer/devcontainer.json" <<JSON
{ "image": "$IMAGE" }
JSON
$DEN up --ide none "$work/idlebench" >"$work/up.log" 2>&1 || { cat "$work/up.log" >&2; exit 1; }
C=den-idlebench

# Every process whose argv is `… agent SUBCOMMAND …`: "PID SUBCOMMAND TICKS"
# (the command name in /proc/PID/stat is "(den)", so fields split on spaces).
ticks() {
  docker exec "$C" /bin/sh -c '
    for d in /proc/[0-9]*; do
      set -- $(tr "\0" " " < $d/cmdline 2>/dev/null)
      [ "${2:-}" = agent ] || continue
      sub=$3
      set -- $(cat $d/stat 2>/dev/null) || continue
      [ $# -gt 15 ] && echo "${d#/proc/} $sub $((${14} + ${15}))"
    done'
}
# Wait for the forwarder's watcher (a thread of the line's server on the
# direct line, a ports-watch process on the exec tunnel), then let what
# `up` started settle.
watching() { ticks | grep -Eq 'ports-watch|line-server'; }
for _ in $(seq 100); do watching && break; sleep 0.1; done
watching || { echo "idle: no ports watcher in $C (is the forwarder running?)" >&2; exit 1; }
sleep 3
ticks >"$work/before"
sleep "$S"
ticks >"$work/after"

python3 - "$work/before" "$work/after" "$S" <<'PY'
import sys
read = lambda f: {l.split()[0]: (l.split()[1], int(l.split()[2])) for l in open(f) if l.strip()}
before, after, s = read(sys.argv[1]), read(sys.argv[2]), sys.argv[3]
total = 0
print(f"{'pid':>7} {'agent process':24} {'ticks':>6}")
for pid, (sub, t) in sorted(after.items(), key=lambda kv: int(kv[0])):
    d = t - before.get(pid, (sub, 0))[1]
    total += d
    print(f"{pid:>7} {sub:24} {d:6d}")
gone = [p for p in before if p not in after]
if gone:
    print(f"(processes gone meanwhile: {', '.join(gone)})")
print(f"idle agent CPU in {s} s, no session, forwarder connected: {total} ticks (target <= 3)")
PY
