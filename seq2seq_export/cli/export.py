"""s2s-export (checkpoint -> bundle) and s2s-import (the seed's state_dict -> checkpoint)."""
from __future__ import annotations

from pathlib import Path

import click

from ..constants import (
    DEFAULT_EXPORTER,
    DEFAULT_OPSET,
    EOS,
    EXPORTERS,
    FORMATS,
    MIN_OPSET,
    PAD,
    SOS,
    TOKENIZERS,
    UNK,
)
from .options import command, library_errors, progress_printer, quiet_option


@command("export")
@click.option("--checkpoint", "checkpoint_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Checkpoint written by s2s-train or s2s-import.")
@click.option("--format", "fmt", type=click.Choice([*FORMATS, "all"]), default="all",
              help="Graph formats to write: ONNX (encoder.onnx, decoder_step.onnx), TorchScript (.pt), or both.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Bundle directory to create [default: 'bundle' beside the checkpoint].")
@click.option("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset version, at least {MIN_OPSET}.")
@click.option("--exporter", type=click.Choice(EXPORTERS), default=DEFAULT_EXPORTER,
              help="ONNX exporter: dynamo (torch.export-based) or legacy (TorchScript-based, faster).")
@click.option("--force", is_flag=True, help="Replace an existing bundle at --out (atomically, only when the new one is complete).")
@click.option("--no-reference", is_flag=True,
              help="Do not copy the checkpoint into the bundle (the eager backend and s2s-verify then cannot use it).")
@click.option("--max-len", type=click.IntRange(min=1),
              help="Decoding steps recorded as the bundle's default [default: the checkpoint's training max_len, else 50].")
@click.option("--no-verify", is_flag=True,
              help="Skip the quick s2s-verify run (16 samples, every check) that otherwise gates the bundle; "
                   "it is also skipped with --no-reference.")
@quiet_option
@library_errors
def export_cmd(checkpoint_path: Path, fmt: str, out_dir: Path | None, opset: int, exporter: str,
               force: bool, no_reference: bool, max_len: int | None, no_verify: bool, quiet: bool) -> None:
    """Export a checkpoint's encoder and single-step decoder as a bundle with manifest.json.

    Every ONNX graph is checked (onnx.checker full check, GRU linear_before_reset=1, dynamic batch
    and length axes, no training-mode ops) before the bundle is moved into place.
    """
    import time

    from ..bundle import export_bundle
    from ..manifest import load_bundle
    from ..verify import export_check

    start = time.perf_counter()
    formats = FORMATS if fmt == "all" else (fmt,)
    progress = progress_printer(quiet)
    hook = None if no_verify or no_reference else (lambda tmp: export_check(tmp, progress=progress))
    out = export_bundle(checkpoint_path, out_dir, formats=formats, opset=opset, exporter=exporter,
                        force=force, reference=not no_reference, max_len=max_len, verify=hook,
                        log=lambda note: click.echo(note, err=True), progress=progress)
    elapsed = time.perf_counter() - start
    click.echo(f"bundle: {out}")
    for path in sorted(out.iterdir()):
        click.echo(f"  {path.name:<20} {path.stat().st_size / 1e6:9.3f} MB")
    bundle = load_bundle(out)
    click.echo(f"formats: {', '.join(bundle.formats)}; max_len {bundle.max_len}; exported in {elapsed:.1f} s")
    click.echo(f"digest: {bundle.digest}")
    click.echo("verified: quick s2s-verify passed" if hook else "not verified: run s2s-verify --bundle on it")


@command("import")
@click.argument("state_dict", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--src-vocab", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Source vocabulary file: one token per line, the line number (from 0) is its id.")
@click.option("--tgt-vocab", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Target vocabulary file, same format.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Checkpoint file to write (then: s2s-export --checkpoint OUT).")
@click.option("--pad", default=PAD, help="Text of the padding token (both sides need it).")
@click.option("--unk", default=UNK, help="Text of the unknown token (optional on each side).")
@click.option("--sos", default=SOS, help="Text of the start token (the target needs it).")
@click.option("--eos", default=EOS, help="Text of the end token (the target needs it).")
@click.option("--src-eos/--no-src-eos", default=False,
              help="Append the end token to every source sequence, as the model was trained.")
@click.option("--src-tokenizer", type=click.Choice(TOKENIZERS), default=TOKENIZERS[0],
              help="Source tokenizer: one token per character, or whitespace-separated words.")
@click.option("--tgt-tokenizer", type=click.Choice(TOKENIZERS), default=TOKENIZERS[0],
              help="Target tokenizer: one token per character, or whitespace-separated words.")
@library_errors
def import_cmd(state_dict: Path, src_vocab: Path, tgt_vocab: Path, out_path: Path, pad: str, unk: str, sos: str,
               eos: str, src_eos: bool, src_tokenizer: str, tgt_tokenizer: str) -> None:
    """Turn STATE_DICT, torch.save(model.state_dict()) of the seed's Seq2Seq, into a project checkpoint.

    Dimensions and layer count come from the weight shapes; the vocabulary files give the ids.
    """
    from ..checkpoint import save_checkpoint
    from ..seed import import_seed

    ckpt = import_seed(state_dict, src_vocab, tgt_vocab, pad=pad, unk=unk, sos=sos, eos=eos, src_eos=src_eos,
                       src_tokenizer=src_tokenizer, tgt_tokenizer=tgt_tokenizer)
    save_checkpoint(out_path, ckpt)
    c = ckpt.config
    click.echo(f"checkpoint: {out_path} ({out_path.stat().st_size / 1e6:.3f} MB)")
    click.echo(f"model: vocab {c.src_vocab_size} -> {c.tgt_vocab_size}, emb {c.emb_dim}, hidden {c.hidden_dim}, "
               f"{c.num_layers} layer(s)")

