#!/usr/bin/env bash
# Benchmark of `den up` with three local Dev Container Features: cold (no
# Feature image yet), `--recreate` with nothing changed, and a second
# workspace with the same Features, against a plain image `up` measured in
# the same run (and devcontainers/cli on the same folder when it can be
# installed). Prints medians of N runs; compare the ratios.
#
#   benches/features.sh      # N=5
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-5}
IMAGE=${IMAGE:-den-test/debian:bookworm}

. benches/lib.sh
cleanup() {
  for id in feat feat2 plain; do DEN_HOME=$DEN_HOME $DEN delete --force $id >/dev/null 2>&1 || true; done
  docker rm -f $(docker ps -aq --filter "label=devcontainer.local_folder=$work/feat") >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/plain/.devcontainer"
echo "{ \"image\": \"$IMAGE\" }" >"$work/plain/.devcontainer/devcontainer.json"
mkdir -p "$work/feat/.devcontainer"
cat >"$work/feat/.devcontainer/devcontainer.json" <<JSON
{ "image": "$IMAGE",
  "features": { "./one": {}, "./two": {"level": "high"}, "./three": {} } }
JSON
for f in one two three; do
  d=$work/feat/.devcontainer/$f
  mkdir -p "$d"
  cat >"$d/devcontainer-feature.json" <<JSON
{ "id": "$f", "version": "1.0.0", "options": {"level": {"type": "string", "default": "low"}},
  "containerEnv": {"BENCH_$f": "/opt/$f"} }
JSON
  printf '#!/bin/sh\nset -e\nmkdir -p /opt/%s\necho "$LEVEL" > /opt/%s/level\n' "$f" "$f" >"$d/install.sh"
done
cp -a "$work/feat" "$work/feat2"
# Builds of an earlier run would make the cold runs warm; this run's own
# Feature images are removed before each cold run.
drop_images="docker images -q den-features | xargs -r docker rmi -f >/dev/null 2>&1 || true"

hf plain_cold --prepare "$DEN delete --force plain >/dev/null 2>&1 || true" "$DEN up --ide none --id plain $work/plain"
$DEN up --ide none --id plain "$work/plain" >/dev/null 2>&1
hf plain_recreate "$DEN up --ide none --id plain --recreate $work/plain"
hf feat_cold --prepare "$DEN delete --force feat >/dev/null 2>&1 || true; $drop_images" "$DEN up --ide none --id feat $work/feat"
$DEN up --ide none --id feat "$work/feat" >/dev/null 2>&1
hf feat_recreate "$DEN up --ide none --id feat --recreate $work/feat"
hf feat_second --prepare "$DEN delete --force feat2 >/dev/null 2>&1 || true" "$DEN up --ide none --id feat2 $work/feat2"

have_cli=0
if devcontainer_cli; then
  have_cli=1
  hf cli_cold --prepare "docker rm -f \$(docker ps -aq --filter label=devcontainer.local_folder=$work/feat) >/dev/null 2>&1 || true; docker images -q 'vsc-feat-*' | xargs -r docker rmi -f >/dev/null 2>&1 || true" \
    "devcontainer up --workspace-folder $work/feat"
fi

python3 - "$json" "$have_cli" <<'PY'
import json, sys, os
d, have_cli = sys.argv[1], sys.argv[2] == "1"
m = lambda n: json.load(open(os.path.join(d, n + ".json")))["results"][0]["median"]
pc, fc = m("plain_cold"), m("feat_cold")
rows = [
    ("den up, plain image, cold (baseline)", pc, pc, "baseline"),
    ("den up, 3 local Features, cold", fc, pc, "Feature build"),
    ("den up --recreate, nothing changed", m("feat_recreate"), pc, "target <= 1.3"),
    ("den up --recreate, plain image", m("plain_recreate"), pc, "what --recreate costs anyway"),
    ("--recreate: Features / plain image", m("feat_recreate"), m("plain_recreate"), "the Features' share"),
    ("den up, second workspace, same Features", m("feat_second"), pc, "target <= 1.3"),
]
if have_cli:
    cc = m("cli_cold")
    rows += [("devcontainer up, 3 local Features, cold", cc, pc, "peer")]
    rows += [("den cold / devcontainer cold", fc, cc, "target <= 0.8")]
print(f"{'measure':44} {'median':>9} {'ratio':>7}  note")
for name, v, base, note in rows:
    print(f"{name:44} {v*1000:8.1f}ms {v/base:6.2f}x  {note}")
PY
