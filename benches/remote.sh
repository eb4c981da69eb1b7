#!/usr/bin/env bash
# The ssh provider against the docker provider, measured in one run: cold
# and warm `den up`, and a command round trip (`den ssh ID -- true`). The
# ssh provider talks to a private sshd on 127.0.0.1 whose docker is the same
# local engine, so the difference is what going through a machine costs
# (ssh connection, agent on the machine, files sent through the tunnel). The
# ssh provider shares one connection per host (CONTROL_PERSIST, default 10m);
# CONTROL_PERSIST= benches/remote.sh measures it without.
#
#   benches/remote.sh        # N=5
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-5}
IMAGE=${IMAGE:-den-test/debian:bookworm}

. benches/lib.sh
sshd_pid=
cleanup() {
  $DEN delete --force bdocker >/dev/null 2>&1 || true
  $DEN delete --force bssh >/dev/null 2>&1 || true
  ssh -o 'ControlPath=~/.ssh/den-%C' -O exit -p "${port:-22}" root@127.0.0.1 >/dev/null 2>&1 || true
  [ -n "$sshd_pid" ] && kill "$sshd_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# a private sshd on 127.0.0.1 (key auth only)
mkdir -p "$work/sshd" /run/sshd
ssh-keygen -q -t ed25519 -N '' -f "$work/sshd/host"
ssh-keygen -q -t ed25519 -N '' -f "$work/sshd/client"
cp "$work/sshd/client.pub" "$work/sshd/authorized_keys"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/sshd/config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $work/sshd/host
PidFile $work/sshd/pid
AuthorizedKeysFile $work/sshd/authorized_keys
PasswordAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
LogLevel ERROR
EOF
echo "[127.0.0.1]:$port $(cat "$work/sshd/host.pub")" >"$work/sshd/known_hosts"
/usr/sbin/sshd -D -e -f "$work/sshd/config" 2>"$work/sshd/log" &
sshd_pid=$!
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
flags="-i $work/sshd/client -o IdentitiesOnly=yes -o UserKnownHostsFile=$work/sshd/known_hosts -o BatchMode=yes"

mkdir -p "$work/proj/.devcontainer"
cat >"$work/proj/.devcontainer/devcontainer.json" <<JSON
{ "image": "$IMAGE", "postCreateCommand": "echo created > /tmp/created" }
JSON
head -c 1000000 /dev/urandom >"$work/proj/data.bin" # a 1 MB project

ssh_up="$DEN up --ide none --id bssh --provider ssh --provider-option HOST=root@127.0.0.1 --provider-option PORT=$port --provider-option CONTROL_PERSIST=${CONTROL_PERSIST-10m}"

hf ssh_floor "ssh -p $port $flags root@127.0.0.1 true"
hf docker_cold --prepare "$DEN delete --force bdocker >/dev/null 2>&1 || true" \
  "$DEN up --ide none --id bdocker --provider docker $work/proj"
$DEN up --ide none --id bdocker --provider docker "$work/proj" >/dev/null 2>&1
hf docker_warm "$DEN up --ide none --id bdocker $work/proj"
hf docker_cmd "$DEN ssh bdocker -- true"
hf ssh_cold --prepare "$DEN delete --force bssh >/dev/null 2>&1 || true" \
  "$ssh_up --provider-option 'EXTRA_FLAGS=$flags' $work/proj"
$ssh_up --provider-option "EXTRA_FLAGS=$flags" "$work/proj" >/dev/null 2>&1
hf ssh_warm "$DEN up --ide none --id bssh $work/proj"
hf ssh_cmd "$DEN ssh bssh -- true"
# The floor of any command on the machine: one session on the shared
# connection (the remote shell's start-up included: root's .bashrc here).
hf ssh_mux "ssh -o 'ControlPath=~/.ssh/den-%C' -p $port $flags root@127.0.0.1 true"
hf ssh_openssh "ssh -F $work/ssh_config bssh.den true"

python3 - "$json" <<'PY'
import json, sys, os
d = sys.argv[1]
m = lambda n: json.load(open(os.path.join(d, n + ".json")))["results"][0]["median"]
print(f"plain ssh -p PORT root@127.0.0.1 true        {m('ssh_floor')*1000:8.1f} ms")
for what in ("cold", "warm", "cmd"):
    dk, sh = m(f"docker_{what}"), m(f"ssh_{what}")
    label = {"cold": "den up (cold)", "warm": "den up (warm)", "cmd": "den ssh ID -- true"}[what]
    print(f"{label:<22} docker {dk*1000:8.1f} ms   ssh provider {sh*1000:8.1f} ms   = {sh/dk:.2f}x")
print(f"ssh on the shared connection, host true    {m('ssh_mux')*1000:8.1f} ms   den ssh via ssh provider = {m('ssh_cmd')/m('ssh_mux'):.2f}x that")
print(f"OpenSSH ID.den true via ssh provider        {m('ssh_openssh')*1000:8.1f} ms   = {m('ssh_openssh')/m('docker_cmd'):.2f}x den ssh on docker")
PY
