"""Beam search: a strategy over the decoding core (core.py) that returns each sequence's n-best list.

numpy only: every backend (onnxruntime, TorchScript, eager) converts at its own boundary.

Every live hypothesis of every sequence of a batch is one row of a single decoder step call (at
most batch x beam_size rows). Of a sequence's candidates (its rows x the target vocabulary, ranked
by their log-prob sums, which at one step all have the same length), the beam_size best survive:
those ending in <eos> are finished and leave the batch, the others are the next step's rows, their
state gathered by the backend's select (rows may repeat). Ties go to the lower (row, token), so
beam_size 1 picks greedy's argmax token at every step and ends where greedy ends.

A hypothesis' score is core.Scored's: sum(token_scores) / length ** length_penalty, the end token
counted; one cut at max_len has length max_len and no end token.

Stopping: a sequence stops when its beam is empty, at max_len, or when it has beam_size finished
hypotheses and no live one can still beat the worst of them. The bound: a live hypothesis with sum
s after t tokens ends at a length L in (t, max_len] with a sum S <= s (log-probs are <= 0), so its
score is S / L**a <= s / L**a <= s / max_len**a for a penalty a >= 0, since s <= 0: with a
penalty a longer continuation can score higher, so the bound divides by max_len, never by t + 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .core import (
    Backend,
    DecodeOptions,
    Scored,
    Seqs,
    log_softmax,
    normalized,
    pad_batch,
)


@dataclass(frozen=True)
class _Rows:
    """Hypotheses, one per row, grouped by sequence in batch order."""

    seq: np.ndarray  # (R,) int64: the batch index of each row's sequence
    ids: np.ndarray  # (R, t) int64: the tokens emitted so far
    logps: np.ndarray  # (R, t) float64: their log-probs
    total: np.ndarray  # (R,) float64: the log-probs summed left to right

    def grown(self, parent: np.ndarray, token: np.ndarray, logp: np.ndarray) -> _Rows:
        """Row parent[i] extended by token[i] of log-prob logp[i], for every i."""
        return _Rows(
            self.seq[parent],
            np.column_stack([self.ids[parent], token]),
            np.column_stack([self.logps[parent], logp]),
            self.total[parent] + logp,
        )

    def take(self, keep: np.ndarray) -> _Rows:
        return _Rows(self.seq[keep], self.ids[keep], self.logps[keep], self.total[keep])


def beam_search(backend: Backend, seqs: Seqs, opts: DecodeOptions, *, stop_early: bool = True) -> list[list[Scored]]:
    """Decode one batch; returns per sequence its n-best list: at most num_hypotheses distinct
    hypotheses, best score first (ties: the one finished first). Only a model whose every candidate
    has probability 0 (non-finite logits) can leave a sequence with an empty list.

    stop_early False runs every sequence until its beam is empty or max_len, for checking that the
    stopping rule never drops a better hypothesis: the results are the same.
    """
    n, k = len(seqs), opts.beam_size
    kept: list[list[Scored]] = [[] for _ in range(n)]  # per sequence: its best (at most k) finished, best first
    worst = np.full(n, -np.inf)  # per sequence: the k-th best finished score (-inf while fewer)
    if n == 0:
        return kept
    carried = backend.encode(*pad_batch(seqs, opts.pad_id))
    rows = _Rows(np.arange(n), np.zeros((n, 0), np.int64), np.zeros((n, 0)), np.zeros(n))
    prev = np.full(n, opts.start_id, dtype=np.int64)
    for t in range(1, opts.max_len + 1):
        logits, carried = backend.step_logits(prev, carried)
        logp = log_softmax(logits)  # (R, V)
        if np.isnan(logp).any():  # a row with a non-finite logit: none of its tokens can be ranked
            logp[np.isnan(logp)] = -np.inf
        parent, token, token_logp = best_candidates(rows.seq, rows.total, logp, k)
        cands = rows.grown(parent, token, token_logp)  # (C,) grouped by sequence, best first
        ended = (token == opts.end_id) | (t == opts.max_len)
        _finish(kept, worst, cands, ended, token == opts.end_id, t, opts)
        live = ~ended
        if stop_early:
            live &= normalized(cands.total, opts.max_len, opts.length_penalty) > worst[cands.seq]
        if not live.any():
            break
        if not (len(parent) == len(rows.seq) and live.all() and (parent == np.arange(len(parent))).all()):
            carried = backend.select(carried, parent[live])  # rows repeat where a hypothesis has several heirs
        rows, prev = cands.take(live), token[live]
    return [found[: opts.num_hypotheses] for found in kept]


def _finish(
    kept: list[list[Scored]],
    worst: np.ndarray,
    cands: _Rows,
    ended: np.ndarray,
    eos: np.ndarray,
    t: int,
    opts: DecodeOptions,
) -> None:
    """Score the candidates that ended at step t (<eos>, or max_len) into their sequences' kept lists."""
    for c in np.flatnonzero(ended).tolist():
        ids = cands.ids[c, :-1] if eos[c] else cands.ids[c]
        kept[int(cands.seq[c])].append(
            Scored(
                tuple(ids.tolist()),
                normalized(float(cands.total[c]), t, opts.length_penalty),
                tuple(cands.logps[c].tolist()),
            )
        )
    for s in set(cands.seq[ended].tolist()):
        kept[s] = sorted(kept[s], key=lambda h: -h.score)[: opts.beam_size]  # stable: earlier finished first on ties
        worst[s] = kept[s][-1].score if len(kept[s]) == opts.beam_size else -np.inf


def best_candidates(seq: np.ndarray, total: np.ndarray, logp: np.ndarray, k: int) -> tuple[np.ndarray, ...]:
    """Each sequence's k best one-token extensions of its rows, by log-prob sum.

    seq (R,) groups the rows (contiguous, in batch order), total (R,) their sums, logp (R, V) the
    step's log-probs. Returns (parent row, token, token log-prob), each (C,), grouped like the rows,
    best first within a sequence, ties to the lower (row, token); -inf candidates are dropped.
    """
    r, v = logp.shape
    cand = logp + total[:, None]  # (R, V): every extension's sum
    per_row = min(k, v)
    tok = top_k(cand, per_row)  # (R, per_row): a row's best tokens, best first; a sequence's k best are among these
    top = cand[np.arange(r)[:, None], tok]
    first = np.empty(r, dtype=bool)
    first[0], first[1:] = True, seq[1:] != seq[:-1]
    starts = np.flatnonzero(first)  # (G,) the first row of each sequence
    if len(starts) == r:  # one row per sequence (the first step, or beam 1): its best tokens are the answer
        g, rank = np.nonzero(top > -np.inf)
        parent = g
    elif len(starts) == 1:  # one sequence (batch 1): its k best of all rows x tokens, in (row, token) order on ties
        best = top_k(cand.reshape(1, -1), min(k, cand.size))[0]
        best = best[cand.ravel()[best] > -np.inf]
        parent, token = np.divmod(best, v)
        return parent, token, logp[parent, token]
    else:
        group = np.cumsum(first) - 1
        width = int(np.diff(np.append(starts, r)).max())
        grid = np.full((len(starts), width, per_row), -np.inf)  # (G, rows of a sequence, per_row)
        grid[group, np.arange(r) - starts[group]] = top
        flat = grid.reshape(len(starts), -1)  # row-major: flat order is (slot, rank), so ties go to the lower row
        best = top_k(flat, min(k, flat.shape[1]))  # (G, k)
        g, j = np.nonzero(flat[np.arange(len(starts))[:, None], best] > -np.inf)
        row_slot, rank = np.divmod(best[g, j], per_row)
        parent = starts[g] + row_slot
    token = tok[parent, rank]
    return parent, token, logp[parent, token]


# top_k sorts whole rows up to SORT_COLUMNS wide or SORT_ELEMENTS in all; larger inputs are partitioned
# first. Measured (k 5): sorting wins on narrow rows and small arrays (5 x 75: 8 vs 43 us, numpy's call
# overhead), partitioning on large ones (320 x 75, a cmudict target vocabulary at batch 64: 355 vs 853 us).
SORT_COLUMNS = 48
SORT_ELEMENTS = 3072


def top_k(x: np.ndarray, k: int) -> np.ndarray:
    """(N, M) values, no NaN -> (N, k) column indices of each row's k largest, largest first; equal
    values in column order (the lowest column first)."""
    n, m = x.shape
    if k == 1:
        return x.argmax(axis=1)[:, None]  # the first of equal maxima
    if k >= m or m <= SORT_COLUMNS or n * m <= SORT_ELEMENTS:
        return np.argsort(-x, axis=1, kind="stable")[:, :k]
    some = np.argpartition(-x, k - 1, axis=1)[:, :k]  # (N, k): the k largest in any order, any of equal ones
    vals = np.take_along_axis(x, some, 1)
    kth = vals.min(axis=1, keepdims=True)
    if not ((x == kth).sum(axis=1) > (vals == kth).sum(axis=1, keepdims=False)).any():  # no row left an equal out
        return np.take_along_axis(some, np.lexsort((some, -vals), axis=1), 1)  # by value, then column
    return _top_k_ties(x, k)


def _top_k_ties(x: np.ndarray, k: int) -> np.ndarray:
    """top_k for rows where values equal to the k-th largest lie on both sides of the cut."""
    n = x.shape[0]
    kth = -np.partition(-x, k - 1, axis=1)[:, k - 1 : k]  # (N, 1): the k-th largest value of each row
    above, tie = x > kth, x == kth
    take = above | (tie & (np.cumsum(tie, axis=1) <= k - above.sum(axis=1, keepdims=True)))  # k per row
    idx = np.nonzero(take)[1].reshape(n, k)  # in column order
    return np.take_along_axis(idx, np.argsort(-np.take_along_axis(x, idx, 1), axis=1, kind="stable"), 1)
