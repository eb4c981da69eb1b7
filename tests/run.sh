#!/usr/bin/env bash
# The test command: make sure the engine and test images are there, then run
# every test (unit tests of each crate and the end-to-end suite in tests/e2e).
# The modules that connect to workspaces run a second time with every
# connection forced onto the exec tunnel (DEN_TEST_LINE=exec, docs/line.md),
# so the fallback path stays correct; not when arguments pick the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/engine/setup.sh
cargo test --workspace --locked "$@"
if [ $# -eq 0 ]; then
  DEN_TEST_LINE=exec cargo test -p den --locked --test e2e -- ssh:: ports:: up:: compose:: podman:: credentials::
fi
