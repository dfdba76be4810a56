"""State dicts checked against a model config before any tensor is used (checkpoints, seed imports, resumes).

Sizes are refused before anything is allocated: the expected shapes come from the model built on
torch's meta device, which records shapes and allocates no memory.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from .config import ModelConfig
from .constants import MAX_LAYERS, MAX_MODEL_DIM, MAX_PARAMETERS, MAX_VOCAB_SIZE
from .errors import Seq2SeqExportError
from .model import Seq2Seq

WEIGHT_DTYPES = (torch.float32,)  # what the model computes in; every checkpoint we write holds float32
ErrorType = type[Seq2SeqExportError]


class _SkipInit(TorchFunctionMode):
    """Skips torch.nn.init's functions: on the meta device they only cost time (their first call imports
    torch._dynamo, over a second), and shapes are all we need."""

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        if getattr(func, "__module__", None) == "torch.nn.init":
            return args[0] if args else (kwargs or {})["tensor"]
        return func(*args, **(kwargs or {}))


def expected_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """The state_dict shapes of Seq2Seq(cfg), computed on the meta device (nothing allocated)."""
    with torch.device("meta"), _SkipInit():
        model = Seq2Seq(cfg)
    return {name: tuple(t.shape) for name, t in model.state_dict().items()}


def check_model_size(cfg: ModelConfig, where: str, error: ErrorType) -> dict[str, tuple[int, ...]]:
    """Refuse a config over the hard ceilings (constants.py) before allocation; return its expected shapes."""
    if cfg.num_layers > MAX_LAYERS:
        raise error(f"{where}: model config num_layers {cfg.num_layers} is over the ceiling {MAX_LAYERS}; refusing")
    shapes = expected_shapes(cfg)
    count = sum(math.prod(s) for s in shapes.values())
    size = f"needs {count * 4 / 1e9:.3g} GB of weights"
    ceilings = {
        "src_vocab_size": MAX_VOCAB_SIZE,
        "tgt_vocab_size": MAX_VOCAB_SIZE,
        "emb_dim": MAX_MODEL_DIM,
        "hidden_dim": MAX_MODEL_DIM,
        "encoder_hidden_dim": MAX_MODEL_DIM,
    }
    for name, ceiling in ceilings.items():
        value = getattr(cfg, name)
        if value is not None and value > ceiling:
            raise error(f"{where}: model config {name} {value} is over the ceiling {ceiling} ({size}); refusing")
    if count > MAX_PARAMETERS:
        raise error(
            f"{where}: the model config has {count} parameters ({size}), over the ceiling {MAX_PARAMETERS}; refusing"
        )
    return shapes


def check_tensor_mapping(sd: Any, where: str, error: ErrorType, what: str = "state_dict") -> None:
    """A dict of string keys to dense tensors, else a one-line error naming the first offender."""
    if not isinstance(sd, Mapping):
        raise error(f"{where}: {what} is a {type(sd).__name__}, expected a mapping of parameter names to tensors")
    for key, value in sd.items():
        if not isinstance(key, str):
            raise error(f"{where}: {what} key {key!r} is a {type(key).__name__}, expected a parameter name (string)")
        if not isinstance(value, torch.Tensor) or value.layout != torch.strided:
            raise error(f"{where}: {what}[{key!r}] is a {type(value).__name__}, expected a dense tensor")


def check_weights(
    sd: Mapping[str, Any],
    shapes: Mapping[str, tuple[int, ...]],
    where: str,
    error: ErrorType,
    what: str = "state_dict",
    hint: str = " for the model config",
) -> None:
    """Exactly the expected keys, each a finite float32 tensor of the expected shape. Errors read
    '{where}: {what}[key] ...{hint}' (with what "" they name the bare key)."""
    check_tensor_mapping(sd, where, error, what or "state_dict")
    missing = sorted(set(shapes) - set(sd))
    extra = sorted(set(sd) - set(shapes))
    if missing or extra:
        parts = ([f"missing key(s) {', '.join(missing)}"] if missing else []) + (
            [f"unexpected key(s) {', '.join(extra)}"] if extra else []
        )
        raise error(f"{where}: {what + ': ' if what else ''}{'; '.join(parts)}{hint}")
    for key, shape in shapes.items():
        tensor, label = sd[key], f"{what}[{key!r}]" if what else key
        if tuple(tensor.shape) != shape:
            raise error(f"{where}: {label} has shape {tuple(tensor.shape)}, expected {shape}{hint}")
        if tensor.dtype not in WEIGHT_DTYPES:
            accepted = ", ".join(str(d).removeprefix("torch.") for d in WEIGHT_DTYPES)
            raise error(
                f"{where}: {label} has dtype {str(tensor.dtype).removeprefix('torch.')}; "
                f"accepted: {accepted} (convert with .float())"
            )
        if not bool(torch.isfinite(tensor).all()):
            raise error(f"{where}: {label} holds NaN or infinite values")
