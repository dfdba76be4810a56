"""Greedy search: the one greedy decoding loop, a strategy over the decoding core (core.py).

numpy only: every backend (onnxruntime, TorchScript, eager) converts at its own boundary.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .core import Backend, DecodeOptions, Seqs, pad_batch


def greedy_decode(backend: Backend, seqs: Seqs, opts: DecodeOptions) -> list[list[int]]:
    """Decode one batch; returns each row's tokens without <sos>/<eos>.

    A row that emits the end token leaves the batch (its state rows are dropped), so finished rows
    cost nothing and every row's result is independent of its batch-mates.
    """
    if opts.beam_size != 1:
        raise ConfigError(f"greedy search keeps one hypothesis per sequence; got beam_size {opts.beam_size}")
    n, end_id = len(seqs), opts.end_id
    out: list[list[int]] = [[] for _ in range(n)]
    if n == 0:
        return out
    state = backend.encode(*pad_batch(seqs, opts.pad_id))
    active = list(range(n))  # output row of each live batch row
    prev = np.full(n, opts.start_id, dtype=np.int64)
    for _ in range(opts.max_len):
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
