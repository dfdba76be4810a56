"""The verifier's checks: each runs exported backends beside the eager reference and returns CheckResults.

Every backend is driven through its raw `run_graph` (graph and teacher-forced checks) or through the
shared greedy loop (free-running checks), exactly as a deployed driver would run it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from .constants import VERIFY_BEAM_SIZE
from .iospec import BATCH, DECODER_STEP, ENCODER, LOGITS, SRC_LEN, SRC_LENGTHS, SRC_TOKENS, GraphSpec
from .manifest import Bundle
from .runtime.core import (
    Backend,
    Carry,
    DecodeOptions,
    decode_in_batches,
    pad_batch,
    teacher_forced_steps,
)
from .runtime.greedy import greedy_decode

Seqs = Sequence[Sequence[int]]


def always(feeds: dict[str, np.ndarray]) -> Callable[[str], dict[str, np.ndarray]]:
    """The feeds callback of run_all when every backend gets the same feeds."""
    return lambda _: feeds


@dataclass(frozen=True)
class CheckResult:
    name: str  # e.g. "values.decoder_step", "greedy"
    backend: str  # "onnx" or "torchscript"
    passed: bool
    value: float  # the measured figure: a max difference or a count of mismatches/problems
    figure: str  # `value` in words, for the table
    detail: str = ""  # on failure: where and how it failed
    per_step: tuple[float, ...] = ()  # teacher-forced: max difference at every decoder step


@dataclass(frozen=True)
class Reference:
    """What every check compares against: the bundle, its eager backend and its greedy decodes."""

    bundle: Bundle
    eager: Backend  # EagerBackend of the bundle's reference checkpoint
    exact: Backend  # the same model in float64: the exact values both float32 implementations approximate
    seqs: tuple[tuple[int, ...], ...]  # source ids, one per sample
    tokens: tuple[tuple[int, ...], ...]  # the eager greedy decode of each sample (no <sos>/<eos>)
    batch_sizes: tuple[int, ...]  # graph-level probes run at each
    decode_batch: int  # decodes run in input order, this many samples per batch (so lengths mix)
    atol: float  # a difference passes when |got - eager| <= atol + rtol * |eager| ...
    rtol: float
    exact_factor: float  # ... or, per output over a check, when |got - exact| <= atol + exact_factor * |eager - exact|
    graph_samples: int  # samples used by graph-level probes (their first ones)
    invariance_samples: int  # samples decoded again one by one for batch invariance
    seed: int
    beam_size: int = VERIFY_BEAM_SIZE  # the beam checks' beam size and n-best (verify_beam.py)

    @cached_property
    def options(self) -> DecodeOptions:
        """The bundle's decode options, as every decode of the verifier uses them."""
        return DecodeOptions.from_bundle(self.bundle)


def decode_mixed(ref: Reference, backend: Backend, seqs: Seqs, batch_size: int) -> list[list[int]]:
    """Greedy decodes through the shared loop, in input order (so batches mix lengths)."""
    return decode_in_batches(backend, seqs, ref.options, batch_size=batch_size, strategy=greedy_decode, by_length=False)


def fail_line(err: BaseException) -> str:
    """An exception raised by a backend, as one line for the report."""
    return f"{type(err).__name__}: {' '.join(str(err).split())}"[:300]


def _compare(got: np.ndarray, want: np.ndarray, ref: Any, axis: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per batch row (axis `axis`), each (B,): max abs diff; max rel diff |d| / (|want| + atol) (finite
    at 0); and the share of the tolerance used, max |d| / (atol + rtol * |want|), which passes at <= 1."""
    w = np.moveaxis(want.astype(np.float64), axis, 0).reshape(want.shape[axis], -1)
    d = np.abs(np.moveaxis(got.astype(np.float64), axis, 0).reshape(w.shape) - w)
    if d.shape[1] == 0:
        return np.zeros(len(d)), np.zeros(len(d)), np.zeros(len(d))
    return d.max(1), (d / (np.abs(w) + ref.atol)).max(1), (d / (ref.atol + ref.rtol * np.abs(w))).max(1)


class Budget:
    """One float output over a whole check: its strict comparison with eager, and the float64 budget.

    A trained recurrence amplifies float32 rounding (on a random length-64 probe of the cmudict
    preset, eager's own states end 1e-4 away from exact arithmetic), and onnxruntime's kernels round
    differently from torch's (its Tanh is 10x, its GRU 2-3x further from exact), so two correct
    float32 implementations can differ by more than atol. Such an output still passes when the
    export's distance to the float64 model, over the whole check, is within atol + exact_factor x
    eager's own distance: as exact as float32 allows. A real defect (a flipped GRU attribute, a 1e-3
    weight error, dropout left on) misses both by orders of magnitude.
    """

    def __init__(self) -> None:
        self.abs = self.rel = self.used = self.got_err = self.eager_err = 0.0
        self.first = ""  # where the strict comparison first failed

    def add(
        self,
        ref: Any,
        got: np.ndarray,
        want: np.ndarray,
        exact: np.ndarray,
        axis: int,
        rows: np.ndarray,
        where: Callable[[int, float], str],
    ) -> float:
        """Fold in one call's output; `rows` (B,) bool marks the batch rows that count. Returns this
        call's max abs difference from eager over those rows."""
        a, r, used = (np.where(rows, x, 0.0) for x in _compare(got, want, ref, axis))
        self.abs, self.rel, self.used = max(self.abs, a.max()), max(self.rel, r.max()), max(self.used, used.max())
        self.got_err = max(self.got_err, np.where(rows, _compare(got, exact, ref, axis)[0], 0.0).max())
        self.eager_err = max(self.eager_err, np.where(rows, _compare(want, exact, ref, axis)[0], 0.0).max())
        if not self.first and used.max() > 1:
            row = int(np.argmax(used > 1))
            self.first = where(row, float(a[row]))
        return float(a.max())

    def passed(self, ref: Any) -> bool:
        if self.used <= 1:
            return True
        return ref.exact_factor > 0 and self.got_err <= ref.atol + ref.exact_factor * self.eager_err

    def failure(self, ref: Any, name: str) -> str:
        """'' when passed; else where the strict comparison failed and how the float64 budget was missed."""
        if self.passed(ref):
            return ""
        if ref.exact_factor <= 0:
            return f"{name}: {self.first}"
        return (
            f"{name}: {self.first}; {self.got_err:.1e} from float64 exceeds atol + {ref.exact_factor:g} x "
            f"eager's {self.eager_err:.1e}"
        )


def budget_failures(budgets: dict[str, Budget], ref: Any) -> list[str]:
    """One line per output whose budget failed."""
    return [f for n, b in budgets.items() if (f := b.failure(ref, n))]


def budget_figure(budgets: dict[str, Budget]) -> str:
    """Max differences vs eager over all outputs, plus the float64 distances when the budget was used."""
    b = list(budgets.values())
    text = f"max abs {max((x.abs for x in b), default=0.0):.1e}, rel {max((x.rel for x in b), default=0.0):.1e}"
    over = [x for x in b if x.used > 1]
    if not over:
        return f"{text}, {max((x.used for x in b), default=0.0):.2g} of tol"
    worst = max(over, key=lambda x: x.got_err / max(x.eager_err, 1e-30))
    return f"{text}; from float64: {worst.got_err:.1e}, eager {worst.eager_err:.1e}"


def io_problems(spec: GraphSpec, out: dict[str, np.ndarray], dims: dict[str, int]) -> list[str]:
    """Output names, dtypes and shapes of one graph call against the manifest's IO signature."""
    problems = []
    if sorted(out) != sorted(spec.output_names):
        problems.append(f"outputs {sorted(out)} but the manifest says {sorted(spec.output_names)}")
    for t in spec.outputs:
        if t.name not in out:
            continue
        want = tuple(dims[d] if isinstance(d, str) else d for d in t.shape)
        if str(out[t.name].dtype) != t.dtype:
            problems.append(f"{t.name} dtype {out[t.name].dtype}, manifest {t.dtype}")
        if tuple(out[t.name].shape) != want:
            problems.append(f"{t.name} shape {tuple(out[t.name].shape)}, expected {want}")
    return problems


class _Tally:
    """Running figures of one (backend, graph) pair over all graph-level probes."""

    def __init__(self) -> None:
        self.budgets: dict[str, Budget] = {}  # per float output
        self.mismatches, self.calls = 0, 0  # integer outputs (next_tokens) must be equal
        self.io: list[str] = []

    def add(self, ref: Reference, spec: GraphSpec, got: dict, want: dict, exact: dict, dims: dict) -> None:
        self.calls += 1
        self.io += [f"batch {dims[BATCH]}: {p}" for p in io_problems(spec, got, dims)]
        for t in spec.outputs:
            g, w = got.get(t.name), want[t.name]
            if g is None or g.shape != w.shape:
                continue
            if t.dtype != "float32":
                self.mismatches += int((g != w).sum())
                continue
            axis = t.shape.index(BATCH)
            at = f"batch {dims[BATCH]}, length {dims[SRC_LEN]}"

            def where(_: int, diff: float, at: str = at) -> str:
                return f"outside tolerance at {at} (abs diff {diff:.1e})"

            rows = np.ones(w.shape[axis], dtype=bool)
            self.budgets.setdefault(t.name, Budget()).add(ref, g, w, exact[t.name], axis, rows, where)

    def failures(self, ref: Reference) -> list[str]:
        return budget_failures(self.budgets, ref)


def _probe_batches(ref: Reference) -> list[list[tuple[int, ...]]]:
    """Graph-level inputs: the first samples plus lengths 1, 2 and 64 (never the export's 5), at every batch size."""
    rng = np.random.default_rng(ref.seed + 1)
    pool = [i for i in range(len(ref.bundle.text.src)) if i not in (ref.bundle.text.src.pad_id, ref.options.start_id)]
    extra = [tuple(int(x) for x in rng.choice(pool, n)) for n in (1, 2, 64)]
    seqs = list(ref.seqs[: ref.graph_samples]) + extra
    return [seqs[i : i + b] for b in ref.batch_sizes for i in range(0, len(seqs), b)]


def run_all(
    live: dict[str, Backend], graph: str, feeds: Callable[[str], dict], errors: dict[str, str], where: str
) -> dict:
    """Run `graph` on every live backend; one that raises is recorded in `errors` and leaves `live`."""
    outs = {}
    for n, b in list(live.items()):
        try:
            outs[n] = b.run_graph(graph, feeds(n))
        except Exception as e:  # a graph that cannot run this input fails its checks, not the verifier
            errors[n] = f"{where}: {fail_line(e)}"
            del live[n]
    return outs


def check_graphs(ref: Reference, backends: dict[str, Backend]) -> list[CheckResult]:
    """io.<graph> and values.<graph> per backend: every output of both graphs vs eager, probe by probe."""
    rng = np.random.default_rng(ref.seed + 2)
    carry = Carry.of(ref.eager)
    tallies = {(n, g): _Tally() for n in backends for g in ref.bundle.graphs}
    errors: dict[str, dict[str, str]] = {g: {} for g in ref.bundle.graphs}  # graph -> backend -> first error
    live = {g: dict(backends) for g in ref.bundle.graphs}
    for batch in _probe_batches(ref):
        src, lengths = pad_batch(batch, ref.options.pad_id)
        dims = {BATCH: len(batch), SRC_LEN: src.shape[1]}
        enc = {SRC_TOKENS: src, SRC_LENGTHS: lengths}
        want_enc = ref.eager.run_graph(ENCODER, enc)
        dec = carry.feeds(
            rng.integers(0, ref.bundle.config.tgt_vocab_size, len(batch), dtype=np.int64), carry.first(want_enc)
        )
        for graph, feeds, want in (
            (ENCODER, enc, want_enc),
            (DECODER_STEP, dec, ref.eager.run_graph(DECODER_STEP, dec)),
        ):
            where = f"batch {len(batch)}, length {src.shape[1]}"
            exact = ref.exact.run_graph(graph, feeds)
            for n, got in run_all(live[graph], graph, always(feeds), errors[graph], where).items():
                tallies[n, graph].add(ref, ref.bundle.graphs[graph], got, want, exact, dims)
    results = []
    for (name, graph), t in tallies.items():
        error = errors[graph].get(name, "")
        io_bad = t.io + ([error] if error else [])
        figure = f"{len(io_bad)} problems in {t.calls} calls"
        results.append(CheckResult(f"io.{graph}", name, not io_bad, float(len(io_bad)), figure, "; ".join(io_bad[:3])))
        over = t.failures(ref)
        ok = not (error or over or t.mismatches)
        detail = error or "; ".join(over + ([f"{t.mismatches} integer outputs differ"] if t.mismatches else []))
        worst = max((b.abs for b in t.budgets.values()), default=0.0)
        results.append(CheckResult(f"values.{graph}", name, ok, worst, budget_figure(t.budgets), detail))
    return results


def eager_margin(ref: Reference, sample: int, step: int) -> float:
    """Top-1 minus top-2 eager logit at `step` of `sample`'s reference decode (how close to a tie)."""
    prev = np.array([((ref.options.start_id,) + ref.tokens[sample])[: step + 1]], dtype=np.int64)  # (1, T)
    *_, (_, _, out) = teacher_forced_steps(ref.eager, [ref.seqs[sample]], prev, pad_id=ref.options.pad_id)
    top = np.sort(out[LOGITS][0].astype(np.float64))
    return float(top[-1] - top[-2]) if top.size > 1 else float("inf")


def first_divergence(want: Seqs, got: Seqs, end_id: int) -> tuple[int, int, int, int] | None:
    """(sample, step, wanted token, got token) of the first differing decode; <eos> marks an early end."""
    for i, (a, b) in enumerate(zip(want, got)):
        if list(a) != list(b):
            step = next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))

            def tok(s: Sequence[int], step: int = step) -> int:
                return int(s[step]) if step < len(s) else end_id

            return i, step, tok(a), tok(b)
    return None


def check_greedy(ref: Reference, name: str, tokens: Seqs) -> CheckResult:
    """Free-running greedy decodes (mixed-length batches) must equal the eager ones token for token."""
    bad = sum(list(a) != list(b) for a, b in zip(ref.tokens, tokens))
    div = first_divergence(ref.tokens, tokens, ref.options.end_id)
    detail = ""
    if div:
        i, step, want, got = div
        detail = f"sample {i} diverges at step {step}: eager {want} vs {name} {got}, eager logit margin {eager_margin(ref, i, step):.2e}"
    return CheckResult("greedy", name, bad == 0, float(bad), f"{bad}/{len(tokens)} samples differ", detail)


def check_batch_invariance(ref: Reference, name: str, backend: Backend, batched: Seqs) -> CheckResult:
    """The first samples decoded alone (batch 1) must give the tokens they got in mixed batches."""
    n = min(ref.invariance_samples, len(batched))
    alone = decode_mixed(ref, backend, ref.seqs[:n], 1)
    bad = sum(list(a) != list(b) for a, b in zip(alone, batched[:n]))
    div = first_divergence(alone, batched[:n], ref.options.end_id)
    detail = f"sample {div[0]} step {div[1]}: batch 1 gives {div[2]}, mixed batch gives {div[3]}" if div else ""
    return CheckResult("batch_invariance", name, bad == 0, float(bad), f"{bad}/{n} samples differ", detail)
