"""Training: presets (TOML files beside this module), the loop, and validation metrics.

The presets and TrainConfig import without torch (the command line lists the presets in its help);
the loop and the metrics, which need torch, load on first use.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import TrainConfig, load_config, preset_names

if TYPE_CHECKING:
    from .loop import TrainResult, train
    from .metrics import Metrics, evaluate

_LAZY = {"TrainResult": "loop", "train": "loop", "Metrics": "metrics", "evaluate": "metrics"}

__all__ = ["Metrics", "TrainConfig", "TrainResult", "evaluate", "load_config", "preset_names", "train"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{_LAZY[name]}", __name__), name)
