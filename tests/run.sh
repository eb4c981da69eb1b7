#!/usr/bin/env bash
# The test command: make sure the engine and test images are there, then run
# every test (unit tests of each crate and the end-to-end suite in tests/e2e).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/engine/setup.sh
exec cargo test --workspace --locked "$@"
