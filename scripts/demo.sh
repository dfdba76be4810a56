#!/usr/bin/env bash
# `make demo`: the whole pipeline on the toy task (reverse a digit sequence) in a few minutes:
# train (the toy preset's 3 epochs and no time cap, so the model is the same however busy the
# machine is), export the bundle (ONNX + TorchScript), verify it against the eager model, and
# translate examples with the torch-free onnx runtime.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
OUT=artifacts/demo

echo "== 1/4 s2s-train --preset toy (3 epochs, about 1 CPU-minute) -> $OUT"
"$BIN/s2s-train" --preset toy --out "$OUT" --force  # replaces an earlier demo run

echo
echo "== 2/4 s2s-export -> $OUT/bundle"
"$BIN/s2s-export" --checkpoint "$OUT/checkpoint.pt" --out "$OUT/bundle" --force

echo
echo "== 3/4 s2s-verify (eager vs TorchScript vs ONNX, token by token)"
"$BIN/s2s-verify" --bundle "$OUT/bundle" --data toy --samples 300

echo
echo "== 4/4 s2s-translate --backend onnx (numpy + onnxruntime only)"
INPUTS='3 1 4\n1 2 3 4 5\n9 8 7 6 5 4 3\n'
printf "$INPUTS" | "$BIN/s2s-translate" --bundle "$OUT/bundle" --json
echo
echo "Train the full cmudict preset (30 CPU-minutes): $BIN/s2s-train --preset cmudict"
