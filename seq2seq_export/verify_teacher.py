"""The teacher-forced check: every backend's decoder steps fed the eager model's own tokens, compared
step by step with eager (and with the model in float64) on every float output."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .iospec import BATCH, DECODER_STEP, ENCODER, GRAPH_NAMES, GraphSpec
from .runtime.core import Backend, batch_indices, teacher_forced_steps
from .verify_checks import Budget, CheckResult, Reference, always, budget_failures, budget_figure, run_all


def _teacher_inputs(ref: Reference, rows: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """prev tokens (B, T) = <sos> + eager tokens, padded with <eos>; alive (B, T) marks real steps."""
    toks = [ref.tokens[i] for i in rows]
    steps = max(len(t) for t in toks) + 1  # every decoded token plus the step that emits <eos>
    prev = np.full((len(toks), steps), ref.options.end_id, dtype=np.int64)
    alive = np.zeros((len(toks), steps), dtype=bool)
    for r, t in enumerate(toks):
        prev[r, : len(t) + 1] = (ref.options.start_id,) + t
        alive[r, : len(t) + 1] = True
    return prev, alive


class _StepTally:
    """Running figures of one backend over the teacher-forced steps of every batch."""

    def __init__(self) -> None:
        self.per_step: list[float] = []  # max abs diff at each decoder step
        self.budgets: dict[str, Budget] = {}  # per float output

    def add(
        self,
        ref: Reference,
        got: dict,
        want: dict,
        exact: dict,
        compared: list,
        alive: np.ndarray,
        rows: Sequence[int],
        step: int | None,
    ) -> None:
        """Compare outputs (name, batch axis) in `compared` on the alive rows; step None is the encoder."""
        at = ENCODER if step is None else f"step {step}"
        where = lambda r, diff: f"first outside tolerance: sample {rows[r]}, {at} (abs diff {diff:.1e})"  # noqa: E731
        diff = max(
            self.budgets.setdefault(k, Budget()).add(ref, got[k], want[k], exact[k], axis, alive, where)
            for k, axis in compared
        )
        if step is not None:
            self.per_step += [0.0] * (step + 1 - len(self.per_step))
            self.per_step[step] = max(self.per_step[step], diff)

    def failures(self, ref: Reference) -> list[str]:
        return budget_failures(self.budgets, ref)


def _float_outputs(spec: GraphSpec) -> list[tuple[str, int]]:
    """(name, batch axis) of every float output: states, logits, memory, attention."""
    return [(t.name, t.shape.index(BATCH)) for t in spec.outputs if t.dtype == "float32"]


def check_teacher_forced(ref: Reference, backends: dict[str, Backend]) -> list[CheckResult]:
    """Along every eager decode, give each backend the eager step's inputs (token, state, memory)
    and compare every float output of its encoder and of every step (logits, state, attention).
    Shared inputs keep float32 drift from compounding through the recurrence; the greedy check
    covers each backend's own trajectory."""
    enc_compared, step_compared = (_float_outputs(ref.bundle.graphs[g]) for g in GRAPH_NAMES)
    tallies = {n: _StepTally() for n in backends}
    errors: dict[str, str] = {}
    for rows in batch_indices(ref.seqs, ref.decode_batch, by_length=False):
        prev, alive = _teacher_inputs(ref, rows)
        live = {n: b for n, b in backends.items() if n not in errors}
        for step, feeds, want in teacher_forced_steps(
            ref.eager, [ref.seqs[i] for i in rows], prev, pad_id=ref.options.pad_id
        ):
            graph, at = (ENCODER, ENCODER) if step is None else (DECODER_STEP, f"step {step}")
            compared, mask = (
                (enc_compared, np.ones(len(rows), dtype=bool)) if step is None else (step_compared, alive[:, step])
            )
            exact = ref.exact.run_graph(graph, feeds)
            for n, got in run_all(live, graph, always(feeds), errors, at).items():
                tallies[n].add(ref, got, want, exact, compared, mask, rows, step)
    results = []
    for n, t in tallies.items():
        detail = errors.get(n) or "; ".join(t.failures(ref))
        worst = max((b.abs for b in t.budgets.values()), default=0.0)
        figure = f"{budget_figure(t.budgets)} over {len(t.per_step)} steps"
        results.append(CheckResult("teacher_forced", n, not detail, worst, figure, detail, tuple(t.per_step)))
    return results
