"""The one greedy decoding loop, written against a small encode/step backend interface.

numpy only: every backend (onnxruntime, TorchScript, eager) converts at its own boundary.
"""
from __future__ import annotations

from typing import Any, Protocol, Sequence

import numpy as np


class Backend(Protocol):
    """How a backend runs the two graphs; `state` is whatever the backend carries between steps."""

    def encode(self, src: np.ndarray, lengths: np.ndarray) -> Any:
        """src (B, S) int64 padded, lengths (B,) int64 -> initial decoder state."""

    def step(self, prev_tokens: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
        """prev_tokens (B,) int64 -> (next_tokens (B,) int64 on the host, new state)."""

    def select(self, state: Any, rows: np.ndarray) -> Any:
        """Keep only the given batch rows of `state` (rows: int64 indices, ascending)."""


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad id lists into (B, S) int64 with S >= 1 (an all-empty batch still has one column)."""
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    src = np.full((len(seqs), max(1, int(lengths.max(initial=0)))), pad_id, dtype=np.int64)
    for i, s in enumerate(seqs):
        src[i, : len(s)] = s
    return src, lengths


def greedy_decode(
    backend: Backend, seqs: Sequence[Sequence[int]], *, pad_id: int, start_id: int, end_id: int, max_len: int
) -> list[list[int]]:
    """Decode one batch; returns each row's tokens without <sos>/<eos>.

    A row that emits the end token leaves the batch (its state rows are dropped), so finished rows
    cost nothing and every row's result is independent of its batch-mates.
    """
    n = len(seqs)
    out: list[list[int]] = [[] for _ in range(n)]
    if n == 0:
        return out
    state = backend.encode(*pad_batch(seqs, pad_id))
    active = list(range(n))  # output row of each live batch row
    prev = np.full(n, start_id, dtype=np.int64)
    for _ in range(max_len):
        nxt, state = backend.step(prev, state)
        toks = nxt.tolist()  # plain ints: cheaper than numpy ops at the small batch sizes of a step loop
        if end_id in toks:
            keep = [i for i, tok in enumerate(toks) if tok != end_id]
            if not keep:
                break
            rows = np.array(keep, dtype=np.int64)
            active, toks, nxt = [active[i] for i in keep], [toks[i] for i in keep], nxt[rows]
            state = backend.select(state, rows)
        for row, tok in zip(active, toks):
            out[row].append(tok)
        prev = nxt
    return out


def decode_in_batches(
    backend: Backend,
    seqs: Sequence[Sequence[int]],
    *,
    batch_size: int,
    pad_id: int,
    start_id: int,
    end_id: int,
    max_len: int,
) -> list[list[int]]:
    """Sort by length, decode in batches of `batch_size`, return results in input order."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))  # stable: ties keep input order
    results: list[list[int]] = [[] for _ in seqs]
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        decoded = greedy_decode(
            backend, [seqs[i] for i in idx], pad_id=pad_id, start_id=start_id, end_id=end_id, max_len=max_len
        )
        for i, toks in zip(idx, decoded):
            results[i] = toks
    return results
