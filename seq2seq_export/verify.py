"""Verification: prove a bundle's exported graphs decode exactly like its eager reference.

    report = verify("artifacts/bundle", samples=200, data="random")
    print(format_report(report)); report.raise_if_failed()

Per backend (onnx, torchscript) against the eager model rebuilt from the bundle's reference
checkpoint: graph IO and values at several batch sizes and lengths, teacher-forced decoding step by
step, free-running greedy decoding token by token, batch invariance, beam search n-best lists and their
batch invariance (verify_beam.py); plus the ONNX export lint.
Every check runs; failures are collected into the report, never raised half-way.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from .constants import (
    BEAM_SCORE_ATOL,
    DEFAULT_ATOL,
    DEFAULT_EXACT_FACTOR,
    DEFAULT_RTOL,
    MAX_BEAM_SIZE,
    VERIFY_BEAM_SIZE,
)
from .errors import BundleError, ConfigError, DataError, VerificationFailed, is_int
from .fsutil import Log
from .iospec import GRAPH_NAMES
from .manifest import Bundle, load_bundle
from .verify_beam import beam_checks
from .verify_checks import (
    CheckResult,
    Reference,
    check_batch_invariance,
    check_graphs,
    check_greedy,
    decode_mixed,
    fail_line,
)
from .verify_teacher import check_teacher_forced

DEFAULT_BATCH_SIZES = (1, 3, 16)  # graph-level probes run at each (the export traced batch 2)
RANDOM_LENGTHS = (1, 64)  # inclusive range of source lengths for data="random" (the export traced 5)
# Sizes of the full run; decode-level checks use every sample, graph-level probes the first ones.
FULL: dict[str, Any] = dict(decode_batch=64, graph_samples=24, invariance_samples=32)
# s2s-export's post-export check: every check, on few samples.
QUICK: dict[str, Any] = dict(samples=16, batch_sizes=(1, 5), decode_batch=8, graph_samples=8, invariance_samples=6)
# One compute thread per backend: verification makes thousands of tiny per-step calls, where torch's
# and onnxruntime's thread pools cost far more than they give (100x slower on a busy 2-core machine).
THREADS = 1


@dataclass(frozen=True)
class VerifyReport:
    bundle: str
    data: str  # "random", "toy", "cmudict" or "tsv:PATH"
    samples: int  # how many source sequences were decoded
    atol: float  # a difference passes when |got - eager| <= atol + rtol * |eager| ...
    rtol: float
    exact_factor: float  # ... or when |got - float64| <= atol + exact_factor * |eager - float64| (0: off)
    checks: tuple[CheckResult, ...]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if not c.passed)

    def summary(self) -> str:
        """One line: the verdict, and on failure the failed checks with the first one's detail."""
        bad = self.failures
        if not bad:
            return f"{self.bundle}: all {len(self.checks)} checks passed on {self.samples} samples ({self.data})"
        names = ", ".join(f"{c.name}[{c.backend}]" for c in bad)
        first = f"{bad[0].name}[{bad[0].backend}]: {bad[0].detail or bad[0].figure}"
        return f"{self.bundle}: {len(bad)} of {len(self.checks)} checks failed ({names}); {first}"

    def raise_if_failed(self) -> None:
        if not self.passed:
            raise VerificationFailed(self.summary())

    def to_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


# The table's legend: what each check compares, then what the figures mean; format_report prints the
# lines whose key occurs in the table (a check's name prefix, or a phrase of the figures).
LEGEND = {
    "io.": "io.GRAPH          output names, dtypes and shapes match manifest.json, at every probe",
    "values.": "values.GRAPH      each graph's outputs (logits, states) on the same inputs as eager",
    "teacher_forced": "teacher_forced    decoding steps fed eager's own tokens and states: every step's outputs",
    "greedy": "greedy            whole greedy decodes: samples with any token different from eager's",
    "batch_invariance": "batch_invariance  samples decoded alone vs in mixed-length batches: samples that differ",
    "beam": "beam              beam search with k hypotheses kept and returned (n-best k): samples whose n-best ids "
    f"differ from eager's or whose log-prob sums differ by more than {BEAM_SCORE_ATOL:g} per token",
    "beam_invariance": "beam_invariance   beam search, samples decoded alone vs in mixed-length batches: samples whose "
    "n-best lists differ",
    "/token": "score diff        largest |log-prob sum - the other's| / length over hypotheses with equal ids",
    "lint.": "lint.GRAPH        the ONNX export lint (onnx.checker, GRU linear_before_reset=1, no training-mode "
    "Dropout, dynamic axes)",
    "max abs": "max abs, rel      largest |exported - eager|, and largest |exported - eager| / |eager|",
    "of tol": "N of tol          largest difference as a share of the tolerance, atol + rtol x |eager| "
    "(atol {atol:g}, rtol {rtol:g}): 1 or less passes",
    "from float64": "from float64: A, eager B   the model run in float64 as the judge: the export passes when "
    "A <= atol + {factor:g} x B (as exact as float32 allows)",
}


def format_report(report: VerifyReport) -> str:
    """A table, one row per check, a legend, then one line per failure with where it failed."""
    rows = [("check", "backend", "result", "measured (see the legend below)")]
    rows += [(c.name, c.backend, "PASS" if c.passed else "FAIL", c.figure) for c in report.checks]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join(f"{v:<{w}}" for v, w in zip(r[:3], widths)) + "  " + r[3] for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    lines += ["", *_legend(report), ""]
    lines += [f"FAIL {c.name} [{c.backend}]: {c.detail}" for c in report.failures if c.detail]
    lines.append(("PASS " if report.passed else "FAIL ") + report.summary())
    return "\n".join(lines)


def _legend(report: VerifyReport) -> list[str]:
    """The LEGEND lines that explain something in this report's table."""
    text = [c.name for c in report.checks] + [c.figure for c in report.checks]
    used = [line for key, line in LEGEND.items() if any(key in t for t in text)]
    values = dict(atol=report.atol, rtol=report.rtol, factor=report.exact_factor)
    return ["Legend:"] + ["  " + line.format(**values) for line in used]


def sample_sources(bundle: Bundle, data: str, samples: int, seed: int) -> list[tuple[int, ...]]:
    """Source id sequences: random over the source vocabulary, or a dataset's test split encoded."""
    text = bundle.text
    if data == "random":
        rng = np.random.default_rng(seed)
        specials = {text.src.pad_id, text.src.sos_id, text.src.eos_id}
        pool = [i for i in range(len(text.src)) if i not in specials]
        lengths = rng.integers(RANDOM_LENGTHS[0], RANDOM_LENGTHS[1] + 1, samples)
        lengths[:2] = RANDOM_LENGTHS[: min(2, samples)]  # always include the extremes
        tail: tuple[int, ...] = (int(text.src.eos_id),) if text.src_append_eos and text.src.eos_id is not None else ()
        return [tuple(int(x) for x in rng.choice(pool, n)) + tail for n in lengths]
    from .data import load_dataset

    pairs = load_dataset(data, seed=seed).test
    if not pairs:
        raise DataError(f"dataset {data!r} has an empty test split: nothing to verify on")
    return [tuple(text.encode_source(src)) for src, _ in pairs[:samples]]


def _lint(bundle: Bundle) -> list[CheckResult]:
    """export/onnx.py's lint (the one every export passes) over both graphs, one row per graph."""
    from .export.onnx import check_onnx_bytes
    from .runtime.onnx_bytes import checked_onnx_bytes

    opset = bundle.manifest.get("producer", {}).get("opset")
    results = []
    for graph in GRAPH_NAMES:
        try:  # the checked bytes, with any listed external data inlined: what onnxruntime runs
            problems = check_onnx_bytes(checked_onnx_bytes(bundle, graph), bundle.graphs[graph], opset)
        except Exception as e:  # e.g. a file onnx cannot parse: a failed check like any other
            problems = [fail_line(e)]
        results.append(
            CheckResult(
                f"lint.{graph}",
                "onnx",
                not problems,
                float(len(problems)),
                f"{len(problems)} problems",
                "; ".join(problems),
            )
        )
    return results


def _backend_names(bundle: Bundle, backends: Sequence[str] | None) -> list[str]:
    if backends is None:
        names = list(bundle.formats)
    else:
        names = list(dict.fromkeys(backends))
        unknown = [n for n in names if n not in bundle.formats]
        if unknown:
            has = ", ".join(bundle.formats) or "no formats"
            raise ConfigError(f"{bundle.root}: cannot verify backend(s) {', '.join(unknown)}: the bundle has {has}")
    if not names:
        raise BundleError(f"{bundle.root}: bundle has no exported graphs to verify")
    return names


def verify(
    bundle_path: str | os.PathLike,
    *,
    samples: int = 200,
    data: str = "random",
    atol: float = DEFAULT_ATOL,
    rtol: float = DEFAULT_RTOL,
    exact_factor: float = DEFAULT_EXACT_FACTOR,
    backends: Sequence[str] | None = None,
    batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
    seed: int = 0,
    beam_size: int = VERIFY_BEAM_SIZE,
    quick: bool = False,
    expect_digest: str | None = None,
    progress: Log | None = None,
) -> VerifyReport:
    """Run every check on every backend; beam_size is the beam checks' beam size and n-best;
    quick=True is the small post-export run; expect_digest
    ("sha256:...") refuses a bundle whose digest differs; progress, if given, gets one line as each
    check starts."""
    if not is_int(samples):
        raise ConfigError(f"samples must be a positive integer, got {samples!r}")
    if not 0 < atol < math.inf or not 0 <= rtol < math.inf:  # an infinite tolerance would pass every value
        raise ConfigError(f"atol must be positive and rtol non-negative, both finite, got atol={atol!r}, rtol={rtol!r}")
    if not 0 <= exact_factor < math.inf:
        raise ConfigError(
            f"exact_factor must be finite and non-negative (0 turns the float64 budget off), got {exact_factor!r}"
        )
    if not is_int(seed, 0):
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    if not is_int(beam_size) or beam_size > MAX_BEAM_SIZE:
        raise ConfigError(f"beam_size must be an integer in [1, {MAX_BEAM_SIZE}], got {beam_size!r}")
    if not batch_sizes or not all(is_int(b) for b in batch_sizes):
        raise ConfigError(f"batch sizes must be positive integers, got {list(batch_sizes)!r}")
    bundle = load_bundle(bundle_path, expect_digest=expect_digest)
    if bundle.reference is None:
        raise BundleError(
            f"{bundle.root}: bundle has no reference checkpoint; re-export it with the reference to verify it"
        )
    names = _backend_names(bundle, backends)
    sizes = dict(FULL, batch_sizes=tuple(sorted(set(batch_sizes))))
    if quick:
        sizes = dict(QUICK)
        samples = min(samples, sizes.pop("samples"))
    seqs = tuple(sample_sources(bundle, data, samples, seed))
    settings = dict(
        atol=float(atol), rtol=float(rtol), exact_factor=float(exact_factor), seed=seed, beam_size=beam_size, **sizes
    )
    import torch

    torch_threads = torch.get_num_threads()
    try:
        checks = _run_checks(bundle, seqs, settings, names, progress or (lambda _: None))
    finally:
        torch.set_num_threads(torch_threads)  # open_backend(threads=...) set it process-wide
    return VerifyReport(str(bundle.root), data, len(seqs), float(atol), float(rtol), float(exact_factor), tuple(checks))


def _run_checks(
    bundle: Bundle, seqs: tuple[tuple[int, ...], ...], settings: dict[str, Any], names: list[str], note: Log
) -> list[CheckResult]:
    """Open the backends on the bundle, decode the reference tokens with eager, run every check."""
    from .runtime.eager import EagerBackend, Float64Backend
    from .runtime.translator import open_backend

    note(f"decoding {len(seqs)} samples with the eager reference")
    eager = open_backend(bundle, "eager", threads=THREADS)
    assert isinstance(eager, EagerBackend)
    ref = Reference(bundle, eager, Float64Backend(eager), seqs, (), **settings)
    ref = replace(ref, tokens=tuple(map(tuple, decode_mixed(ref, eager, seqs, ref.decode_batch))))

    checks: list[CheckResult] = []
    opened = {}
    for name in names:
        note(f"loading {name}")
        try:
            opened[name] = open_backend(bundle, name, threads=THREADS)
        except Exception as e:  # an unloadable graph is a failed verification, reported with the rest
            checks.append(CheckResult("load", name, False, 1.0, "cannot load", fail_line(e)))
    note(f"io, values: graph outputs at batch sizes {', '.join(map(str, ref.batch_sizes))} ({', '.join(opened)})")
    checks += check_graphs(ref, opened)
    note(f"teacher_forced: every decoding step ({', '.join(opened)})")
    checks += check_teacher_forced(ref, opened)
    for name, backend in opened.items():
        note(f"greedy [{name}]: {len(seqs)} samples")
        try:
            tokens = decode_mixed(ref, backend, seqs, ref.decode_batch)
        except Exception as e:
            checks.append(CheckResult("greedy", name, False, float(len(seqs)), "decode failed", fail_line(e)))
            continue
        checks.append(check_greedy(ref, name, tokens))
        note(f"batch_invariance [{name}]")
        checks.append(check_batch_invariance(ref, name, backend, tokens))
    checks += beam_checks(ref, opened, note)
    if "onnx" in names:
        note("lint: the ONNX export lint")
        checks += _lint(bundle)
    order = {n: i for i, n in enumerate(names)}
    checks.sort(key=lambda c: order.get(c.backend, len(order)))  # stable: group rows by backend
    return checks


def export_check(bundle_dir: str | os.PathLike, progress: Log | None = None) -> None:
    """The hook s2s-export gives export_bundle: a quick verification of the finished temporary bundle.

    Raising makes export_bundle discard the bundle, so graphs that fail are never left behind.
    """
    quiet_note = (lambda note: progress(f"quick verification: {note}")) if progress else None
    report = verify(bundle_dir, quick=True, progress=quiet_note)
    if not report.passed:
        raise VerificationFailed(f"exported graphs fail verification, no bundle written: {report.summary()}")
