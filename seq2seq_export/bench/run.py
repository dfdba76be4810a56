"""Run every backend over the same inputs, taking turns slice by slice, through the decoding core (greedy or beam)."""
from __future__ import annotations

import os
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import ModelConfig
from ..constants import BACKENDS, DEVICES, MAX_BEAM_SIZE, MAX_THREADS
from ..errors import ConfigError
from ..fsutil import Log
from ..manifest import load_bundle
from ..runtime import DecodeOptions, beam_search, decode_in_batches, greedy_decode, open_backend
from ..runtime.core import Backend, Seqs, Strategy, length_order
from ..verify_beam import same_nbest
from .machine import backend_options, gemm_limit, machine_info, require_device
from .probe import probe_load
from .report import BenchResult, LoadRow, Row, TokenCheck
from .workload import decoder_step_flops, decoder_steps, load_samples, sequence_flops

SLICE = 128  # sequences per turn when backends take turns: short enough that load bursts hit all alike


@dataclass(frozen=True)
class BenchConfig:
    bundle: Path  # bundle directory written by s2s-export
    backends: tuple[str, ...] = BACKENDS  # measured side by side; eager is the reference for ratios
    batch_sizes: tuple[int, ...] = (1, 16, 64, 256)
    threads: int = 1  # intra-op threads of every backend (torch.set_num_threads, ORT intra_op_num_threads)
    device: str = "cpu"  # cpu | cuda | auto, for every backend and the GEMM limit; the targets are CPU figures
    samples: int = 1000  # source sequences decoded by every timed run
    data: str = "random"  # random | toy | cmudict | tsv:PATH
    repeat: int = 5  # timed runs per backend and batch size, after one warm-up run
    seed: int = 0  # random inputs and dataset shuffling
    beam_size: int = 1  # 1: greedy; K: beam search keeping and returning K hypotheses (n-best K)
    probe_loads: bool = True  # measure load time and peak RSS of each backend in a fresh process
    expect_digest: str | None = None  # refuse a bundle whose digest differs ("sha256:...")

    def __post_init__(self) -> None:
        unknown = [b for b in self.backends if b not in BACKENDS]
        if unknown or not self.backends or len(set(self.backends)) != len(self.backends):
            raise ConfigError(f"backends must be distinct names from {', '.join(BACKENDS)}, got {','.join(self.backends)!r}")
        if not self.batch_sizes or any(b < 1 for b in self.batch_sizes):
            raise ConfigError(f"batch sizes must be positive integers, got {self.batch_sizes}")
        if self.device not in DEVICES:
            raise ConfigError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        for name in ("threads", "samples", "repeat"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 1 <= self.beam_size <= MAX_BEAM_SIZE:
            raise ConfigError(f"beam size must lie in [1, {MAX_BEAM_SIZE}], got {self.beam_size}")
        if self.threads > MAX_THREADS:
            raise ConfigError(f"threads must be at most {MAX_THREADS}, got {self.threads}")


def _strategy(opts: DecodeOptions) -> Strategy:
    return greedy_decode if opts.beam_size == 1 else beam_search


def _same(a: Any, b: Any) -> bool:
    """Two results of one input: greedy's token lists equal; beam n-best lists with equal ids, in order,
    scores within BEAM_SCORE_ATOL per token (verify_beam.same_nbest)."""
    return a == b if not a or not hasattr(a[0], "ids") else same_nbest(a, b)


def _clocked(marks: list[float], opts: DecodeOptions) -> Strategy:
    """The options' search that timestamps the start of each batch (it adds nothing to the per-step path)."""
    search = _strategy(opts)

    def strategy(backend: Backend, seqs: Seqs, opts: DecodeOptions) -> list:
        marks.append(time.perf_counter())
        return search(backend, seqs, opts)

    return strategy


@dataclass(frozen=True)
class _Run:
    wall_s: float
    cpu_s: float  # this process's CPU time: below wall_s when other processes took the core
    batch_s: list[float]  # wall time of each batch


def _timed_run(backend: Backend, seqs: list[list[int]], batch_size: int, opts: DecodeOptions) -> tuple[_Run, list]:
    """Decode every sequence once -> (timings, outputs)."""
    marks: list[float] = []
    c0, t0 = time.process_time(), time.perf_counter()
    outputs = decode_in_batches(backend, seqs, opts, batch_size=batch_size, strategy=_clocked(marks, opts))
    t1, c1 = time.perf_counter(), time.process_time()
    return _Run(t1 - t0, c1 - c0, list(np.diff(marks + [t1]))), outputs


def _first_difference(a: list, b: list) -> tuple[int, int]:
    diff = [i for i, (x, y) in enumerate(zip(a, b)) if not _same(x, y)]
    return len(diff), (diff[0] if diff else -1)


def _slices(seqs: list[list[int]], batch_size: int) -> list[list[list[int]]]:
    """Length-sorted inputs cut into slices of at least SLICE sequences, each a whole number of batches."""
    size = batch_size * -(-SLICE // batch_size)
    return [seqs[i : i + size] for i in range(0, len(seqs), size)]


def _interleaved_runs(
    cfg: BenchConfig, backends: dict, seqs: list[list[int]], opts: DecodeOptions, note: Log
) -> tuple[dict, dict, list[str]]:
    """Every repeat runs every batch size on every backend, interleaved slice by slice.

    Backends take turns on each slice of the inputs (who goes first rotates), so a burst of load
    from other processes hits every backend alike. `seqs` must be sorted by length: then slicing
    forms exactly the batches decode_in_batches forms on the whole list.
    -> ({(backend, batch size): [_Run per repeat]}, {batch size: reference outputs}, mismatches);
    the reference at a batch size is the first run's output there, every other run must equal it.
    """
    note(f"warm-up: every backend at batch sizes {', '.join(map(str, cfg.batch_sizes))}")
    for b in cfg.batch_sizes:  # warm-up: one untimed pass per backend and batch size
        for name in cfg.backends:
            decode_in_batches(backends[name], seqs[: 2 * b], opts, batch_size=b, strategy=_strategy(opts))
    runs: dict[tuple[str, int], list[_Run]] = {(n, b): [] for n in cfg.backends for b in cfg.batch_sizes}
    reference: dict[int, list] = {}
    mismatches: list[str] = []
    total = cfg.repeat * len(cfg.batch_sizes)
    for k in range(cfg.repeat):
        for j, b in enumerate(cfg.batch_sizes):
            note(f"timing {k * len(cfg.batch_sizes) + j + 1}/{total}: batch size {b}, repeat {k + 1}/{cfg.repeat}, "
                 f"{len(seqs)} sequences on {', '.join(cfg.backends)}")
            parts: dict[str, list[tuple[_Run, list]]] = {name: [] for name in cfg.backends}
            for i, piece in enumerate(_slices(seqs, b)):
                shift = (k + i) % len(cfg.backends)
                for name in cfg.backends[shift:] + cfg.backends[:shift]:
                    parts[name].append(_timed_run(backends[name], piece, b, opts))
            for name in cfg.backends:
                timings = [t for t, _ in parts[name]]
                runs[name, b].append(_Run(sum(t.wall_s for t in timings), sum(t.cpu_s for t in timings),
                                          [x for t in timings for x in t.batch_s]))
                out = [row for _, piece_out in parts[name] for row in piece_out]
                n_diff, first = _first_difference(out, reference.setdefault(b, out))
                if n_diff:
                    mismatches.append(f"{name} batch {b} repeat {k}: {n_diff} of {len(seqs)} sequences differ (first: #{first})")
    return runs, reference, mismatches


def run_benchmark(cfg: BenchConfig, progress: Log | None = None) -> BenchResult:
    """Time every backend at every batch size; ratios and the token check come from the same invocation.

    progress, if given, gets one line as each stage starts (load probes, GEMM limit, each timed pass)."""
    note = progress or (lambda _: None)
    bundle = load_bundle(cfg.bundle, expect_digest=cfg.expect_digest)
    require_device(cfg.device, cfg.backends)
    samples = load_samples(bundle, cfg.data, cfg.samples, cfg.seed)
    seqs = [samples[i] for i in length_order(samples)]  # the order decode_in_batches batches them in
    if not seqs:
        raise ConfigError(f"--data {cfg.data} gave no source sequences")
    opts = DecodeOptions.from_bundle(bundle, beam_size=cfg.beam_size, num_hypotheses=cfg.beam_size)
    machine = machine_info(cfg.threads)
    if cfg.probe_loads:
        note(f"load time and memory of {', '.join(cfg.backends)}, each in a fresh process")
    longest = seqs[-max(cfg.batch_sizes) :]  # the probes' peak RSS comes from the largest batch of the longest inputs
    loads = tuple(
        LoadRow(name, **probe_load(bundle.root, name, backend_options(name, cfg.threads, cfg.device), longest, bundle.digest))
        for name in cfg.backends
        if cfg.probe_loads
    )
    note(f"loading {', '.join(cfg.backends)}; measuring the GEMM limit")
    backends = {name: open_backend(bundle, name, **backend_options(name, cfg.threads, cfg.device)) for name in cfg.backends}
    gemm = gemm_limit(cfg.threads, cfg.device, bundle.config.hidden_dim, cfg.batch_sizes)
    runs, reference, mismatches = _interleaved_runs(cfg, backends, seqs, opts, note)
    refs = list(reference.values())
    tokens = TokenCheck(
        passed=not mismatches,
        runs_compared=cfg.repeat * len(cfg.batch_sizes) * len(cfg.backends),
        mismatches=tuple(mismatches),
        same_across_batch_sizes=all(not _first_difference(r, refs[0])[0] for r in refs),
    )
    if cfg.beam_size == 1:
        work = {b: _work(bundle.config, seqs, decoder_steps(out, opts.max_len)) for b, out in reference.items()}
    else:  # beam search's rows depend on no batch-mate: one counted pass gives every batch size's work
        note("counting beam search's decoder rows (one untimed pass)")
        fastest = backends["onnx" if "onnx" in backends else cfg.backends[0]]
        stepped = _beam_rows(fastest, seqs, opts, max(cfg.batch_sizes))
        work = dict.fromkeys(reference, _beam_work(bundle.config, seqs, stepped))
    workload = {
        "data": cfg.data,
        "samples": len(seqs),
        "src_tokens": sum(map(len, seqs)),
        **work[cfg.batch_sizes[0]],
        "max_len": opts.max_len,
        "search": "greedy" if cfg.beam_size == 1 else f"beam {cfg.beam_size}, n-best {cfg.beam_size}",
        "model_config": bundle.config.to_dict(),
    }
    rows = tuple(_row(name, b, runs, len(seqs), work[b], gemm["gflops"]) for b in cfg.batch_sizes for name in cfg.backends)
    machine["loadavg_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    return BenchResult(
        config={**asdict(cfg), "bundle": str(cfg.bundle)},
        machine=machine,
        gemm=gemm,
        workload=workload,
        rows=rows,
        loads=loads,
        tokens=tokens,
    )


def _work(cfg: ModelConfig, seqs: list[list[int]], steps: list[int]) -> dict:
    """What one pass over the inputs computes, given each row's decoder steps."""
    flops = sum(sequence_flops(cfg, len(s), n) for s, n in zip(seqs, steps))
    return {"decoder_steps": sum(steps), "gemm_flops": flops, "mflop_per_seq": flops / len(seqs) / 1e6}


class _RowCounter:
    """A backend whose step_logits counts the rows it steps: beam search's decoder work."""

    def __init__(self, backend: Backend):
        self.backend, self.rows = backend, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)

    def step_logits(self, prev_tokens: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
        self.rows += len(prev_tokens)
        return self.backend.step_logits(prev_tokens, state)


def _beam_rows(backend: Backend, seqs: list[list[int]], opts: DecodeOptions, batch_size: int) -> int:
    counter = _RowCounter(backend)
    decode_in_batches(counter, seqs, opts, batch_size=batch_size, strategy=beam_search)
    return counter.rows


def _beam_work(cfg: ModelConfig, seqs: list[list[int]], rows: int) -> dict:
    """_work for beam search: the encoder on every sequence, `rows` decoder rows (hypotheses stepped),
    attention counted at the mean source length."""
    encoder = sum(sequence_flops(cfg, len(s), 0) for s in seqs)
    flops = encoder + rows * decoder_step_flops(cfg, round(sum(map(len, seqs)) / len(seqs)))
    return {"decoder_steps": rows, "gemm_flops": flops, "mflop_per_seq": flops / len(seqs) / 1e6}


def _paired_ratio(runs: dict, key: tuple[str, int], ref: tuple[str, int]) -> float | None:
    """Median over repeats of (ref wall / key wall) within the same repeat: drift hits both alike."""
    if ref not in runs:
        return None
    return statistics.median(r.wall_s / k.wall_s for k, r in zip(runs[key], runs[ref]))


def _row(name: str, b: int, runs: dict, samples: int, work: dict, gflops_limit: float) -> Row:
    own = runs[name, b]
    wall = statistics.median(r.wall_s for r in own)
    cpu_share = statistics.median(r.cpu_s / r.wall_s for r in own)
    gflops = work["gemm_flops"] / wall / 1e9
    return Row(
        backend=name,
        batch_size=b,
        seq_per_s=samples / wall,
        tok_per_s=work["decoder_steps"] / wall,
        latency_p50_ms=1e3 * statistics.median(float(np.percentile(r.batch_s, 50)) for r in own),
        latency_p90_ms=1e3 * statistics.median(float(np.percentile(r.batch_s, 90)) for r in own),
        gflops=gflops,
        limit_fraction=gflops / gflops_limit,
        limit_fraction_cpu=gflops / cpu_share / gflops_limit,
        vs_eager=_paired_ratio(runs, (name, b), ("eager", b)),
        vs_eager_b1=_paired_ratio(runs, (name, b), ("eager", 1)),
        cpu_share=cpu_share,
        wall_s=tuple(r.wall_s for r in own),
    )
