"""Warnings for runs that cannot work as set up: no silent 0% exact match.

Both point at the usual cause, a tokenizer that splits the text otherwise than the task needs
(a TSV file's sides are space-separated words unless --src-tokenizer/--tgt-tokenizer say char).
"""
from __future__ import annotations

from typing import Any

from .state import Run

UNSEEN_SHARE = 0.5  # warn when at least this share of validation targets can never be exactly right


def _check_tokenizers(run: Run) -> str:
    return (f"check the tokenizers (--src-tokenizer/--tgt-tokenizer, now {run.data.src_tokenizer}/"
            f"{run.data.tgt_tokenizer}; TSV data defaults to space-separated words, char splits every "
            "character) and the data")


def unseen_targets(run: Run) -> str:
    """The warning when most validation targets hold a token the train split never has ("" if not):
    the model cannot produce that token, so those targets can never be exactly right."""
    unk, targets = run.text.tgt.unk_id, run.valid.tgt
    unseen = sum(unk in ids for ids in targets) if unk is not None else 0
    if unseen < UNSEEN_SHARE * len(targets):
        return ""
    return (f"warning: {unseen} of {len(targets)} validation targets ({unseen / len(targets):.0%}) hold a token "
            f"the train split never has, so they can never be exactly right: {_check_tokenizers(run)}")


def first_judged(run: Run, history: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The first validation row after a whole epoch and the learning-rate warm-up; None before it."""
    return next((row for row in history if row["epoch"] >= 1 and row["step"] >= run.cfg.warmup_steps), None)


def nothing_right(run: Run, history: list[dict[str, Any]]) -> str:
    """The warning when no validation output was exactly right up to the first judged row ("" if not).

    A model that learns gets some outputs right within an epoch past the warm-up; none at all points
    at the input (tokenizers, misaligned pairs) before the training."""
    first = first_judged(run, history)
    if first is None or any(row["exact_match"] > 0 for row in history[: history.index(first) + 1]):
        return ""
    return (f"warning: no validation output is exactly right after epoch {first['epoch']:g} "
            f"({run.names.sequence} 100% at step {first['step']}): {_check_tokenizers(run)}")
