"""Length-bucketed batches: little padding, deterministic order from (seed, epoch)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..vocab import TextPipeline

POOL_BATCHES = 50  # batches per sorting pool: enough to bucket by length, small enough to stay random


@dataclass(frozen=True)
class EncodedPairs:
    src: list[list[int]]  # source ids (with <eos> if the pipeline appends it)
    tgt: list[list[int]]  # <sos> y1 .. yn <eos>

    @classmethod
    def from_text(cls, text: TextPipeline, pairs: Sequence[tuple[str, str]]) -> EncodedPairs:
        return cls([text.encode_source(s) for s, _ in pairs], [text.encode_target(t) for _, t in pairs])

    def __len__(self) -> int:
        return len(self.src)


def epoch_batches(data: EncodedPairs, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Row indices per batch for one epoch: shuffle, sort pools by length, shuffle the batches."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(len(data), generator=gen).tolist()
    pool = batch_size * POOL_BATCHES
    batches = []
    for start in range(0, len(perm), pool):
        chunk = sorted(perm[start : start + pool], key=lambda i: (len(data.src[i]), len(data.tgt[i])))
        batches += [chunk[b : b + batch_size] for b in range(0, len(chunk), batch_size)]
    order = torch.randperm(len(batches), generator=gen).tolist()
    return [batches[i] for i in order]


def collate(
    data: EncodedPairs, rows: Sequence[int], pad_id: int, device: torch.device, pad_like: Sequence[int] = ()
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> src (B, S), src_lengths (B,), tgt_in (B, T) = <sos> y.., tgt_out (B, T) = y.. <eos>.

    Padded as wide as `pad_like` rows too: a torchrun rank pads its share of a batch to the whole batch."""
    src = [data.src[i] for i in rows]
    tgt = [data.tgt[i] for i in rows]
    wide = [*rows, *pad_like]
    lengths = torch.tensor([len(s) for s in src], dtype=torch.int64)
    src_t = torch.full((len(rows), max(1, *(len(data.src[i]) for i in wide))), pad_id, dtype=torch.int64)  # (B, S)
    tgt_t = torch.full((len(rows), max(len(data.tgt[i]) for i in wide)), pad_id, dtype=torch.int64)  # (B, T+1)
    for r, (s, t) in enumerate(zip(src, tgt)):
        src_t[r, : len(s)] = torch.tensor(s, dtype=torch.int64)
        tgt_t[r, : len(t)] = torch.tensor(t, dtype=torch.int64)
    return src_t.to(device), lengths.to(device), tgt_t[:, :-1].to(device), tgt_t[:, 1:].to(device)
