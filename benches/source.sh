#!/usr/bin/env bash
# Benchmark of `den up` from a git URL (a repository of ~20k files served by
# a loopback git daemon) against `git clone` of the same URL plus `den up`
# of the clone's folder, and a warm `up` of the git workspace against a warm
# `up` of a folder workspace. Prints medians of N runs; compare the ratios.
#
#   benches/source.sh        # N=5, FILES=20000
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-5}
FILES=${FILES:-20000}

. benches/lib.sh
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() {
  for id in gitws folderws; do $DEN delete --force $id >/dev/null 2>&1 || true; done
  [ -n "${daemon:-}" ] && kill "$daemon" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The repository: FILES small files in 200 folders, and a config.
repo=$work/git/big
mkdir -p "$repo/.devcontainer"
echo '{ "image": "den-test/busybox" }' >"$repo/.devcontainer/devcontainer.json"
python3 - "$repo" "$FILES" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, "src", f"d{i % 200:03d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i}.txt"), "w") as f:
        f.write(f"file {i}\n")
PY
git -C "$repo" init -q -b main
git -C "$repo" add -A
git -C "$repo" -c user.email=b@b -c user.name=b commit -qm big
git clone -q --bare "$repo" "$work/git/big.git"
git daemon --export-all --reuseaddr --listen=127.0.0.1 --port="$port" --base-path="$work/git" "$work/git" >/dev/null 2>&1 &
daemon=$!
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
url=git://127.0.0.1:$port/big.git

hf den_git_cold --prepare "$DEN delete --force gitws >/dev/null 2>&1 || true" "$DEN up --ide none --id gitws $url"
hf floor_clone_up --prepare "$DEN delete --force folderws >/dev/null 2>&1 || true; rm -rf $work/clone" \
  "git clone -q $url $work/clone && $DEN up --ide none --id folderws $work/clone"
$DEN up --ide none --id gitws "$url" >/dev/null 2>&1
$DEN up --ide none --id folderws "$work/clone" >/dev/null 2>&1 || { git clone -q "$url" "$work/clone"; $DEN up --ide none --id folderws "$work/clone" >/dev/null 2>&1; }
hf den_git_warm "$DEN up --ide none --id gitws $url"
hf den_folder_warm "$DEN up --ide none --id folderws $work/clone"

python3 - "$json" "$FILES" <<'PY'
import json, sys, os
d, files = sys.argv[1], sys.argv[2]
m = lambda n: json.load(open(os.path.join(d, n + ".json")))["results"][0]["median"]
rows = [
    (f"git clone + den up of the folder ({files} files)", m("floor_clone_up"), m("floor_clone_up"), "baseline"),
    ("den up GIT_URL, cold", m("den_git_cold"), m("floor_clone_up"), "target <= 1.2"),
    ("den up FOLDER, warm", m("den_folder_warm"), m("den_folder_warm"), "baseline"),
    ("den up GIT_URL, warm", m("den_git_warm"), m("den_folder_warm"), "target <= 1.1"),
]
print(f"{'measure':48} {'median':>9} {'ratio':>7}  note")
for name, v, base, note in rows:
    print(f"{name:48} {v*1000:8.1f}ms {v/base:6.2f}x  {note}")
PY
