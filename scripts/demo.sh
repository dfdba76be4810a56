#!/usr/bin/env bash
# `make demo`: train the toy preset (reverse digit sequences) on a short budget, print its test metrics.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

echo "== s2s-train --preset toy (45-second budget) -> artifacts/demo"
"$BIN/s2s-train" --preset toy --out artifacts/demo --max-minutes 0.75
