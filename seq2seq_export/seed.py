"""Import a model trained with the seed tutorial's own code: a bare state_dict plus two vocabulary files.

The seed saves `torch.save(model.state_dict())` of its Seq2Seq (keys encoder.embedding.weight,
encoder.rnn.*_l0, decoder.embedding.weight, decoder.rnn.*, decoder.fc_out.*), which are exactly
our parameter names. A vocabulary file lists one token per line; the line number (from 0) is its
id. Dimensions and layer count are read from the weight shapes.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from .checkpoint import Checkpoint, check_vocabularies, read_torch_file
from .config import ModelConfig
from .constants import EOS, PAD, SOS, UNK
from .errors import SeedImportError, Seq2SeqExportError
from .vocab import TextPipeline, Vocab
from .weights import check_model_size, check_tensor_mapping, check_weights

_LAYER_KEY = re.compile(r"encoder\.rnn\.weight_ih_l(\d+)$")


def read_vocab_file(path: str | os.PathLike) -> list[str]:
    """One token per line, id = line number; only the line break is stripped (a token may be a space)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as e:
        raise SeedImportError(f"{path}: cannot read vocabulary file ({e.__class__.__name__}: {e})") from None
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last line; it is not an empty token
    tokens = [line[:-1] if line.endswith("\r") else line for line in lines]
    for i, tok in enumerate(tokens):
        if tok == "":
            raise SeedImportError(f"{path}: line {i + 1} is empty; every line must hold one token")
    if not tokens:
        raise SeedImportError(f"{path}: vocabulary file is empty")
    return tokens


def _load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    raw = read_torch_file(path, None, SeedImportError, "torch state_dict")
    if not isinstance(raw, dict):
        found = f"a {type(raw).__name__}"
    else:
        found = next(
            (f"{k!r:.60} holding a {type(v).__name__}" for k, v in raw.items() if not isinstance(v, torch.Tensor)), ""
        )
    if found:
        raise SeedImportError(
            f"{path}: expected torch.save(model.state_dict()), a mapping of names to tensors, found {found}"
        )
    check_tensor_mapping(raw, str(path), SeedImportError)
    return dict(raw)


def _config_from_weights(sd: dict[str, torch.Tensor], path: Path) -> ModelConfig:
    """Vocab sizes, embedding and hidden dims, layers, all from the weight shapes (matrices checked 2-D first)."""
    need = ("encoder.embedding.weight", "decoder.embedding.weight", "encoder.rnn.weight_hh_l0")
    missing = [k for k in need if k not in sd]
    if missing:
        raise SeedImportError(f"{path}: missing key(s) {', '.join(missing)}; is this the seed's Seq2Seq state_dict?")
    for key in need:
        if sd[key].dim() != 2:
            raise SeedImportError(f"{path}: {key} has shape {tuple(sd[key].shape)}, expected a matrix (2-D)")
    layers = sum(1 for k in sd if _LAYER_KEY.match(k))
    try:
        return ModelConfig(
            src_vocab_size=sd["encoder.embedding.weight"].shape[0],
            tgt_vocab_size=sd["decoder.embedding.weight"].shape[0],
            emb_dim=sd["encoder.embedding.weight"].shape[1],
            hidden_dim=sd["encoder.rnn.weight_hh_l0"].shape[1],
            num_layers=layers,
        )
    except Seq2SeqExportError as e:
        raise SeedImportError(f"{path}: {e}") from None


def _check_weights(sd: dict[str, torch.Tensor], cfg: ModelConfig, path: Path) -> None:
    """Sizes under the ceilings, then exactly the keys, shapes and dtype our model of that config has."""
    shapes = check_model_size(cfg, str(path), SeedImportError)
    check_weights(
        sd, shapes, str(path), SeedImportError, what="", hint=f" (for {cfg.num_layers} layer(s) read from the encoder)"
    )


def _special_ids(
    tokens: list[str], names: dict[str, str], required: tuple[str, ...], side: str, path: Path
) -> dict[str, int | None]:
    """{role: id or None}; a role the side needs must be present."""
    ids = {role: (tokens.index(tok) if tok in tokens else None) for role, tok in names.items()}
    for role in required:
        if ids[role] is None:
            raise SeedImportError(f"{path}: the {side} vocabulary has no {role} token {names[role]!r}, which it needs")
    return ids


def import_seed(
    state_dict_path: str | os.PathLike,
    src_vocab_file: str | os.PathLike,
    tgt_vocab_file: str | os.PathLike,
    *,
    pad: str = PAD,
    unk: str = UNK,
    sos: str = SOS,
    eos: str = EOS,
    src_eos: bool = False,
    src_tokenizer: str = "char",
    tgt_tokenizer: str = "char",
) -> Checkpoint:
    """Build a project Checkpoint (training=None) from a seed state_dict and its vocabularies.

    pad/unk/sos/eos name the special tokens by their text. The source needs pad (and eos with
    src_eos); the target needs pad, sos and eos; unk is optional on both. A named token found in
    neither vocabulary is an error (most likely a typo).
    """
    sd_path, src_path, tgt_path = Path(state_dict_path), Path(src_vocab_file), Path(tgt_vocab_file)
    sd = _load_state_dict(sd_path)
    cfg = _config_from_weights(sd, sd_path)
    _check_weights(sd, cfg, sd_path)
    src_tokens, tgt_tokens = read_vocab_file(src_path), read_vocab_file(tgt_path)
    for side, tokens, path, rows in (
        ("source", src_tokens, src_path, cfg.src_vocab_size),
        ("target", tgt_tokens, tgt_path, cfg.tgt_vocab_size),
    ):
        if len(tokens) != rows:
            raise SeedImportError(
                f"{path}: {len(tokens)} tokens but the {side} embedding has {rows} rows; wrong vocabulary file?"
            )
    names = {"pad": pad, "unk": unk, "sos": sos, "eos": eos}
    src_ids = _special_ids(src_tokens, names, ("pad", "eos") if src_eos else ("pad",), "source", src_path)
    tgt_ids = _special_ids(tgt_tokens, names, ("pad", "sos", "eos"), "target", tgt_path)
    for role, tok in names.items():
        if src_ids[role] is None and tgt_ids[role] is None:
            raise SeedImportError(f"{role} token {tok!r} is in neither {src_path} nor {tgt_path}; check --{role}")
    try:
        text = TextPipeline(
            Vocab(tuple(src_tokens), src_tokenizer, **{f"{r}_id": i for r, i in src_ids.items()}),
            Vocab(tuple(tgt_tokens), tgt_tokenizer, **{f"{r}_id": i for r, i in tgt_ids.items()}),
            src_append_eos=src_eos,
        )
    except Seq2SeqExportError as e:
        raise SeedImportError(f"{src_path}, {tgt_path}: {e}") from None
    check_vocabularies(text.to_dict(), Path(f"{src_path}, {tgt_path}"), SeedImportError)  # what a checkpoint may hold
    return Checkpoint(config=cfg, text=text, state_dict=sd, training=None)
