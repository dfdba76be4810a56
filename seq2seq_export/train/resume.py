"""--resume: every field of last.pt the loop uses is checked before it is used; a damaged one is a
one-line CheckpointError naming the file and the field, with what to do."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import Checkpoint, load_checkpoint
from ..errors import CheckpointError, ConfigError, is_int
from ..weights import check_weights
from .config import TrainConfig

AFRESH = "start afresh with --force (replaces the run) or train into a new --out"
CURSOR_COUNTS = ("epoch", "batch", "step", "words")  # non-negative integers
CURSOR_SECONDS = ("elapsed_s", "train_s")  # non-negative finite numbers
ROW_COUNTS = ("step", "count")  # a validation row (history entry, best): integers ...
ROW_NUMBERS = ("epoch", "valid_loss", "exact_match", "token_error_rate")  # ... and finite numbers
ADAM_STATE = ("step", "exp_avg", "exp_avg_sq")  # per parameter, as Adam and AdamW (amsgrad off) keep it


class Damaged:
    """Raises the one-line error for a damaged field of one last.pt."""

    def __init__(self, path: Path):
        self.path = path

    def __call__(self, field: str, what: str) -> CheckpointError:
        return CheckpointError(f"{self.path}: {field}: {what}; {AFRESH}")

    def count(self, value: Any, field: str) -> None:
        if not is_int(value, 0):
            raise self(field, f"expected a non-negative integer, got {value!r:.60}")

    def number(self, value: Any, field: str) -> None:
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise self(field, f"expected a finite number, got {value!r:.60}")

    def mapping(self, value: Any, field: str, keys: tuple[str, ...]) -> dict:
        if not isinstance(value, dict):
            raise self(field, f"expected a mapping, got {type(value).__name__}")
        missing = [k for k in keys if k not in value]
        if missing:
            raise self(field, f"lacks {', '.join(missing)}")
        return value


def load_resumable(path: Path, cfg: TrainConfig) -> Checkpoint:
    """last.pt with its weights, settings, cursor, best row and history checked (optimizer and RNG: restore())."""
    if not path.exists():
        raise ConfigError(f"{path}: nothing to resume (no resumable last.pt); train without --resume")
    last = load_checkpoint(path)
    if not last.training or "cursor" not in last.training:
        raise ConfigError(f"{path}: nothing to resume (no resumable last.pt); train without --resume")
    bad, state = Damaged(path), last.training
    stored = state.get("train_config")
    if not isinstance(stored, dict):
        raise bad("train_config", f"expected a mapping, got {type(stored).__name__}")
    diffs = cfg.differences(TrainConfig.from_dict(stored, where=f"{path}: train_config"))
    if diffs:
        raise ConfigError(f"--resume with different settings than the interrupted run ({'; '.join(diffs)})")
    cursor = bad.mapping(state["cursor"], "cursor", CURSOR_COUNTS + CURSOR_SECONDS)
    for key in CURSOR_COUNTS:
        bad.count(cursor[key], f"cursor.{key}")
    for key in CURSOR_SECONDS:
        bad.number(cursor[key], f"cursor.{key}")
        if cursor[key] < 0:
            raise bad(f"cursor.{key}", f"expected a non-negative number, got {cursor[key]!r}")
    history = state.get("history")
    if not isinstance(history, list):
        raise bad("history", f"expected a list of validation rows, got {type(history).__name__}")
    for i, row in enumerate(history):
        _check_row(bad, row, f"history[{i}]")
    if "best" not in state:
        raise bad("best", "missing")
    if state["best"] is not None:
        _check_row(bad, state["best"], "best")
    return last


def _check_row(bad: Damaged, row: Any, field: str) -> None:
    bad.mapping(row, field, ROW_COUNTS + ROW_NUMBERS)
    for key in ROW_COUNTS:
        bad.count(row[key], f"{field}.{key}")
    for key in ROW_NUMBERS:
        bad.number(row[key], f"{field}.{key}")


def restore(
    path: Path,
    state: dict[str, Any],
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    tf_gen: torch.Generator,
    device: torch.device,
    steps_per_epoch: int,
) -> None:
    """Check and load the optimizer and RNG states, and the cursor against this dataset's epoch length."""
    bad = Damaged(path)
    if state["cursor"]["batch"] > steps_per_epoch:
        raise bad(
            "cursor.batch", f"{state['cursor']['batch']} is past the end of an epoch of {steps_per_epoch} batches"
        )
    _check_optimizer(bad, state.get("optimizer"), model, optimizer)
    try:
        optimizer.load_state_dict(state["optimizer"])
    except (ValueError, RuntimeError, KeyError, TypeError) as e:
        raise bad("optimizer", f"cannot be loaded ({type(e).__name__})") from None
    set_rng_state(bad, state.get("rng"), tf_gen, device)


def check_average(path: Path, state: dict[str, Any], model: torch.nn.Module) -> dict[str, Any]:
    """The stored weight average: an update count and one finite float32 tensor per parameter."""
    bad = Damaged(path)
    if "average" not in state:
        raise CheckpointError(f"{path}: ema_decay is set but the file holds no weight average; {AFRESH}")
    average = bad.mapping(state["average"], "average", ("updates", "shadow"))
    bad.count(average["updates"], "average.updates")
    shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
    check_weights(average["shadow"], shapes, str(path), CheckpointError, what="average.shadow", hint=f"; {AFRESH}")
    return average


def _check_optimizer(bad: Damaged, saved: Any, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Same groups, hyperparameter kinds and parameter ids as a fresh optimizer; per-parameter Adam moments
    of each parameter's shape, float32 and finite."""
    fresh = optimizer.state_dict()
    saved = bad.mapping(saved, "optimizer", ("state", "param_groups"))
    groups = saved["param_groups"]
    if not isinstance(groups, list) or len(groups) != len(fresh["param_groups"]):
        raise bad("optimizer.param_groups", f"expected a list of {len(fresh['param_groups'])} group(s)")
    for i, (group, ref) in enumerate(zip(groups, fresh["param_groups"])):
        group = bad.mapping(group, f"optimizer.param_groups[{i}]", tuple(ref))
        if group["params"] != ref["params"]:
            raise bad(f"optimizer.param_groups[{i}].params", "does not list this model's parameters")
        for key, value in ref.items():
            if key != "params" and not _same_kind(group[key], value):
                raise bad(f"optimizer.param_groups[{i}].{key}", f"expected {value!r}'s kind, got {group[key]!r:.60}")
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if not isinstance(saved["state"], dict):
        raise bad("optimizer.state", f"expected a mapping, got {type(saved['state']).__name__}")
    for index, entry in saved["state"].items():
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(params):
            raise bad("optimizer.state", f"key {index!r:.60} is not a parameter index below {len(params)}")
        entry = bad.mapping(entry, f"optimizer.state[{index}]", ADAM_STATE)
        step = entry["step"]
        if not isinstance(step, torch.Tensor) or step.dim() != 0 or not step.is_floating_point() or not step >= 0:
            raise bad(f"optimizer.state[{index}].step", "expected a non-negative scalar float tensor")
        moments = {k: entry[k] for k in ADAM_STATE[1:]}
        check_weights(
            moments,
            {k: tuple(params[index].shape) for k in moments},
            str(bad.path),
            CheckpointError,
            what=f"optimizer.state[{index}]",
            hint=f"; {AFRESH}",
        )
        if bool((entry["exp_avg_sq"] < 0).any()):
            raise bad(f"optimizer.state[{index}].exp_avg_sq", "holds negative values")


def _same_kind(value: Any, ref: Any) -> bool:
    """A hyperparameter of the fresh optimizer's kind: numbers finite, tuples of the same length."""
    if isinstance(ref, bool) or ref is None:
        return type(value) is type(ref)
    if isinstance(ref, (int, float)):
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if isinstance(ref, (tuple, list)):
        return isinstance(value, (tuple, list)) and len(value) == len(ref) and all(map(_same_kind, value, ref))
    return type(value) is type(ref)


def rng_state(tf_gen: torch.Generator, device: torch.device) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "teacher_forcing": tf_gen.get_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(bad: Damaged, state: Any, tf_gen: torch.Generator, device: torch.device) -> None:
    """Each stored generator state must be a 1-D uint8 tensor the generator accepts."""
    state = bad.mapping(state, "rng", ("torch", "teacher_forcing"))
    size = torch.get_rng_state().numel()
    setters = {"torch": torch.set_rng_state, "teacher_forcing": tf_gen.set_state}
    if device.type == "cuda" and "cuda" in state:
        setters["cuda"] = lambda s: torch.cuda.set_rng_state(s, device)
    for key, setter in setters.items():
        value = state[key]
        if (
            not isinstance(value, torch.Tensor)
            or value.dtype != torch.uint8
            or value.dim() != 1
            or (key != "cuda" and value.numel() != size)
        ):
            raise bad(f"rng.{key}", f"expected a 1-D uint8 tensor{'' if key == 'cuda' else f' of {size} bytes'}")
        try:
            setter(value)
        except RuntimeError:
            raise bad(f"rng.{key}", "is not a valid generator state") from None
