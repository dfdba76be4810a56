"""Greedy search: the one greedy decoding loop, a strategy over the decoding core (core.py).

numpy only: every backend (onnxruntime, TorchScript, eager) converts at its own boundary.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .core import Backend, DecodeOptions, Scored, Seqs, log_softmax, normalized, pad_batch


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


def greedy_scored(backend: Backend, seqs: Seqs, opts: DecodeOptions) -> list[list[Scored]]:
    """Greedy search with scores: per sequence, beam_search's beam_size 1 list, to the last bit, at
    greedy's cost (one log-softmax and argmax per step instead of the beam's bookkeeping).

    As the beam does: each step's log-probs are core.log_softmax's, the token their argmax (ties to the
    lower token), the sum taken left to right in float64; a row whose log-probs are all -inf (a broken
    model) leaves with an empty list.
    """
    if opts.beam_size != 1:
        raise ConfigError(f"greedy search keeps one hypothesis per sequence; got beam_size {opts.beam_size}")
    n = len(seqs)
    found: list[list[Scored]] = [[] for _ in range(n)]
    if n == 0:
        return found
    state = backend.encode(*pad_batch(seqs, opts.pad_id))
    active = list(range(n))  # output row of each live batch row
    ids: list[list[int]] = [[] for _ in range(n)]
    logps: list[list[float]] = [[] for _ in range(n)]
    total = np.zeros(n)  # (R,) float64: each live row's log-prob sum
    prev = np.full(n, opts.start_id, dtype=np.int64)
    for t in range(1, opts.max_len + 1):
        logits, state = backend.step_logits(prev, state)
        logp = log_softmax(logits)  # (R, V)
        nxt = logp.argmax(axis=1)  # (R,)
        chosen = logp[np.arange(len(nxt)), nxt]  # (R,)
        total += chosen
        toks, lps = nxt.tolist(), chosen.tolist()
        for row, tok, lp in zip(active, toks, lps):
            ids[row].append(tok)
            logps[row].append(lp)
        last = t == opts.max_len
        done = [i for i, tok in enumerate(toks) if last or tok == opts.end_id]
        scores = normalized(total, t, opts.length_penalty).tolist() if done else []
        for i in done:
            row = active[i]
            if lps[i] != -np.inf:  # cut at max_len: the last token stays; <eos> is not an id
                kept = ids[row] if toks[i] != opts.end_id else ids[row][:-1]
                found[row] = [Scored(tuple(kept), scores[i], tuple(logps[row]))]
        keep = [i for i, (tok, lp) in enumerate(zip(toks, lps)) if tok != opts.end_id and lp != -np.inf]
        if last or not keep:
            break
        if len(keep) < len(active):
            rows = np.array(keep, dtype=np.int64)
            active, total, nxt = [active[i] for i in keep], total[rows], nxt[rows]
            state = backend.select(state, rows)
        prev = nxt
    return found
