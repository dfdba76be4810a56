"""s2s-bench: time every backend of a bundle side by side; a table or a JSON report."""
from __future__ import annotations

from pathlib import Path

import click

from ..constants import BACKENDS, MAX_BEAM_SIZE
from .options import (
    CommaList,
    bundle_option,
    command,
    device_option,
    emit_report,
    expect_digest_option,
    json_option,
    library_errors,
    progress_printer,
    quiet_option,
    report_option,
    threads_option,
)


@command("bench")
@bundle_option("Bundle directory written by s2s-export (needs its reference checkpoint for eager).")
@click.option("--backends", default=",".join(BACKENDS), type=CommaList(choices=BACKENDS),
              help="Comma-separated backends, timed side by side; eager is the reference for ratios.")
@click.option("--batch-sizes", default="1,16,64,256", type=CommaList(int),
              help="Comma-separated batch sizes; each backend runs at each.")
@threads_option(1, "Intra-op threads for every backend (torch.set_num_threads, onnxruntime intra_op_num_threads).")
@device_option("cpu", "For every backend and the GEMM limit; auto: CUDA when available.")
@click.option("--samples", default=1000, type=int, help="Source sequences decoded by every timed run.")
@click.option("--data", default="random",
              help="Inputs: random (ids from the source vocabulary), toy, cmudict or tsv:PATH (their source sides).")
@click.option("--repeat", default=5, type=int,
              help="Timed runs per backend and batch size (after one warm-up); figures are their medians.")
@click.option("--beam-size", default=1, type=click.IntRange(1, MAX_BEAM_SIZE),
              help="1: greedy search; K: beam search keeping K hypotheses and returning all K (n-best K), whose ids "
                   "must match across backends and scores agree within 1e-4 per token.")
@json_option("Print the full result (rows, loads, machine, GEMM limit, token check) as JSON instead of the table.")
@report_option("Also write the JSON result (as --json prints it) to this file.")
@click.option("--no-load-probe", is_flag=True,
              help="Skip measuring load time and peak RSS of each backend in a fresh process (faster).")
@expect_digest_option
@quiet_option
@library_errors
def bench_cmd(bundle_dir: Path, backends: tuple[str, ...], batch_sizes: tuple[int, ...], threads: int, device: str,
              samples: int, data: str, repeat: int, beam_size: int, as_json: bool, report_path: Path | None, no_load_probe: bool,
              expect_digest: str | None, quiet: bool) -> None:
    """Benchmark every backend of a bundle: throughput, latency, load time, memory, share of the GEMM limit.

    Exit 1 if the backends do not produce identical tokens (with --beam-size, identical n-best lists) (the table or JSON is still written).
    """
    from ..bench import BenchConfig, format_table, run_benchmark

    cfg = BenchConfig(
        bundle=bundle_dir, backends=backends, batch_sizes=batch_sizes, threads=threads, device=device,
        samples=samples, data=data, repeat=repeat, beam_size=beam_size, probe_loads=not no_load_probe, expect_digest=expect_digest,
    )
    result = run_benchmark(cfg, progress=progress_printer(quiet))
    emit_report(result.to_json(), as_json, report_path, lambda: format_table(result))
    result.raise_on_mismatch()
