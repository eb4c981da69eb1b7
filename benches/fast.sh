#!/usr/bin/env bash
# The direct line (docs/line.md) against `docker exec` on the same
# container, in the same run: issue 23's table. Each row says which way
# den took (direct: the agent's socket; exec: the exec tunnel), as
# `--debug` reported it. Compare the ratios, not times from another day.
#
#   benches/fast.sh                  # N=10 runs, T=3 runs of 1 GB
#   BENCH_NO_NPM=1 N=7 bash benches/fast.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10}
T=${T:-3}
BYTES=${BYTES:-1000000000}
IMAGE=${IMAGE:-den-test/debian:bookworm}

. benches/lib.sh
trap '$DEN delete --force fastbench >/dev/null 2>&1 || true; $DEN delete --force fastcold >/dev/null 2>&1 || true; docker rm -f den-fast-floor >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
MB=$((BYTES / 1048576))
mkdir -p "$work/fastbench" "$work/fastcold"
# busybox httpd (the host's busybox-static, copied in) serves a sparse file
# through the forwarded port.
cat >"$work/fastbench/.devcontainer.json" <<JSON
{ "image": "$IMAGE", "forwardPorts": [$PORT],
  "postStartCommand": "mkdir -p /tmp/www && dd if=/dev/zero of=/tmp/www/big bs=1M seek=$MB count=0 2>/dev/null && (/workspaces/fastbench/busybox httpd -p $PORT -h /tmp/www &)" }
JSON
cp /bin/busybox "$work/fastbench/busybox"
echo "{ \"image\": \"$IMAGE\" }" >"$work/fastcold/.devcontainer.json"
$DEN up --ide none "$work/fastbench" >/dev/null 2>&1
C=den-fastbench
SSH=(ssh -F "$DEN_SSH_CONFIG" -o BatchMode=yes fastbench.den)
for _ in $(seq 100); do curl -s -o /dev/null "127.0.0.1:$PORT/" && break; sleep 0.1; done

# Which way each row takes: what --debug (DEN_LOG=debug under OpenSSH) says.
way() { if grep -q ': direct line ' "$1"; then echo direct; else echo exec; fi; }
$DEN --debug ssh fastbench -- true 2>"$work/w_ssh" >/dev/null
DEN_LOG=debug "${SSH[@]}" true 2>"$work/w_openssh" >/dev/null
$DEN --debug up --ide none "$work/fastbench" 2>"$work/w_up" >/dev/null
DEN_TEST_LINE=exec $DEN --debug ssh fastbench -- true 2>"$work/w_exec" >/dev/null
fwd=$(grep -q "on the direct line" "$DEN_HOME"/contexts/default/workspaces/fastbench/forwarder.log 2>/dev/null && echo direct || echo exec)
{
  echo "ssh $(way "$work/w_ssh")"
  echo "openssh $(way "$work/w_openssh")"
  echo "up $(way "$work/w_up")"
  echo "exec $(way "$work/w_exec")"
  echo "forward $fwd"
} >"$work/ways.txt"

hyperfine -N --style none --warmup 2 --runs "$N" --export-json "$json/cmd.json" \
  "docker exec $C true" "$DEN ssh fastbench -- true" "${SSH[*]} true" >/dev/null 2>&1
DEN_TEST_LINE=exec hf exec -N "$DEN ssh fastbench -- true"
hf warm -N "$DEN up --ide none $work/fastbench"
hf floor_cold --prepare 'docker rm -f den-fast-floor >/dev/null 2>&1 || true' \
  "docker run -d --name den-fast-floor $IMAGE sleep infinity >/dev/null && docker exec den-fast-floor true"
hf cold --prepare "$DEN delete --force fastcold >/dev/null 2>&1 || true" "$DEN up --ide none --forward-ports=false $work/fastcold"

{
  tp raw docker exec $C head -c "$BYTES" /dev/zero
  tp den "$DEN" ssh fastbench -- head -c "$BYTES" /dev/zero
  tp rawfile docker exec $C cat /tmp/www/big
  tp forwarded curl -s "127.0.0.1:$PORT/big"
} >"$work/tp.txt"

# Agent memory with one idle session: every `den agent …` process of the
# container (the line's server, the forwarder's port watcher, a session's
# helpers), as `docker top` lists them.
# RSS counts the pages of den's binary that the processes share once per
# process; PSS (from /proc/PID/smaps_rollup) splits them among the sharers,
# so its sum is what the processes cost the machine.
rss_of_agent() {
  docker top "$C" -eo pid,rss,args | awk 'NR > 1 && $3 ~ /den$/ && $4 == "agent" {print $1, $2}' |
    while read -r pid rss; do
      echo "$rss $(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup" 2>/dev/null || echo 0)"
    done | awk '{r+=$1; p+=$2; n++} END {print r+0, p+0, n+0}'
}
"$DEN" ssh fastbench -- sleep 3 &
sleep 1.5
read -r rss pss procs < <(rss_of_agent)
wait

python3 - "$work" "$BYTES" "$MB" "$rss" "$procs" "$pss" <<'PY'
import json, os, statistics, sys
work, nbytes, mb, rss, procs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
pss = int(sys.argv[6])
res = lambda n: json.load(open(os.path.join(work, "results", n + ".json")))["results"]
ways = dict(l.split() for l in open(os.path.join(work, "ways.txt")))
cmd = res("cmd")
floor = cmd[0]["median"]
times = {}
for line in open(os.path.join(work, "tp.txt")):
    k, v = line.split(); times.setdefault(k, []).append(float(v))
t = {k: statistics.median(v) for k, v in times.items()}
cold_floor = res("floor_cold")[0]["median"]
rows = [
    ("den ssh ID -- true", cmd[1]["median"] / floor, "x docker exec C true", "<= 0.3", ways["ssh"]),
    ("den ssh ID -- true (DEN_TEST_LINE=exec)", res("exec")[0]["median"] / floor, "x docker exec C true", "", ways["exec"]),
    ("ssh ID.den true (OpenSSH)", cmd[2]["median"] / floor, "x docker exec C true", "<= 0.6", ways["openssh"]),
    ("warm den up", res("warm")[0]["median"] / floor, "x docker exec C true", "<= 0.6", ways["up"]),
    ("%d MB through den ssh" % (nbytes // 1000000), t["raw"] / t["den"], "x the raw docker exec pipe's speed", ">= 1.5", ways["ssh"]),
    ("%d MiB through a forwarded port" % mb, t["rawfile"] / t["forwarded"], "x the raw docker exec pipe's speed", ">= 1.2", ways["forward"]),
    ("cold den up (image present)", res("cold")[0]["median"] / cold_floor, "x docker run -d + docker exec", "<= 1.1", "-"),
]
print(f"{'measure':42} {'ratio':>7}  {'of':34} {'target':>7}  path")
for name, ratio, of, target, way in rows:
    print(f"{name:42} {ratio:6.2f}x  {of:34} {target:>7}  {way}")
print(f"{'agent memory, one idle session (RSS)':42} {rss/1024:5.1f}MB  in {procs} processes{'':20} {'<= 15':>7}  {ways['ssh']}")
print(f"{'agent memory, one idle session (PSS)':42} {pss/1024:5.1f}MB  in {procs} processes{'':20} {'':>7}  {ways['ssh']}")
print(f"\nfloor: docker exec C true {floor*1000:.1f} ms; docker run -d + exec {cold_floor*1000:.0f} ms; "
      f"raw pipe {nbytes/t['raw']/1e6:.0f} MB/s")
PY
