"""s2s-verify: check a bundle's exported graphs against its eager reference; a table or a JSON report."""
from __future__ import annotations

from pathlib import Path

import click

from ..constants import DEFAULT_ATOL, DEFAULT_EXACT_FACTOR, DEFAULT_RTOL, FORMATS, MAX_BEAM_SIZE, VERIFY_BEAM_SIZE
from .options import (
    CommaList,
    bundle_option,
    command,
    emit_report,
    expect_digest_option,
    json_option,
    library_errors,
    progress_printer,
    quiet_option,
    report_option,
)


@command("verify")
@bundle_option("Bundle directory written by s2s-export; it must include its reference checkpoint.")
@click.option("--samples", default=200, type=click.IntRange(min=1),
              help="Source sequences decoded by the eager reference and by every backend.")
@click.option("--data", default="random",
              help="Sources: random (ids from the source vocabulary, lengths 1-64), or the test split of toy, cmudict or tsv:PATH.")
@click.option("--atol", default=DEFAULT_ATOL, type=float,
              help="Absolute tolerance on logits and states: a value passes when |got - eager| <= atol + rtol * |eager|.")
@click.option("--rtol", default=DEFAULT_RTOL, type=float,
              help="Relative tolerance (see --atol); covers float32 rounding on large logits of trained models.")
@click.option("--exact-factor", default=DEFAULT_EXACT_FACTOR, type=float,
              help="Float64 budget: an output missing --atol/--rtol still passes when, over the check, it is within "
                   "atol + this factor x eager's own distance from the model run in float64. 0 turns it off.")
@click.option("--backends", type=CommaList(choices=FORMATS),
              help="Comma-separated backends to check against eager [default: every format in the bundle].")
@click.option("--beam-size", default=VERIFY_BEAM_SIZE, type=click.IntRange(1, MAX_BEAM_SIZE),
              help="Beam size of the beam checks; each n-best list holds this many hypotheses.")
@click.option("--seed", default=0, type=click.IntRange(min=0), help="Seed for random sources and probe inputs.")
@json_option("Print the report (every check, figures, per-step differences) as JSON instead of the table.")
@report_option("Also write the JSON report (as --json prints it) to this file.")
@click.option("--digest", "digest_only", is_flag=True,
              help="Check every file of the bundle, print its digest (sha256:HEX, to pin with --expect-digest) "
                   "and exit 0 without running the checks.")
@expect_digest_option
@quiet_option
@library_errors
def verify_cmd(bundle_dir: Path, samples: int, data: str, atol: float, rtol: float, exact_factor: float,
               backends: tuple[str, ...] | None, beam_size: int, seed: int, as_json: bool, report_path: Path | None, digest_only: bool,
               expect_digest: str | None, quiet: bool) -> None:
    """Prove a bundle's ONNX and TorchScript graphs decode exactly like its eager reference.

    Checks graph outputs, teacher-forced steps, free-running greedy tokens, beam search n-best lists
    and scores, batch invariance (greedy and beam) and the ONNX export lint; prints one row per check and a legend of what each check and figure means.
    Exit 0 if all pass, 1 if any fails, 2 for unusable input.
    """
    if digest_only:
        from ..manifest import load_bundle

        click.echo(load_bundle(bundle_dir, expect_digest=expect_digest).digest)
        return
    from ..verify import format_report, verify

    report = verify(bundle_dir, samples=samples, data=data, atol=atol, rtol=rtol, exact_factor=exact_factor,
                    backends=backends, beam_size=beam_size, seed=seed, expect_digest=expect_digest,
                    progress=progress_printer(quiet))
    emit_report(report.to_json() + "\n", as_json, report_path, lambda: format_report(report))
    report.raise_if_failed()
