"""Checkpoints: a plain dict (no pickled classes) that carries what is needed to rebuild the model.

    {"format_version": 1, "model_config": {...}, "vocabularies": {...}, "state_dict": {...},
     "training": {...} or None}

Written atomically, read with torch.load(weights_only=True).
"""
from __future__ import annotations

import functools
import io
import json
import os
import pickle
import re
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from .config import ModelConfig
from .constants import CHECKPOINT_FORMAT_VERSION, MANIFEST_SCHEMA_FILE
from .errors import CheckpointError, Seq2SeqExportError, is_int
from .fsutil import atomic_file, write_bytes
from .model import Seq2Seq
from .vocab import TextPipeline
from .weights import check_model_size, check_tensor_mapping, check_weights

TRAINING_COUNTS = ("max_len", "max_src_tokens")  # positive ints when present: the exporter's defaults


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
    buffer = io.BytesIO()  # torch.save to a path aborts in C++ on a full disk; Python IO raises OSError
    torch.save(payload, buffer)
    with atomic_file(path) as tmp:
        write_bytes(tmp, buffer.getvalue())


def read_torch_file(path: Path, data: bytes | None, error: type[Seq2SeqExportError], what: str) -> Any:
    """torch.load(weights_only=True) of `data` (or the file); failure is one line that never advises
    loading without weights_only (that would run arbitrary code from the file)."""
    if data is None and not path.is_file():
        raise error(f"{path}: no such {what} file")
    try:
        with warnings.catch_warnings():  # e.g. "pickle protocol 4": a second line on stderr, and nothing to act on
            warnings.simplefilter("ignore")
            return torch.load(io.BytesIO(data) if data is not None else path, map_location="cpu", weights_only=True)
    except Exception as e:  # arbitrary bytes make torch.load raise almost anything (KeyError, EOFError, ...)
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(e))
        if isinstance(e, pickle.UnpicklingError) and found:
            why = f"it holds Python objects ({found.group(1)[:80]}) other than tensors and plain data, never loaded"
        else:
            why = f"truncated or not a torch file ({type(e).__name__})"
        raise error(f"{path}: not a readable {what}: {why}; pass a file written by "
                    f"s2s-train, s2s-import or torch.save(model.state_dict())") from None


def load_checkpoint(path: str | os.PathLike, data: bytes | None = None) -> Checkpoint:
    """Read and validate a checkpoint (from `data` when given, errors still naming `path`); any problem
    is a one-line CheckpointError naming the file, raised before a tensor is used."""
    path = Path(path)
    raw = read_torch_file(path, data, CheckpointError, "checkpoint")
    if not isinstance(raw, dict) or "format_version" not in raw:
        raise CheckpointError(f"{path}: not a seq2seq-export checkpoint (no format_version field)")
    version = raw["format_version"]
    if version != CHECKPOINT_FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {version!r:.40} is not supported (this version reads "
            f"{CHECKPOINT_FORMAT_VERSION}); re-create it with a matching seq2seq-export"
        )
    missing = [k for k in ("model_config", "vocabularies", "state_dict") if k not in raw]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks field(s) {', '.join(missing)}")
    check_tensor_mapping(raw["state_dict"], str(path), CheckpointError)
    check_vocabularies(raw["vocabularies"], path)
    try:
        config = ModelConfig.from_dict(raw["model_config"])
        text = TextPipeline.from_dict(raw["vocabularies"])
    except Seq2SeqExportError as e:
        raise CheckpointError(f"{path}: {e}") from None
    if len(text.src) != config.src_vocab_size or len(text.tgt) != config.tgt_vocab_size:
        raise CheckpointError(
            f"{path}: vocabulary sizes ({len(text.src)}, {len(text.tgt)}) do not match the model config "
            f"({config.src_vocab_size}, {config.tgt_vocab_size})"
        )
    shapes = check_model_size(config, str(path), CheckpointError)
    check_weights(raw["state_dict"], shapes, str(path), CheckpointError)
    training = raw.get("training")
    _check_training(training, path)
    return Checkpoint(config=config, text=text, state_dict=dict(raw["state_dict"]), training=training)


@functools.cache
def _text_validator(definition: str) -> Any:
    """The manifest schema's rule for one vocabulary ("vocab": types, token text, id ranges) or for the
    normalize steps ("normalize"): the same for checkpoints."""
    from jsonschema import Draft202012Validator

    schema = json.loads(resources.files(__package__).joinpath(MANIFEST_SCHEMA_FILE).read_text(encoding="utf-8"))
    return Draft202012Validator({"$defs": schema["$defs"], "$ref": f"#/$defs/{definition}"})


VOCABULARY_FIELDS = {"src": "vocab", "tgt": "vocab", "normalize": "normalize"}  # field -> its schema definition


def check_vocabularies(vocabularies: Any, path: Path, error: type[Seq2SeqExportError] = CheckpointError) -> None:
    """{"src": vocab, "tgt": vocab, "src_append_eos": bool, "normalize"?: [step]}, as the manifest schema says."""
    from jsonschema.exceptions import best_match

    if not isinstance(vocabularies, dict) or not {"src", "tgt", "src_append_eos"} <= set(vocabularies) <= \
            {"src", "tgt", "src_append_eos", "normalize"}:
        raise error(f"{path}: vocabularies must be a mapping of src, tgt, src_append_eos (and optionally normalize)")
    if not isinstance(vocabularies["src_append_eos"], bool):
        raise error(f"{path}: vocabularies.src_append_eos must be true or false, "
                              f"got {vocabularies['src_append_eos']!r:.40}")
    for key in (k for k in VOCABULARY_FIELDS if k in vocabularies):
        found = best_match(_text_validator(VOCABULARY_FIELDS[key]).iter_errors(vocabularies[key]))
        if found is not None:
            where = "".join(f"[{p!r}]" for p in found.absolute_path)
            raise error(f"{path}: vocabularies.{key}{where}: {found.message[:120]}")


def _check_training(training: Any, path: Path) -> None:
    """The training fields every reader uses (the exporter's defaults); resume checks the rest itself."""
    if training is None:
        return
    if not isinstance(training, dict):
        raise CheckpointError(f"{path}: training is a {type(training).__name__}, expected a mapping or nothing")
    for key in TRAINING_COUNTS:
        value = training.get(key)
        if value is not None and not is_int(value):
            raise CheckpointError(f"{path}: training[{key!r}] must be a positive integer, got {value!r:.60}")
