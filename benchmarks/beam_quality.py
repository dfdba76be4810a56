"""Greedy vs beam search quality: WER / PER on the cmudict test split for each trained preset.

    .venv/bin/python benchmarks/beam_quality.py [--run NAME=DIR ...] [--beams 1,2,5,10] [--length-penalty 1.0] [--json FILE]

Each --run is a training run's folder (`s2s-train --out DIR` or benchmarks/train_cmudict.py --out DIR)
holding checkpoint.pt; its bundle is exported once to DIR/bundle (as `s2s-export` does; reused later). Every
setting decodes all 6,337 test words through the onnx runtime (one thread, batch 64, the bundle's
max_len) and is scored against the first cmudict pronunciation: WER = 1 - exact match, PER = phoneme
edit distance / reference phonemes (seq2seq_export.train.metrics.score, as training reports them).
Beam 1 is greedy. words/s is the decode's wall speed on this machine, for orientation only.
Default runs: cmudict=artifacts/cmudict and cmudict-attention=artifacts/cmudict-attention.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from seq2seq_export.bundle import export_bundle
from seq2seq_export.data import load_dataset
from seq2seq_export.runtime import Translator
from seq2seq_export.train.metrics import score

DEFAULT_RUNS = ("cmudict=artifacts/cmudict", "cmudict-attention=artifacts/cmudict-attention")


def bundle_of(run: Path) -> Path:
    """The run's bundle, exported from its checkpoint.pt on first use."""
    bundle = run / "bundle"
    if not (bundle / "manifest.json").is_file():
        print(f"{run}: exporting checkpoint.pt to {bundle} ...", file=sys.stderr, flush=True)
        export_bundle(run / "checkpoint.pt", bundle, force=bundle.exists())
    return bundle


def evaluate(translator: Translator, words: list[str], refs: list[list[str]], beam: int, penalty: float) -> dict:
    """One setting's WER, PER and decode speed on the test words."""
    start = time.perf_counter()
    found = translator.translations(words, beam_size=beam, length_penalty=penalty)
    seconds = time.perf_counter() - start
    metrics = score([t.output.split() for t in found], refs)
    return {
        "beam_size": beam,
        "length_penalty": penalty,
        "wer": 1 - metrics.exact_match,
        "per": metrics.token_error_rate,
        "words": metrics.count,
        "words_per_s": len(words) / seconds,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", action="append", help="NAME=DIR of a trained run (repeatable) [default: the two presets]")
    ap.add_argument("--beams", default="1,2,5,10", help="beam sizes, comma-separated; 1 = greedy [default: 1,2,5,10]")
    ap.add_argument("--length-penalty", type=float, default=1.0, help="score = log-prob sum / length**A [default: 1.0]")
    ap.add_argument("--json", type=Path, help="also write the rows to this JSON file (docs/results plots read it)")
    args = ap.parse_args()
    beams = [int(b) for b in args.beams.split(",")]
    test = load_dataset("cmudict").test
    words, refs = [w for w, _ in test], [p.split() for _, p in test]
    rows = []
    print(f"cmudict test split: {len(words)} words; onnx runtime, 1 thread, batch 64; load {os.getloadavg()[0]:.1f}")
    print(f"{'preset':<20} {'decoding':<10} {'WER':>7} {'PER':>7} {'words/s':>8}")
    for spec in args.run or DEFAULT_RUNS:
        name, _, folder = spec.partition("=")
        run = Path(folder)
        if not (run / "checkpoint.pt").is_file():
            sys.exit(
                f"Error: {run / 'checkpoint.pt'}: no trained checkpoint; train it first (benchmarks/train_cmudict.py --preset {name} --out {run})"
            )
        translator = Translator.from_bundle(bundle_of(run), "onnx", batch_size=64, threads=1)  # once per run
        for beam in beams:
            row = {"preset": name, **evaluate(translator, words, refs, beam, args.length_penalty)}
            rows.append(row)
            label = "greedy" if beam == 1 else f"beam {beam}"
            print(
                f"{name:<20} {label:<10} {row['wer']:>7.2%} {row['per']:>7.2%} {row['words_per_s']:>8.0f}", flush=True
            )
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
