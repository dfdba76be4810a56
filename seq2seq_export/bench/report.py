"""A benchmark's result: frozen records, their JSON form and the table printed on stdout."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from ..constants import BEAM_SCORE_ATOL
from ..errors import VerificationFailed


@dataclass(frozen=True)
class Row:
    """One backend at one batch size; every figure is the median over the timed repeats."""

    backend: str
    batch_size: int
    seq_per_s: float  # sequences (words) translated per second, load excluded
    tok_per_s: float  # decoder rows stepped per second: greedy's generated tokens including each row's <eos>; beam's hypotheses
    latency_p50_ms: float  # per sequence at batch size 1, per batch otherwise
    latency_p90_ms: float
    gflops: float  # achieved: the workload's GEMM FLOPs / wall time
    limit_fraction: float  # gflops / the measured GEMM rate
    limit_fraction_cpu: float  # the same per second of CPU time this process got (contention removed)
    vs_eager: float | None  # throughput / eager's at this batch size, median of same-repeat pairs
    vs_eager_b1: float | None  # throughput / eager's at batch size 1, median of same-repeat pairs
    cpu_share: float  # process CPU time / wall time (1 thread: < 1 means other processes took the core)
    wall_s: tuple[float, ...]  # wall time of every timed repeat


@dataclass(frozen=True)
class LoadRow:
    """Cost of opening one backend, measured in a fresh process."""

    backend: str
    load_s: float  # load_bundle + open_backend, lazy library imports included
    rss_loaded_mb: float  # peak resident memory once loaded
    peak_rss_mb: float  # peak resident memory after decoding one batch of the largest batch size
    torch_imported: bool  # whether the process had to import torch


@dataclass(frozen=True)
class TokenCheck:
    """Every timed run compared with the first backend's output at the same batch size (beam search:
    n-best lists with the same ids in the same order, scores within BEAM_SCORE_ATOL per token)."""

    passed: bool
    runs_compared: int
    mismatches: tuple[str, ...]  # "onnx batch 16 repeat 2: 3 of 500 sequences differ (first: #17)"
    same_across_batch_sizes: bool  # informative: batched float math may legitimately differ


@dataclass(frozen=True)
class BenchResult:
    config: dict
    machine: dict
    gemm: dict  # {"gflops": the compute limit, "per_size_gflops", "step_gemm_gflops", "threads", "device", "trials"}
    workload: dict  # samples, data, source tokens, decoder steps, GEMM FLOPs per pass
    rows: tuple[Row, ...]
    loads: tuple[LoadRow, ...]
    tokens: TokenCheck

    def row(self, backend: str, batch_size: int) -> Row:
        return next(r for r in self.rows if r.backend == backend and r.batch_size == batch_size)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    def raise_on_mismatch(self) -> None:
        if not self.tokens.passed:
            first = self.tokens.mismatches[0]
            raise VerificationFailed(
                f"backends produced different tokens in {len(self.tokens.mismatches)} run(s), e.g. {first}; "
                "the timings compare different work"
            )


def _ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def format_table(result: BenchResult) -> str:
    m, g, w = result.machine, result.gemm, result.workload
    lines = [
        f"CPU: {m['cpu_model']} ({m['usable_cores']} usable cores), threads: {m['threads']}, "
        f"torch {m['libraries']['torch']}, onnxruntime {m['libraries']['onnxruntime']}",
        f"GEMM limit: {g['gflops']:.1f} GFLOP/s (best square fp32 matmul of sizes {', '.join(g['per_size_gflops'])}, "
        f"{g['threads']} thread(s), {g['device']})",
        "Recurrent step GEMM (B x H) @ (H x 3H) alone: "
        + ", ".join(f"B={b}: {r:.1f}" for b, r in g["step_gemm_gflops"].items())
        + " GFLOP/s",
        f"Workload: {w['samples']} sequences ({w['data']}), {w.get('search', 'greedy')}, {w['src_tokens']} source "
        f"tokens, {w['decoder_steps']} decoder rows stepped, {w['mflop_per_seq']:.2f} MFLOP/sequence; median of {result.config['repeat']} interleaved repeats",
        "",
        f"{'backend':<12}{'batch':>6}{'seq/s':>10}{'tok/s':>10}{'p50 ms':>9}{'p90 ms':>9}"
        f"{'GFLOP/s':>9}{'% limit':>9}{'vs eager':>10}{'vs eager@1':>12}{'cpu%':>6}{'% limit/cpu':>12}",
    ]
    for r in result.rows:
        lines.append(
            f"{r.backend:<12}{r.batch_size:>6}{r.seq_per_s:>10.1f}{r.tok_per_s:>10.0f}{r.latency_p50_ms:>9.3f}"
            f"{r.latency_p90_ms:>9.3f}{r.gflops:>9.2f}{100 * r.limit_fraction:>8.1f}%{_ratio(r.vs_eager):>10}"
            f"{_ratio(r.vs_eager_b1):>12}{100 * r.cpu_share:>6.0f}{100 * r.limit_fraction_cpu:>11.1f}%"
        )
    lines.append("(latency: per sequence at batch 1, per batch otherwise; cpu%: CPU time / wall time of the runs; "
        "% limit/cpu: % limit per second of CPU time the runs got)")
    if result.loads:
        lines += ["", f"{'backend':<12}{'load s':>8}{'RSS loaded MB':>15}{'peak RSS MB':>13}  torch imported"]
        for lr in result.loads:
            lines.append(
                f"{lr.backend:<12}{lr.load_s:>8.2f}{lr.rss_loaded_mb:>15.0f}{lr.peak_rss_mb:>13.0f}  "
                f"{'yes' if lr.torch_imported else 'no'}"
            )
    t = result.tokens
    verdict = "passed" if t.passed else f"FAILED ({len(t.mismatches)} run(s) differ)"
    what = "Token equality" if w.get("search", "greedy") == "greedy" else (
        f"N-best equality (same ids in order, scores within {BEAM_SCORE_ATOL:g} per token)")
    lines += ["", f"{what} across backends: {verdict} ({t.runs_compared} runs compared)"]
    return "\n".join(lines)
