#!/usr/bin/env bash
# Benchmark of `den ssh` and OpenSSH through den's ProxyCommand against one
# raw `docker exec`: command round trip, bulk throughput out of the
# workspace, and memory of the agent and the client. Figures from one run;
# compare ratios.
#
#   benches/ssh.sh              # N=10 command runs, 3 throughput runs of 2 GB
#   N=20 T=5 BYTES=1000000000 benches/ssh.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10}
T=${T:-3}
BYTES=${BYTES:-2000000000}
IMAGE=${IMAGE:-den-test/debian:bookworm}

. benches/lib.sh
trap '$DEN delete --force sshbench >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
mkdir -p "$work/sshbench"
echo "{ \"image\": \"$IMAGE\" }" >"$work/sshbench/.devcontainer.json"
$DEN up --ide none "$work/sshbench" >/dev/null 2>&1
C=den-sshbench
SSH=(ssh -F "$DEN_SSH_CONFIG" -o BatchMode=yes sshbench.den)

hyperfine -N --style none --warmup 2 --runs "$N" --export-json "$work/cmd.json" \
  "docker exec $C true" "$DEN ssh sshbench -- true" "${SSH[*]} true" >/dev/null 2>&1

{
  tp raw docker exec $C head -c "$BYTES" /dev/zero
  tp den "$DEN" ssh sshbench -- head -c "$BYTES" /dev/zero
  tp openssh "${SSH[@]}" head -c "$BYTES" /dev/zero
} >"$work/tp.txt"

# Memory: the agent's SSH server while a session is idle and while it
# streams; the client's peak for one command.
rss_of_agent() { ps -C den -o rss=,args= | awk '/agent ssh-server/ {s+=$1} END {print s+0}'; }
"$DEN" ssh sshbench -- sleep 3 &
sleep 1.5; idle=$(rss_of_agent); wait
"$DEN" ssh sshbench -- head -c 3000000000 /dev/zero | wc -c >/dev/null &
sleep 3; busy=$(rss_of_agent); wait
# den's own high-water mark (VmHWM), not its docker exec child's (which
# /usr/bin/time would count once den waits for it).
"$DEN" ssh sshbench -- sleep 2 &
dpid=$!
sleep 1.5
client=$(awk '/VmHWM/ {print $2}' "/proc/$dpid/status")
wait

python3 - "$work" "$BYTES" "$idle" "$busy" "$client" <<'PY'
import json, sys, statistics, os
work, nbytes, idle, busy, client = sys.argv[1], int(sys.argv[2]), *map(int, sys.argv[3:6])
res = json.load(open(os.path.join(work, "cmd.json")))["results"]
floor = res[0]["median"]
print(f"{'command round trip':44} {'median':>9} {'ratio':>7}")
for name, r in zip(["docker exec true (floor)", "den ssh ws -- true", "OpenSSH via ProxyCommand: true"], res):
    print(f"{name:44} {r['median']*1000:8.1f}ms {r['median']/floor:6.2f}x")
times = {}
for line in open(os.path.join(work, "tp.txt")):
    k, v = line.split(); times.setdefault(k, []).append(float(v))
raw = statistics.median(times["raw"])
print(f"\n{'throughput, %d MB of zeros' % (nbytes // 1000000):44} {'MB/s':>9} {'of raw':>7}")
for k, name in [("raw", "raw docker exec pipe (floor)"), ("den", "den ssh"), ("openssh", "OpenSSH via ProxyCommand")]:
    t = statistics.median(times[k])
    print(f"{name:44} {nbytes/t/1e6:9.0f} {raw/t:6.0%}")
print(f"\nagent RSS, one idle session:  {idle/1024:.1f} MB")
print(f"agent RSS, streaming:         {busy/1024:.1f} MB")
print(f"client peak RSS, one command: {client/1024:.1f} MB")
PY
