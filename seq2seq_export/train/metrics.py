"""Validation metrics: teacher-forced loss and greedy-decode exact match / token error rate.

Printed as error rates under the names users know: WER and PER (word and phoneme error rates) for
cmudict, sequence and token error rates otherwise; metrics.json keeps exact_match and token_error_rate.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import torch

from ..errors import DataError
from ..model import Seq2Seq, sequence_loss
from ..runtime.core import DecodeOptions, decode_in_batches
from ..runtime.eager import EagerBackend
from ..runtime.greedy import greedy_decode
from ..vocab import TextPipeline
from .batching import EncodedPairs, collate


@dataclass(frozen=True)
class Metrics:
    exact_match: float  # fraction of outputs equal to the reference (1 - WER for cmudict)
    token_error_rate: float  # total edit distance / total reference tokens (PER for cmudict)
    count: int  # pairs evaluated

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class MetricNames:
    sequence: str  # 1 - exact match: the share of outputs with any error
    token: str  # token edit distance / reference tokens
    item: str  # what one pair is, in counts

    @classmethod
    def of(cls, dataset: str) -> "MetricNames":
        """WER / PER over words for cmudict (word -> phonemes); sequence / token error rate over pairs otherwise."""
        if dataset == "cmudict":
            return cls("WER", "PER", "words")
        return cls("sequence error rate", "token error rate", "pairs")

    def describe(self, metrics: dict) -> str:
        """'WER 29.71%, PER 7.81%' from a Metrics.to_dict() row."""
        return f"{self.sequence} {1 - metrics['exact_match']:.2%}, {self.token} {metrics['token_error_rate']:.2%}"


def edit_distance(a: Sequence[int], b: Sequence[int]) -> int:
    """Levenshtein distance (insertions, deletions, substitutions all cost 1)."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def score(hyps: Sequence[Sequence[int]], refs: Sequence[Sequence[int]]) -> Metrics:
    """Exact match and corpus token error rate of hypotheses against references (id lists)."""
    if len(hyps) != len(refs) or not refs:
        raise DataError(f"need as many hypotheses as references (>0), got {len(hyps)} and {len(refs)}")
    exact = sum(list(h) == list(r) for h, r in zip(hyps, refs))
    errors = sum(edit_distance(h, r) for h, r in zip(hyps, refs))
    return Metrics(exact / len(refs), errors / max(1, sum(len(r) for r in refs)), len(refs))


def greedy_outputs(
    model: Seq2Seq,
    text: TextPipeline,
    sources: Sequence[str],
    *,
    max_len: int,
    batch_size: int = 512,
    device: torch.device | str | None = None,
) -> list[list[int]]:
    """Greedy-decode every source text with the shared loop (eager backend); target ids per source."""
    was_training = model.training
    seqs = [text.encode_source(s) for s in sources]
    opts = DecodeOptions.from_text(text, max_len)
    hyps = decode_in_batches(EagerBackend(model, device), seqs, opts, batch_size=batch_size, strategy=greedy_decode)
    model.train(was_training)
    return hyps


def evaluate(
    model: Seq2Seq,
    text: TextPipeline,
    pairs: Sequence[tuple[str, str]],
    *,
    max_len: int,
    batch_size: int = 512,
    device: torch.device | str | None = None,
) -> Metrics:
    """Greedy-decode every source with the shared loop and score it against its target."""
    hyps = greedy_outputs(model, text, [s for s, _ in pairs], max_len=max_len, batch_size=batch_size, device=device)
    return score(hyps, [text.tgt.encode(t) for _, t in pairs])


@torch.no_grad()
def validation_loss(model: Seq2Seq, data: EncodedPairs, pad_id: int, batch_size: int, device: torch.device) -> float:
    """Teacher-forced cross-entropy per target token over `data`, in eval mode."""
    was_training = model.training
    model.eval()
    order = sorted(range(len(data)), key=lambda i: len(data.src[i]))
    total, tokens = 0.0, 0
    for start in range(0, len(order), batch_size):
        src, lengths, tgt_in, tgt_out = collate(data, order[start : start + batch_size], pad_id, device)
        n = int((tgt_out != pad_id).sum())
        total += float(sequence_loss(model(src, lengths, tgt_in), tgt_out, pad_id)) * n
        tokens += n
    model.train(was_training)
    return total / max(1, tokens)
