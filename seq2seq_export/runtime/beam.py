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

Pruning and stopping: a live hypothesis with sum s after t tokens ends at a length L in (t, max_len]
with a sum S <= s (log-probs are <= 0), so its score is S / L**a <= s / L**a <= s / max_len**a for a
penalty a >= 0, since s <= 0: with a penalty a longer continuation can score higher, so the bound
divides by max_len, never by t + 1. Once a sequence has beam_size finished hypotheses, a live one
whose bound is no better than the worst of them can never enter the n-best list (ties go to the one
finished first), nor can any descendant (its sum is no larger): it leaves the batch at once. That
changes no result: every candidate it would have produced ranks below every candidate that can still
enter (a strictly larger sum), so it could only have displaced hypotheses as hopeless as itself. A
sequence stops when no live hypothesis is left, or at max_len.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .core import Backend, DecodeOptions, Scored, Seqs, log_softmax, normalized, pad_batch


@dataclass(frozen=True)
class _Rows:
    """Live hypotheses, one per row, grouped by sequence in batch order."""

    seq: np.ndarray  # (R,) int64: the batch index of each row's sequence
    total: np.ndarray  # (R,) float64: the log-probs summed left to right
    ids: np.ndarray  # (R, max_len) int64: after step t, the tokens emitted so far in the first t columns
    logps: np.ndarray  # (R, max_len) float64: their log-probs, likewise

    def grown(self, c: _Candidates, t: int) -> _Rows:
        """The rows of step t + 1: each candidate's parent row extended by its token."""
        ids, logps = self.ids[c.parent], self.logps[c.parent]
        ids[:, t - 1], logps[:, t - 1] = c.token, c.logp
        return _Rows(c.seq, c.total, ids, logps)


@dataclass(frozen=True)
class _Candidates:
    """One-token extensions of the rows, grouped by sequence, best first within one."""

    parent: np.ndarray  # (C,) int64: the row extended
    token: np.ndarray  # (C,) int64: by this token
    logp: np.ndarray  # (C,) float64: of this log-prob
    total: np.ndarray  # (C,) float64: the parent's sum plus logp
    seq: np.ndarray  # (C,) int64: the parent's sequence

    def take(self, keep: np.ndarray) -> _Candidates:
        return _Candidates(self.parent[keep], self.token[keep], self.logp[keep], self.total[keep], self.seq[keep])


def beam_search(backend: Backend, seqs: Seqs, opts: DecodeOptions, *, stop_early: bool = True) -> list[list[Scored]]:
    """Decode one batch; returns per sequence its n-best list: at most num_hypotheses distinct
    hypotheses, best score first (ties: the one finished first). Only a model whose every candidate
    has probability 0 (non-finite logits) can leave a sequence with an empty list.

    stop_early False keeps every hypothesis until it ends or max_len (no pruning, no stopping), for
    checking that the bound never drops a hypothesis that matters: the results are the same.
    """
    n, k = len(seqs), opts.beam_size
    kept: list[list[Scored]] = [[] for _ in range(n)]  # per sequence: its best (at most k) finished, best first
    worst = np.full(n, -np.inf)  # per sequence: the k-th best finished score (-inf while fewer)
    if n == 0:
        return kept
    carried = backend.encode(*pad_batch(seqs, opts.pad_id))
    empty = np.zeros((n, opts.max_len))
    rows = _Rows(np.arange(n), np.zeros(n), empty.astype(np.int64), empty)
    prev = np.full(n, opts.start_id, dtype=np.int64)
    bounded = False  # whether some sequence has k finished hypotheses (before that nothing is pruned)
    for t in range(1, opts.max_len + 1):
        logits, carried = backend.step_logits(prev, carried)
        cands = best_candidates(rows, log_softmax(logits), k)
        if t == opts.max_len:
            _finish(kept, worst, rows, cands, np.arange(len(cands.token)), t, opts)
            break
        live = cands.token != opts.end_id  # (C,)
        if not live.all():
            bounded = _finish(kept, worst, rows, cands, (~live).nonzero()[0], t, opts) or bounded
        if stop_early and bounded:  # the bound: see the module doc
            live &= normalized(cands.total, opts.max_len, opts.length_penalty) > worst[cands.seq]
        keep = live.nonzero()[0]
        if not len(keep):
            break
        if len(keep) < len(live):
            cands = cands.take(keep)
        parent, r = cands.parent, len(rows.seq)
        if not (len(parent) == r and (parent == np.arange(r)).all()):
            carried = backend.select(carried, parent)  # rows repeat where a hypothesis has several heirs
        rows, prev = rows.grown(cands, t), cands.token
    return [found[: opts.num_hypotheses] for found in kept]


def _finish(
    kept: list[list[Scored]],
    worst: np.ndarray,
    rows: _Rows,
    cands: _Candidates,
    ended: np.ndarray,
    t: int,
    opts: DecodeOptions,
) -> bool:
    """Score the candidates `ended` (indices) that ended at step t (<eos>, or max_len) into their
    sequences' kept lists; True when some list now holds beam_size hypotheses."""
    scores = normalized(cands.total[ended], t, opts.length_penalty)  # (E,)
    # The others would sort after their sequence's k kept ones (ties: earlier finished first): the lists stay.
    enter = scores > worst[cands.seq[ended]]
    ended = ended[enter]
    k, touched = opts.beam_size, set()
    seq, token, parent, logp = (a[ended].tolist() for a in (cands.seq, cands.token, cands.parent, cands.logp))
    for s, tok, p, lp, score in zip(seq, token, parent, logp, scores[enter].tolist()):
        ids = rows.ids[p, : t - 1].tolist() + ([] if tok == opts.end_id else [tok])
        kept[s].append(Scored(tuple(ids), score, (*rows.logps[p, : t - 1].tolist(), lp)))
        touched.add(s)
    for s in touched:
        kept[s] = sorted(kept[s], key=lambda h: -h.score)[:k]  # stable: earlier finished first on ties
        worst[s] = kept[s][-1].score if len(kept[s]) == k else -np.inf
    return any(len(kept[s]) == k for s in touched)


def best_candidates(rows: _Rows, logp: np.ndarray, k: int) -> _Candidates:
    """Each sequence's k best one-token extensions of its rows, by log-prob sum.

    logp (R, V) is the step's log-probs of the rows. The candidates are grouped like the rows, best
    first within a sequence, ties to the lower (row, token); -inf candidates are dropped.
    """
    v, seq = logp.shape[1], rows.seq
    cand = logp + rows.total[:, None]  # (R, V): every extension's sum
    if seq[0] == seq[-1]:  # one sequence (batch 1): its k best of all rows x tokens, row-major
        best = top_k(cand.reshape(1, -1), min(k, cand.size))[0]  # (k,)
        sums = cand.ravel()[best]
        if sums[-1] == -np.inf:  # fewer than k candidates can be ranked
            best, sums = best[sums > -np.inf], sums[sums > -np.inf]
        parent, token = np.divmod(best, v)
    else:
        parent, token, sums = _best_of_groups(cand, seq, k)
    return _Candidates(parent, token, logp[parent, token], sums, seq[parent])


def _best_of_groups(cand: np.ndarray, seq: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """best_candidates for several sequences: (R, V) candidate sums -> (parent, token, sum), each (C,)."""
    r, v = cand.shape
    first = np.empty(r, dtype=bool)
    first[0], first[1:] = True, seq[1:] != seq[:-1]
    starts = np.flatnonzero(first)  # (G,) the first row of each sequence
    counts = np.diff(starts, append=r)  # (G,) its rows
    g, width = len(starts), int(counts.max())
    if width * g == r:  # every sequence has as many rows: the candidates are the grid already
        grid = cand.reshape(g, -1)
    else:  # each sequence's rows side by side, padded with -inf to the widest sequence's
        grid = np.full((g, width, v), -np.inf)
        group = np.repeat(np.arange(g), counts)
        grid[group, np.arange(r) - starts[group]] = cand
        grid = grid.reshape(g, -1)
    best = top_k(grid, min(k, width * v))  # (G, k): row-major flat indices, so ties go to the lower (row, token)
    sums = np.take_along_axis(grid, best, 1)
    found = np.nonzero(sums > -np.inf)  # by sequence, best first; -inf candidates dropped
    slot, token = np.divmod(best[found], v)
    return starts[found[0]] + slot, token, sums[found]


# top_k sorts whole rows up to SORT_COLUMNS wide or SORT_ELEMENTS in all; larger inputs are partitioned
# first. Measured (k 5): sorting wins on narrow rows and small arrays (5 x 75: 8 vs 43 us, numpy's call
# overhead), partitioning on large ones (320 x 75, a cmudict target vocabulary at batch 64: 355 vs 853 us).
# A single row (one sequence's candidates) is sorted whole up to SORT_ROW wide, else partitioned: on the
# (1, rows x 73) grids of the trained cmudict bundle's batch-1 beam 5 search (medians), sorting vs
# partitioning took 4.6 vs 5.6 us at 73 columns, 8.1 vs 6.2 at 146, 18.0 vs 6.4 at 365.
SORT_COLUMNS = 48
SORT_ELEMENTS = 3072
SORT_ROW = 128
# Up to this k, k passes of argmax (each the first of equal maxima, then struck out) beat partitioning,
# ties or not: (64, 365) k 5, a cmudict grid at batch 64: 36 vs 164 us (568 us with many ties); (64, 730)
# k 10: 104 vs 229 us.
ARGMAX_K = 16


def top_k(x: np.ndarray, k: int) -> np.ndarray:
    """(N, M) values, no NaN -> (N, k) column indices of each row's k largest, largest first; equal
    values in column order (the lowest column first)."""
    n, m = x.shape
    if k == 1:
        return x.argmax(axis=1)[:, None]  # the first of equal maxima
    if k >= m or m <= SORT_COLUMNS or (n * m <= SORT_ELEMENTS and (n > 1 or m <= SORT_ROW)):
        return np.argsort(-x, axis=1, kind="stable")[:, :k]
    if n == 1:  # one sequence's candidates (batch 1): sort only those not below the k-th largest
        return _top_k_row(x[0], k)[None]
    if k <= ARGMAX_K and (found := _top_k_argmax(x, k)) is not None:
        return found
    some = np.argpartition(x, m - k, axis=1)[:, m - k :]  # (N, k): the k largest in any order, any of equal ones
    vals = np.take_along_axis(x, some, 1)
    kth = vals.min(axis=1, keepdims=True)
    if not ((x >= kth).sum(axis=1) > k).any():  # no row left out a value equal to its k-th largest
        return np.take_along_axis(some, np.lexsort((some, -vals), axis=1), 1)  # by value, then column
    return _top_k_ties(x, k)


def _top_k_row(v: np.ndarray, k: int) -> np.ndarray:
    """top_k of one row (M,) -> (k,): the values not below its k-th largest, in column order, sorted stably."""
    kth = np.partition(v, len(v) - k)[len(v) - k]
    found = (v >= kth).nonzero()[0]  # (>= k,) more than k only where values equal to the k-th lie past the cut
    return found[np.argsort(-v[found], kind="stable")[:k]]


def _top_k_ties(x: np.ndarray, k: int) -> np.ndarray:
    """top_k for rows where values equal to the k-th largest lie on both sides of the cut."""
    n = x.shape[0]
    kth = -np.partition(-x, k - 1, axis=1)[:, k - 1 : k]  # (N, 1): the k-th largest value of each row
    above, tie = x > kth, x == kth
    take = above | (tie & (np.cumsum(tie, axis=1) <= k - above.sum(axis=1, keepdims=True)))  # k per row
    idx = np.nonzero(take)[1].reshape(n, k)  # in column order
    return np.take_along_axis(idx, np.argsort(-np.take_along_axis(x, idx, 1), axis=1, kind="stable"), 1)


def _top_k_argmax(x: np.ndarray, k: int) -> np.ndarray | None:
    """top_k by k argmax passes; None when some row has fewer than k values above -inf (a pass would
    then pick a struck-out column again)."""
    left, rows = x.copy(), np.arange(x.shape[0])
    found = np.empty((x.shape[0], k), dtype=np.int64)
    for j in range(k):
        found[:, j] = best = left.argmax(axis=1)  # the lowest column of equal maxima
        if j == k - 1 and (left[rows, best] == -np.inf).any():
            return None  # the picks are non-increasing: only the last can be an exhausted row's
        left[rows, best] = -np.inf
    return found
