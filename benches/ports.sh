#!/usr/bin/env bash
# Benchmark of the port forwarder `den up` starts: bulk throughput through
# a forwarded port against the raw `docker exec` pipe, the time to the
# first byte of a forwarded HTTP request against `docker exec … wget`
# inside, and the forwarder's memory. Figures from one run; compare ratios.
#
#   benches/ports.sh                 # 3 runs of 1 GB, N=20 requests
#   N=50 T=5 MB=2000 benches/ports.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20}
T=${T:-3}
MB=${MB:-1000}
IMAGE=${IMAGE:-den-test/debian:bookworm}

. benches/lib.sh
trap '$DEN delete --force portbench >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$work/portbench"
# busybox httpd (from the host's busybox-static, copied in) serves a sparse
# file of MB megabytes and a small page.
cat >"$work/portbench/.devcontainer.json" <<JSON
{ "image": "$IMAGE", "forwardPorts": [$PORT],
  "postStartCommand": "mkdir -p /tmp/www && dd if=/dev/zero of=/tmp/www/big bs=1M seek=$MB count=0 2>/dev/null && echo hi > /tmp/www/index.html && (/workspaces/portbench/busybox httpd -p $PORT -h /tmp/www &)" }
JSON
cp /bin/busybox "$work/portbench/busybox"
$DEN up --ide none "$work/portbench" >/dev/null 2>&1
C=den-portbench
for _ in $(seq 100); do curl -s -o /dev/null "127.0.0.1:$PORT/index.html" && break; sleep 0.1; done

{
  tp raw docker exec $C cat /tmp/www/big
  tp forwarded curl -s "127.0.0.1:$PORT/big"
} >"$work/tp.txt"

# First byte: curl's time_starttransfer through the forward (a new TCP
# connection, so a new SSH channel, each time) against the whole
# `docker exec C wget` a user would otherwise run.
for _ in $(seq "$N"); do curl -s -o /dev/null -w '%{time_starttransfer}\n' "127.0.0.1:$PORT/index.html"; done >"$work/fb.txt"
hf inside -N "docker exec $C /workspaces/portbench/busybox wget -q -O /dev/null http://127.0.0.1:$PORT/index.html"

pid=$(pgrep -f "forward-daemon portbench" | head -1)
rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")

python3 - "$work" "$MB" "$rss" "$hwm" <<'PY'
import json, sys, statistics, os
work, mb, rss, hwm = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
times = {}
for line in open(os.path.join(work, "tp.txt")):
    k, v = line.split(); times.setdefault(k, []).append(float(v))
raw, fwd = statistics.median(times["raw"]), statistics.median(times["forwarded"])
nbytes = mb * 1024 * 1024
print(f"{'throughput, %d MB' % mb:44} {'MB/s':>9} {'of raw':>7}")
print(f"{'raw docker exec pipe (floor)':44} {nbytes/raw/1e6:9.0f} {1:6.0%}")
print(f"{'through the forwarded port':44} {nbytes/fwd/1e6:9.0f} {raw/fwd:6.0%}   (target >= 70%)")
fb = statistics.median(float(l) for l in open(os.path.join(work, "fb.txt")))
inside = json.load(open(os.path.join(work, "results", "inside.json")))["results"][0]["median"]
print(f"\n{'first byte of an HTTP request':44} {'median':>9} {'ratio':>7}")
print(f"{'docker exec C wget inside (baseline)':44} {inside*1000:8.1f}ms {1:6.2f}x")
print(f"{'through the forwarded port':44} {fb*1000:8.1f}ms {fb/inside:6.2f}x   (target <= 1.5x)")
print(f"\nforwarder RSS after the transfers: {rss/1024:.1f} MB (peak {hwm/1024:.1f} MB; target <= 15 MB)")
PY
