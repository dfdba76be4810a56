"""Checkpoints: a plain dict (no pickled classes) that carries what is needed to rebuild the model.

    {"format_version": 1, "model_config": {...}, "vocabularies": {...}, "state_dict": {...},
     "training": {...} or None}

Written atomically, read with torch.load(weights_only=True).
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .config import ModelConfig
from .constants import CHECKPOINT_FORMAT_VERSION
from .errors import CheckpointError, Seq2SeqExportError
from .fsutil import atomic_file
from .model import Seq2Seq
from .vocab import TextPipeline


@dataclass(frozen=True)
class Checkpoint:
    config: ModelConfig
    text: TextPipeline
    state_dict: dict[str, torch.Tensor]
    training: dict[str, Any] | None = None  # optimizer, epoch, RNG states, metrics; None for imports

    def build_model(self, device: torch.device | str = "cpu") -> Seq2Seq:
        """A Seq2Seq in eval mode with these weights, on `device`."""
        model = Seq2Seq(self.config)
        missing, unexpected = model.load_state_dict(self.state_dict, strict=False)
        if missing or unexpected:
            raise CheckpointError(
                f"state_dict does not fit the model config: missing {sorted(missing)}, unexpected {sorted(unexpected)}"
            )
        return model.to(device).eval()


def save_checkpoint(path: str | os.PathLike, ckpt: Checkpoint) -> None:
    payload = {
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "model_config": ckpt.config.to_dict(),
        "vocabularies": ckpt.text.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in ckpt.state_dict.items()},
        "training": ckpt.training,
    }
    with atomic_file(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | os.PathLike, data: bytes | None = None) -> Checkpoint:
    """Read and validate a checkpoint; any problem is a one-line CheckpointError naming the file.

    data: the file's bytes, already read (and checked) by the caller; parsed instead of `path`."""
    path = Path(path)
    if data is None and not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        raw = torch.load(path if data is None else io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # arbitrary bytes make torch.load raise almost anything (KeyError, EOFError, ...)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or not a torch file): {first}") from None
    if not isinstance(raw, dict) or "format_version" not in raw:
        raise CheckpointError(f"{path}: not a seq2seq-export checkpoint (no format_version field)")
    version = raw["format_version"]
    if version != CHECKPOINT_FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {version!r} is not supported (this version reads "
            f"{CHECKPOINT_FORMAT_VERSION}); re-create it with a matching seq2seq-export"
        )
    missing = [k for k in ("model_config", "vocabularies", "state_dict") if k not in raw]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks field(s) {', '.join(missing)}")
    try:
        ckpt = Checkpoint(
            config=ModelConfig.from_dict(raw["model_config"]),
            text=TextPipeline.from_dict(raw["vocabularies"]),
            state_dict=raw["state_dict"],
            training=raw.get("training"),
        )
    except Seq2SeqExportError as e:
        raise CheckpointError(f"{path}: {e}") from None
    if len(ckpt.text.src) != ckpt.config.src_vocab_size or len(ckpt.text.tgt) != ckpt.config.tgt_vocab_size:
        raise CheckpointError(
            f"{path}: vocabulary sizes ({len(ckpt.text.src)}, {len(ckpt.text.tgt)}) do not match the model config "
            f"({ckpt.config.src_vocab_size}, {ckpt.config.tgt_vocab_size})"
        )
    return ckpt
