"""The verifier's beam checks: each backend's beam search n-best lists against eager's, and their batch invariance.

Beam search (runtime/beam.py) runs with beam size k and n-best k (VERIFY_BEAM_SIZE, 4 by default), the
bundle's max_len and length penalty 1, through the shared decoding core in mixed-length batches,
exactly as the Translator runs it. A sample passes when its n-best list holds the same hypotheses
(token ids) in the same order as eager's, and each hypothesis' log-prob sum is within
BEAM_SCORE_ATOL per token of eager's (with penalty 1 the score is the mean log-prob per token, so
that bounds the score itself). Two hypotheses whose scores are within BEAM_SCORE_ATOL of each other
may come in either order (a float tie: 1 of 300 cmudict words on a 2-layer model had two within 1e-7).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from .constants import BEAM_SCORE_ATOL
from .fsutil import Log
from .runtime.beam import beam_search
from .runtime.core import Backend, DecodeOptions, Scored, decode_in_batches
from .verify_checks import CheckResult, Reference, Seqs, fail_line

NBest = Sequence[Scored]


def beam_options(ref: Reference) -> DecodeOptions:
    """The bundle's decode options with beam size and n-best ref.beam_size, length penalty 1."""
    return replace(ref.options, beam_size=ref.beam_size, num_hypotheses=ref.beam_size, length_penalty=1.0)


def decode_beam(ref: Reference, backend: Backend, seqs: Seqs, batch_size: int) -> list[list[Scored]]:
    """n-best lists through the shared core, in input order (so batches mix lengths)."""
    return decode_in_batches(
        backend, seqs, beam_options(ref), batch_size=batch_size, strategy=beam_search, by_length=False
    )


def score_gap(a: Scored, b: Scored) -> float:
    """|difference of the two hypotheses' log-prob sums| per token (their lengths are equal when their ids are)."""
    return abs(sum(a.token_scores) - sum(b.token_scores)) / max(1, len(a.token_scores), len(b.token_scores))


def nbest_gap(want: NBest, got: NBest, atol: float = BEAM_SCORE_ATOL) -> tuple[int | None, float]:
    """(rank of the first hypothesis where the lists disagree, None if none does; the largest score_gap
    of the hypotheses both hold). They agree at a rank when they hold the same ids there, or two
    hypotheses both lists hold whose scores are within atol: a float tie, which either may rank first."""
    theirs, mine = {h.ids: h for h in got}, {h.ids for h in want}
    gap = max((score_gap(a, theirs[a.ids]) for a in want if a.ids in theirs), default=0.0)
    for rank, (a, b) in enumerate(zip(want, got)):
        if a.ids != b.ids and not (a.ids in theirs and b.ids in mine and abs(a.score - b.score) <= atol):
            return rank, gap
    return (None if len(want) == len(got) else min(len(want), len(got))), gap


def same_nbest(want: NBest, got: NBest, atol: float = BEAM_SCORE_ATOL) -> bool:
    """The same hypotheses in the same order, every score within atol per token."""
    rank, gap = nbest_gap(want, got)
    return rank is None and gap <= atol


def _hyp(h: NBest, rank: int) -> str:
    if rank >= len(h):
        return "nothing"
    return f"{list(h[rank].ids)} (score {h[rank].score:.6f})"


def compare_nbests(
    want: Sequence[NBest],
    got: Sequence[NBest],
    labels: tuple[str, str],
    name: str,
    backend: str,
    figure_prefix: str = "",
) -> CheckResult:
    """One CheckResult: samples whose n-best lists differ (ids, or a score beyond BEAM_SCORE_ATOL per
    token), the largest score gap of equal hypotheses, and where the first difference is."""
    bad, worst, detail = 0, 0.0, ""
    for i, (a, b) in enumerate(zip(want, got)):
        rank, gap = nbest_gap(a, b)
        worst = max(worst, gap)
        if rank is None and gap <= BEAM_SCORE_ATOL:
            continue
        bad += 1
        if detail:
            continue
        if rank is None:
            detail = f"sample {i}: scores differ by {gap:.1e} per token (tolerance {BEAM_SCORE_ATOL:g})"
        else:
            detail = f"sample {i} hypothesis {rank}: {labels[0]} {_hyp(a, rank)} vs {labels[1]} {_hyp(b, rank)}"
    figure = f"{figure_prefix}{bad}/{len(got)} samples differ, score diff {worst:.1e}/token"
    return CheckResult(name, backend, bad == 0, float(bad), figure, detail)


def beam_checks(ref: Reference, backends: dict[str, Backend], note: Log) -> list[CheckResult]:
    """beam and beam_invariance per backend: n-best lists of every sample vs eager's; the first
    invariance_samples decoded alone vs in mixed batches."""
    k = ref.beam_size
    note(f"beam: eager beam search (k {k}, n-best {k}) on {len(ref.seqs)} samples")
    want = decode_beam(ref, ref.eager, ref.seqs, ref.decode_batch)
    results = []
    for name, backend in backends.items():
        note(f"beam [{name}]")
        try:
            got = decode_beam(ref, backend, ref.seqs, ref.decode_batch)
        except Exception as e:  # a backend that cannot run a beam batch fails the check, not the verifier
            results.append(CheckResult("beam", name, False, float(len(ref.seqs)), "decode failed", fail_line(e)))
            continue
        results.append(compare_nbests(want, got, ("eager", name), "beam", name, f"k {k}: "))
        note(f"beam_invariance [{name}]")
        n = min(ref.invariance_samples, len(got))
        alone = decode_beam(ref, backend, ref.seqs[:n], 1)
        results.append(compare_nbests(alone, got[:n], ("batch 1", "mixed batch"), "beam_invariance", name))
    return results
