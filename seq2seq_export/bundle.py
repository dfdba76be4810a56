"""export_bundle: checkpoint -> a complete, self-describing bundle directory, written atomically.

    bundle/
      manifest.json                      the contract (see manifest.py)
      encoder.onnx, decoder_step.onnx    with --format onnx|all
      encoder.pt, decoder_step.pt        with --format torchscript|all
      checkpoint.pt                      the reference checkpoint, unless reference=False

Everything is written into a temporary directory beside the target and moved into place only
when complete (and verified, if a verify hook is given), so a failure leaves no bundle behind; an
existing bundle is swapped for the new one in one atomic step (fsutil.atomic_dir), so a crash at
any instant leaves the complete old or the complete new bundle. A full disk or read-only target is
a one-line OutputError, with nothing left behind.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable

from . import __version__
from .checkpoint import Checkpoint, load_checkpoint
from .constants import (
    DECODER_ONNX,
    DECODER_TS,
    DEFAULT_EXPORTER,
    DEFAULT_MAX_LEN,
    DEFAULT_MAX_SRC_TOKENS,
    DEFAULT_OPSET,
    ENCODER_ONNX,
    ENCODER_TS,
    EXPORTERS,
    MANIFEST_FILE,
    MAX_LEN_CEILING,
    MAX_SRC_TOKENS_CEILING,
    REFERENCE_CHECKPOINT,
)
from .errors import ExportError, is_int
from .fsutil import Log, atomic_dir, clean_leftovers, write_bytes
from .iospec import DECODER_STEP, ENCODER, graph_specs
from .manifest import FORMATS, build_manifest, file_entry, write_manifest

GRAPH_FILES = {  # {graph: {format: file name inside the bundle}}
    ENCODER: {"onnx": ENCODER_ONNX, "torchscript": ENCODER_TS},
    DECODER_STEP: {"onnx": DECODER_ONNX, "torchscript": DECODER_TS},
}


def default_out_dir(checkpoint_path: str | os.PathLike) -> Path:
    """A directory named 'bundle' beside the checkpoint."""
    return Path(checkpoint_path).parent / "bundle"


def resolve_max_len(ckpt: Checkpoint, max_len: int | None) -> int:
    """Explicit value > the checkpoint's training max_len > DEFAULT_MAX_LEN."""
    value = max_len if max_len is not None else (ckpt.training or {}).get("max_len", DEFAULT_MAX_LEN)
    if not is_int(value):
        raise ExportError(f"max_len must be a positive integer, got {value!r}")
    if value > MAX_LEN_CEILING:
        raise ExportError(f"max_len {value} is above the ceiling of {MAX_LEN_CEILING} decoding steps")
    return value


def resolve_max_src_tokens(ckpt: Checkpoint) -> int:
    """The longest training source as the model saw it (training records it), else DEFAULT_MAX_SRC_TOKENS
    (imports, older checkpoints); never above MAX_SRC_TOKENS_CEILING. load_checkpoint has checked the type."""
    value = (ckpt.training or {}).get("max_src_tokens")
    return DEFAULT_MAX_SRC_TOKENS if value is None else min(value, MAX_SRC_TOKENS_CEILING)


def _check_target(out: Path, force: bool) -> None:
    """Refuse to touch an existing path without force, and never replace something not a bundle."""
    if not out.exists():
        return
    if not force:
        raise ExportError(f"{out}: already exists; pass --force (force=True) to replace it")
    if not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST_FILE).is_file()):
        raise ExportError(f"{out}: exists and is not a bundle directory; refusing to replace it even with --force")


def _producer(formats: tuple[str, ...], opset: int, exporter: str) -> dict:
    import onnx
    import torch

    has_onnx = "onnx" in formats
    return {
        "package": "seq2seq-export",
        "version": __version__,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "opset": opset if has_onnx else None,
        "exporter": exporter if has_onnx else None,
    }


def export_bundle(
    checkpoint_path: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    *,
    formats: Iterable[str] = FORMATS,
    opset: int = DEFAULT_OPSET,
    exporter: str = DEFAULT_EXPORTER,
    force: bool = False,
    reference: bool = True,
    max_len: int | None = None,
    verify: Callable[[Path], None] | None = None,
    log: Log | None = None,
    progress: Log | None = None,
) -> Path:
    """Export a checkpoint's encoder and decoder step as a bundle; returns the bundle directory.

    verify, if given, is called on the finished temporary directory before it is moved into
    place; if it raises, no bundle is left. log, if given, gets one line per leftover of a killed
    export to the same directory that this one removes (or restores). progress, if given, gets one
    line as each stage starts (loading, each graph in each format, writing, verifying).
    """
    from .export.graphs import example_inputs, graph_modules
    from .export.onnx import export_onnx
    from .export.torchscript import export_torchscript

    formats = tuple(formats)
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        raise ExportError(f"unknown or no format(s) {unknown}: choose from {', '.join(FORMATS)}")
    if exporter not in EXPORTERS:
        raise ExportError(f"unknown ONNX exporter {exporter!r}: use one of {', '.join(EXPORTERS)}")
    out = Path(out_dir) if out_dir is not None else default_out_dir(checkpoint_path)
    clean_leftovers(out, log)
    _check_target(out, force)
    note = progress or (lambda _: None)
    note(f"loading checkpoint {checkpoint_path}")
    ckpt = load_checkpoint(checkpoint_path)
    limit, src_limit = resolve_max_len(ckpt, max_len), resolve_max_src_tokens(ckpt)
    # Graphs are device independent; exporting from CPU keeps the files loadable everywhere.
    modules = graph_modules(ckpt.build_model("cpu"))
    specs = graph_specs(ckpt.config)
    with atomic_dir(out, replace=force) as tmp:
        tmp.chmod(0o755)  # private while it is built; a finished bundle is meant to be shared
        graph_files: dict[str, dict[str, dict]] = {}
        for name, spec in specs.items():
            files = GRAPH_FILES[name]
            if "onnx" in formats:
                note(f"exporting {name} to ONNX ({exporter} exporter)")
                args = example_inputs(spec, ckpt.config)
                export_onnx(modules[name], args, spec, tmp / files["onnx"], opset=opset, exporter=exporter)
            if "torchscript" in formats:
                note(f"exporting {name} to TorchScript")
                export_torchscript(modules[name], spec, tmp / files["torchscript"])
            graph_files[name] = {fmt: file_entry(tmp, files[fmt]) for fmt in FORMATS if fmt in formats}
        note("writing the reference checkpoint and manifest.json" if reference else "writing manifest.json")
        ref = None
        if reference:
            write_bytes(tmp / REFERENCE_CHECKPOINT, Path(checkpoint_path).read_bytes())
            ref = file_entry(tmp, REFERENCE_CHECKPOINT)
        producer = _producer(formats, opset, exporter)
        write_manifest(tmp, build_manifest(ckpt.config, ckpt.text, limit, producer, graph_files, ref, src_limit))
        if verify is not None:
            note("verifying the new bundle")
            verify(tmp)
    return out
