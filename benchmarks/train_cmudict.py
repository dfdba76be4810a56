"""Train the cmudict preset for its budget; print training words/s and test-split WER / PER.

    .venv/bin/python benchmarks/train_cmudict.py [--preset NAME|PATH] [--out DIR] [--max-minutes M] [--threads N] [--force]

WER = 1 - exact match, PER = phoneme edit distance / reference phonemes, both on the test split
(hash-split, 6,337 words). The load average and the process's CPU seconds are printed too: the
shipped presets budget CPU time (clock = "cpu"), so a busy machine stretches the wall time only; a
wall-clock budget (clock = "wall") buys less training on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

from cmudict_errors import any_pronunciation_hits, decode_test  # benchmarks/, this script's folder

from seq2seq_export.train import load_config, train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="cmudict", help="preset name or TOML path [default: cmudict]")
    ap.add_argument(
        "--out", default="artifacts/bench_cmudict", help="output folder (checkpoint, last.pt, metrics.json)"
    )
    ap.add_argument(
        "--max-minutes",
        type=float,
        default=None,
        help="time budget in minutes, on the preset's clock (CPU time for the shipped presets) [default: the preset's]",
    )
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads [default: the preset's]")
    ap.add_argument("--force", action="store_true", help="replace an earlier run in --out (otherwise refused)")
    args = ap.parse_args()
    cfg = load_config(args.preset, out=args.out, max_minutes=args.max_minutes, threads=args.threads)
    load_before, start = os.getloadavg()[0], time.monotonic()
    result = train(
        cfg,
        force=args.force,
        log=lambda msg: print(msg, file=sys.stderr, flush=True),
        progress=sys.stderr.isatty(),  # the bar on a terminal only, not in a redirected log
    )
    cpu_s = resource.getrusage(resource.RUSAGE_SELF).ru_utime
    encoder = f" (encoder {cfg.encoder_hidden_dim} per direction)" if cfg.encoder_hidden_dim else ""
    print(
        f"config: hidden {cfg.hidden_dim}{encoder}, emb {cfg.emb_dim}, layers {cfg.num_layers}, batch {cfg.batch_size}, "
        f"lr {cfg.lr} {cfg.lr_schedule}, teacher forcing {cfg.teacher_forcing}, "
        f"rnn {cfg.rnn}, bidirectional {cfg.bidirectional_encoder}, attention {cfg.attention}, "
        f"reverse source {cfg.reverse_source}, dropout {cfg.dropout}, label smoothing {cfg.label_smoothing}, "
        + (f"weight decay {cfg.weight_decay}, " if cfg.weight_decay else "")
        + (f"weight average (ema) {cfg.ema_decay}, " if cfg.ema_decay else "")
        + f"clock {cfg.clock}, threads {cfg.threads or 'default'}"
    )
    print(
        f"trained {result.epochs:g} epochs ({result.steps} steps) in {result.elapsed_s / 60:.1f} min on the {cfg.clock} clock, "
        f"{cpu_s / 60:.1f} min CPU; load average {load_before:.1f} at start, {os.getloadavg()[0]:.1f} at end"
    )
    print(f"training speed: {result.pairs_per_s:.0f} pairs/s")
    print(f"valid: WER {1 - result.valid['exact_match']:.2%}, PER {result.valid['token_error_rate']:.2%}")
    print(
        f"test:  WER {1 - result.test['exact_match']:.2%}, PER {result.test['token_error_rate']:.2%} "
        f"({result.test['count']} words); total {(time.monotonic() - start) / 60:.1f} min"
    )
    if cfg.dataset == "cmudict":
        test, hyps = decode_test(str(result.checkpoint), result.max_len)
        print(
            f"test:  WER {1 - any_pronunciation_hits([w for w, _ in test], hyps) / len(test):.2%} when any of a "
            f"word's cmudict pronunciations counts (the first one is the reference above)"
        )


if __name__ == "__main__":
    main()
