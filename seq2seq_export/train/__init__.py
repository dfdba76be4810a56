"""Training: presets (TOML files beside this module), the loop, and validation metrics."""
from .config import TrainConfig, load_config, preset_names
from .loop import TrainResult, train
from .metrics import Metrics, evaluate

__all__ = ["TrainConfig", "TrainResult", "Metrics", "evaluate", "load_config", "preset_names", "train"]
