#!/usr/bin/env bash
# The README's benchmark table in one command: the cmudict preset, every backend, 1 thread.
#
#   bash benchmarks/bench_cmudict.sh              # trained model (trains it first if absent: ~30 min)
#   bash benchmarks/bench_cmudict.sh --untrained  # the preset's dims and vocabularies, 1 training step
#   bash benchmarks/bench_cmudict.sh --checkpoint PATH  # any checkpoint of the preset (bundle beside it)
#   bash benchmarks/bench_cmudict.sh [--untrained | --checkpoint PATH] [more s2s-bench options, e.g. --repeat 9]
#
# Reuses the checkpoint (artifacts/cmudict/checkpoint.pt by default, trained by
# `s2s-train --preset cmudict` when absent), exports it to `bundle` beside it when that is missing
# or older than the checkpoint, then runs s2s-bench on cmudict words: the table goes to stdout,
# the full result to artifacts/bench/<checkpoint folder name>.json.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
S2S=("$PY" -m seq2seq_export)

train=(--preset cmudict)
ckpt=artifacts/cmudict/checkpoint.pt
if [[ "${1:-}" == "--untrained" ]]; then
    shift
    # One optimizer step: real vocabularies and dims, weights still essentially random.
    train+=(--max-steps 1)
    ckpt=artifacts/cmudict-untrained/checkpoint.pt
elif [[ "${1:-}" == "--checkpoint" ]]; then
    ckpt=$2
    shift 2
fi
dir=$(dirname "$ckpt")
bundle=$dir/bundle
name=$(basename "$dir")

if [[ ! -f $ckpt ]]; then
    "${S2S[@]}" train "${train[@]}" --out "$dir" --threads 1 --quiet
fi
if [[ ! -f $bundle/manifest.json || $ckpt -nt $bundle/manifest.json ]]; then
    "${S2S[@]}" export --checkpoint "$ckpt" --out "$bundle" --force
fi
mkdir -p artifacts/bench
"${S2S[@]}" bench --bundle "$bundle" --data cmudict --threads 1 --backends eager,torchscript,onnx \
    --batch-sizes 1,16,64,256 --report "artifacts/bench/$name.json" "$@"
