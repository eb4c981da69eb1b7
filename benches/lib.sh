# What every benchmark script starts with (source it from the repository
# root): the engine and its test images, hyperfine, a release build in $DEN,
# a private $work folder with its own DEN_HOME and ssh config, and `hf NAME
# HYPERFINE-ARGS…` that keeps hyperfine's JSON in $json/NAME.json.
bash tests/engine/setup.sh
command -v hyperfine >/dev/null 2>&1 || apt-get install -y -qq hyperfine >/dev/null 2>&1 || true
command -v hyperfine >/dev/null 2>&1 || { echo "bench: hyperfine is needed (apt-get install hyperfine)" >&2; exit 1; }
cargo build --release --quiet
DEN=$PWD/target/x86_64-unknown-linux-gnu/release/den

work=$(mktemp -d)
export DEN_HOME=$work/home DEN_SSH_CONFIG=$work/ssh_config
json=$work/results
mkdir -p "$json"
hf() { # name, then hyperfine args
  local name=$1; shift
  hyperfine --style none --warmup 1 --runs "$N" --export-json "$json/$name.json" "$@" >/dev/null 2>&1
}
# Whether devcontainers/cli (the reference CLI, the peer in the tables) is
# here, installed from npm when it is not (BENCH_NO_NPM=1: never).
devcontainer_cli() {
  if ! command -v devcontainer >/dev/null 2>&1 && [ -z "${BENCH_NO_NPM:-}" ]; then
    timeout 300 npm install -g --silent @devcontainers/cli >/dev/null 2>&1 || true
  fi
  command -v devcontainer >/dev/null 2>&1
}
# Throughput: `tp LABEL COMMAND…` runs COMMAND $T times with its output
# counted and prints "LABEL SECONDS" for each run.
tp() { # label, command…
  local label=$1; shift
  for _ in $(seq "$T"); do
    local s e
    s=$(date +%s.%N)
    "$@" | wc -c >/dev/null
    e=$(date +%s.%N)
    echo "$label $(echo "$e - $s" | bc)"
  done
}
