"""s2s-train: train a model from a preset plus overrides; the best checkpoint goes to OUT/checkpoint.pt."""

from __future__ import annotations

import sys
from typing import Any

import click

from ..config import ATTENTION_SCORES, ATTENTION_TYPES, RNN_TYPES
from ..constants import CLOCKS, DEFAULT_PRESET, LR_SCHEDULES, TOKENIZERS
from ..errors import Seq2SeqExportError
from ..train.config import preset_names
from .options import (
    EXIT_INTERRUPTED,
    command,
    device_option,
    library_errors,
    threads_option,
)


@command("train")
@click.option(
    "--preset",
    default=DEFAULT_PRESET,
    metavar="NAME|FILE",
    help=f"A shipped preset ({', '.join(preset_names())}) or the path of your TOML preset, whose "
    "unset fields keep the shipped presets' shared defaults (one thread, CPU-clock budget).",
)
@click.option("--dataset", help="toy, cmudict or tsv:FILE (source<TAB>target per line) [default: the preset's].")
@click.option(
    "--src-tokenizer",
    type=click.Choice(TOKENIZERS),
    help="How sources split into tokens: char (every character) or space (whitespace-separated words) "
    "[default: the preset's, else the dataset's: char for cmudict, space for toy and TSV].",
)
@click.option(
    "--tgt-tokenizer",
    type=click.Choice(TOKENIZERS),
    help="How targets split into tokens: char or space [default: the preset's, else the dataset's: "
    "space for toy, cmudict and TSV].",
)
@click.option(
    "--normalize",
    help="Source normalization steps, comma-separated, applied in order: nfc (Unicode NFC), "
    "lower (ASCII A-Z to a-z); recorded in the checkpoint and bundle, so every runtime applies them too "
    "[default: the preset's: lower for cmudict, none otherwise].",
)
@click.option(
    "--out",
    help="Output folder for checkpoint.pt, last.pt and metrics.json; one that already holds a run "
    "is refused without --resume or --force [default: artifacts/<preset>, or artifacts/<preset>-<dataset> "
    "(the TSV file's name) for another dataset than the preset's].",
)
@click.option("--epochs", type=int, help="Passes over the train split at most [default: the preset's].")
@click.option("--max-minutes", type=float, help="Time budget for the whole run, 0 for none [default: the preset's].")
@click.option(
    "--clock",
    type=click.Choice(CLOCKS),
    help="What --max-minutes counts: wall time, or this process's CPU time (fair on a busy machine) [default: the preset's].",
)
@click.option(
    "--max-steps",
    type=int,
    help="Stop after this many optimizer steps in total, 0 for none [default: the preset's, else 0].",
)
@click.option("--batch-size", type=int, help="Pairs per optimizer step [default: the preset's].")
@click.option("--lr", type=float, help="Adam peak learning rate [default: the preset's].")
@click.option(
    "--lr-schedule",
    type=click.Choice(LR_SCHEDULES),
    help="constant, or cosine decay that ends with the epochs or the time budget [default: the preset's].",
)
@click.option(
    "--teacher-forcing",
    type=float,
    help="Probability of feeding the gold token; 1.0 is fastest [default: the preset's].",
)
@click.option("--clip", type=float, help="Gradient-norm clip, 0 for none [default: the preset's].")
@click.option(
    "--label-smoothing",
    type=float,
    help="Training loss only: share of each target's probability spread evenly over the vocabulary [default: the preset's].",
)
@click.option(
    "--weight-decay",
    type=float,
    help="AdamW decoupled weight decay on weight matrices and embeddings, 0 for plain Adam [default: the preset's].",
)
@click.option(
    "--ema-decay",
    type=float,
    help="Validate, keep and test a moving average of the weights, e.g. 0.999; 0 for off [default: the preset's].",
)
@click.option(
    "--validate-every",
    type=int,
    help="Validate every N epochs (and always when the run stops): validation spends budget time too [default: the preset's].",
)
@click.option(
    "--seed", type=int, help="Seed for weights, data order, dropout and the toy data [default: the preset's, else 0]."
)
@device_option(None, "auto: CUDA when available [default: the preset's, else auto].")
@threads_option(
    None,
    "CPU threads for torch, 0 for torch's default; 1 is fastest on a busy machine [default: the preset's].",
    minimum=0,
)
@click.option("--emb-dim", type=int, help="Embedding size [default: the preset's].")
@click.option("--hidden-dim", type=int, help="Recurrent state size [default: the preset's].")
@click.option(
    "--encoder-hidden-dim",
    type=int,
    help="A bidirectional encoder's state size per direction, 0 for --hidden-dim [default: the preset's].",
)
@click.option("--layers", "num_layers", type=int, help="Stacked recurrent layers, both sides [default: the preset's].")
@click.option("--dropout", type=float, help="Dropout on embeddings and between layers [default: the preset's].")
@click.option("--rnn", type=click.Choice(RNN_TYPES), help="Recurrent cell, both sides [default: the preset's].")
@click.option(
    "--bidirectional/--no-bidirectional",
    "bidirectional_encoder",
    default=None,
    help="Encoder reads both ways; a learned bridge feeds the decoder [default: the preset's].",
)
@click.option(
    "--attention",
    type=click.Choice(ATTENTION_TYPES),
    help="Decoder attention over the encoder outputs [default: the preset's].",
)
@click.option(
    "--attention-score",
    type=click.Choice(ATTENTION_SCORES),
    help="Luong score: general (h^T W k) or dot (h^T k, unidirectional encoders) [default: the preset's].",
)
@click.option(
    "--reverse-source/--no-reverse-source",
    "reverse_source",
    default=None,
    help="Encoder reads each source backwards; helps models without attention [default: the preset's].",
)
@click.option("--resume", is_flag=True, help="Continue the interrupted run in --out from its last.pt (same settings).")
@click.option(
    "--force",
    is_flag=True,
    help="Replace the run in --out: deletes its checkpoint.pt, last.pt, metrics.json and bundle/ "
    "(the default export of that checkpoint) before training starts.",
)
@click.option(
    "--quiet",
    is_flag=True,
    help="No progress bar and no per-epoch lines; only warnings and the summary. Without a terminal "
    "on stderr there is no bar either.",
)
@library_errors
def train_cmd(preset: str, resume: bool, force: bool, quiet: bool, **options: Any) -> None:
    """Train a seq2seq model (GRU or LSTM, optionally bidirectional with attention); the best checkpoint goes to OUT/checkpoint.pt.

    Each validation reports the loss, the sequence error rate (1 - exact match) and the token error
    rate (edit distance / reference tokens): WER and PER for cmudict. The end reports the test split.
    A progress bar on a terminal shows the budget that ends the run (time or steps). Ctrl-C stops at
    the next batch and saves OUT/last.pt for --resume. Under torchrun (`torchrun --nproc-per-node N
    -m seq2seq_export train ...`) the ranks share each batch; rank 0 alone prints and writes.
    """
    from ..train import load_config, train
    from ..train.distributed import launched_rank
    from ..train.metrics import MetricNames

    def echo_err(msg: str) -> None:
        click.echo(msg, err=True)

    try:
        cfg = load_config(preset, **options)
        result = train(
            cfg,
            resume=resume,
            force=force,
            log=None if quiet else echo_err,
            warn=echo_err,
            progress=not quiet and sys.stderr.isatty(),
        )
    except Seq2SeqExportError:
        if launched_rank():  # every rank meets it (train() hands each rank's to all): rank 0 says it, once
            click.get_current_context().exit(2)
        raise
    if launched_rank():
        click.get_current_context().exit(EXIT_INTERRUPTED if result.stopped_by == "interrupt" else 0)
    names = MetricNames.of(cfg.dataset)
    click.echo(f"checkpoint: {result.checkpoint}")
    click.echo(
        f"trained {result.epochs:g} epochs, {result.steps} steps in {result.elapsed_s / 60:.1f} {cfg.minutes} "
        f"(stopped by {result.stopped_by}); {result.pairs_per_s:.0f} training pairs/s"
    )
    for split, row in (("valid:", result.valid), ("test: ", result.test)):
        click.echo(f"{split} {names.describe(row)} ({row['count']} {names.item})")
    if result.stopped_by == "interrupt":  # saved and summarized, but the run did not end: exit as interrupted
        click.echo(f"interrupted: continue with --resume --out {result.out_dir}", err=True)
        click.get_current_context().exit(EXIT_INTERRUPTED)
