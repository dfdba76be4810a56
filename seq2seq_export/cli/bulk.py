"""s2s-bulk: text files in, one translated file per input in OUTDIR, in this process or on Ray."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from ..constants import (
    BULK_ENGINES,
    MAX_THREADS,
)
from .options import (
    bundle_option,
    command,
    decoding_options,
    expect_digest_option,
    library_errors,
    threads_option,
)

DEFAULT_RAY_WORKERS = 2
MAX_WORKERS = 4096


@command("bulk")
@bundle_option("Bundle directory written by s2s-export (checked: version, paths, sha256); the onnx backend runs it.")
@click.option(
    "--engine",
    default="local",
    type=click.Choice(BULK_ENGINES),
    help="local: in this process; ray: Ray Data on a pool of actors (needs the ray extra).",
)
@click.option(
    "--ray-address",
    metavar="ADDR",
    envvar="RAY_ADDRESS",
    help="With --engine ray: the cluster to join (HEAD:6379); read from RAY_ADDRESS too "
    "[default: a local Ray started for this run].",
)
@click.option(
    "--num-workers",
    type=click.IntRange(1, MAX_WORKERS),
    help=f"With --engine ray: actors, each loading the bundle once [default: {DEFAULT_RAY_WORKERS}].",
)
@decoding_options("file and line", "on stderr")
@threads_option(
    None,
    f"Compute threads per worker (onnxruntime intra-op), 1-{MAX_THREADS} "
    "[default: the library's locally, 1 per actor on Ray].",
)
@click.option(
    "--output",
    "outdir",
    required=True,
    metavar="OUTDIR",
    type=click.Path(path_type=Path),
    help="Directory for the outputs, made if missing: OUTDIR/<input's base name> per input.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars and no summary line on stderr.")
@expect_digest_option
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...", type=click.Path(path_type=Path))
@library_errors
def bulk_cmd(
    bundle_dir: Path,
    engine: str,
    ray_address: str | None,
    num_workers: int | None,
    batch_size: int,
    max_len: int | None,
    max_src_tokens: int | None,
    truncate: bool,
    threads: int | None,
    outdir: Path,
    quiet: bool,
    expect_digest: str | None,
    inputs: tuple[Path, ...],
) -> None:
    """Translate each INPUT text file, line by line, into OUTDIR/<its base name>.

    Inputs are read as s2s-translate reads standard input (UTF-8, only \\n ends a line, a leading
    byte-order mark dropped) and streamed in chunks. Each output has exactly one line per input line,
    in order, each ending with \\n (also when the input's last line has none); an empty input gives an
    empty output. Outputs are written atomically. A summary line and progress go to stderr.
    """
    from ..bulk import BulkOptions, plan, run_local
    from ..manifest import load_bundle

    ctx = click.get_current_context()
    if engine == "local":
        for name, flag in (("ray_address", "--ray-address"), ("num_workers", "--num-workers")):
            if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE:
                raise click.UsageError(f"{flag} needs --engine ray")
    jobs = plan(inputs, outdir)
    bundle = load_bundle(bundle_dir, expect_digest=expect_digest)
    options = BulkOptions(batch_size, max_len, max_src_tokens, truncate, threads)
    bar = _progress_bar(engine, quiet)
    log = _log(bar)
    try:
        if engine == "ray":
            from ..bulk_ray import run_ray

            result = run_ray(
                jobs,
                bundle,
                options,
                log,
                bar.update if bar else None,
                address=ray_address,
                num_workers=num_workers or DEFAULT_RAY_WORKERS,
                quiet=quiet,
            )
        else:
            result = run_local(jobs, bundle, options, log, bar.update if bar else None)
    finally:
        if bar is not None:
            bar.close()
    if not quiet:
        rate = result.lines / result.seconds if result.seconds else 0.0
        click.echo(
            f"{result.files} file(s), {result.lines} line(s) translated in {result.seconds:.1f} s "
            f"({rate:.0f} lines/s, engine {engine}) -> {outdir}",
            err=True,
        )


def _progress_bar(engine: str, quiet: bool) -> Any:
    """A line counter on a terminal's stderr; none when quiet, and none on Ray, which shows its own bars."""
    if quiet or engine == "ray" or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(unit="line", file=sys.stderr)


def _log(bar: Any) -> Any:
    if bar is None:
        return lambda line: click.echo(line, err=True)
    return lambda line: bar.write(line, file=sys.stderr)
