"""TrainConfig: every training choice in one frozen dataclass, read from a TOML preset plus overrides."""
from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

from ..config import ModelConfig
from ..constants import CLOCKS, DEFAULT_ARTIFACTS_DIR, DEVICES, LR_SCHEDULES, MAX_THREADS, TOKENIZERS
from ..errors import ConfigError, VocabError
from ..vocab import check_normalize

# Changing these between an interrupted run and its resumption would not continue the same run.
STOP_FIELDS = ("epochs", "max_minutes", "clock", "max_steps", "device", "threads", "out")
# The model options: every ModelConfig field but the vocabulary sizes (the data sets those). TrainConfig
# holds each under the same name, so a new model option is one field here and one in ModelConfig.
MODEL_FIELDS = tuple(f.name for f in fields(ModelConfig) if f.name not in ("src_vocab_size", "tgt_vocab_size"))


# The defaults are the shipped presets' shared settings (one torch thread, a CPU-clock budget, Adam 3e-3 with
# warm-up and cosine decay, ...), so a preset of three lines trains like the shipped ones, not 8x slower.
@dataclass(frozen=True)
class TrainConfig:
    preset: str = "custom"  # name of the preset this config came from (default output folder)
    dataset: str = "toy"  # toy | cmudict | tsv:FILE; "" = none (the preset needs --dataset)
    src_tokenizer: str = ""  # char | space; "" = the dataset's default
    tgt_tokenizer: str = ""  # char | space; "" = the dataset's default
    normalize: str = ""  # source normalization steps, comma-separated, applied in order: nfc, lower (ASCII); "" = none
    max_tokens: int = 0  # drop pairs with a side longer than this (0 = keep all)
    out: str = ""  # output folder; "" = artifacts/<preset>, or artifacts/<preset>-<dataset> for another dataset
    # The model options (MODEL_FIELDS), named as in ModelConfig; the defaults are the training's own.
    emb_dim: int = 64  # embedding size, both sides
    hidden_dim: int = 256  # recurrent state size
    num_layers: int = 1  # stacked recurrent layers, both sides
    dropout: float = 0.0  # embedding / inter-layer dropout while training
    reverse_source: bool = False  # encoder reads sources backwards (helps models without attention)
    rnn: str = "gru"  # recurrent cell: gru | lstm
    bidirectional_encoder: bool = False  # encoder reads both ways (bridged to the decoder's state)
    attention: str = "none"  # none | bahdanau | luong
    attention_score: str = "general"  # luong scores: general | dot
    encoder_hidden_dim: int = 0  # bidirectional encoder's state size per direction (0 = hidden_dim)
    epochs: int = 30  # upper bound on passes over the train split
    max_minutes: float = 30.0  # time budget for the whole run, resumptions included (0 = none) ...
    clock: str = "cpu"  # ... counted on: wall | cpu (this process's CPU time, all threads: fair on a busy machine)
    max_steps: int = 0  # stop after this many optimizer steps in total (0 = none)
    batch_size: int = 64  # pairs per optimizer step
    lr: float = 3e-3  # Adam peak learning rate
    lr_schedule: str = "cosine"  # constant | cosine (decays to lr*min_lr_ratio over epochs or time budget)
    min_lr_ratio: float = 0.02  # final learning rate as a fraction of lr (cosine only)
    warmup_steps: int = 200  # linear warm-up steps from 0 to lr
    teacher_forcing: float = 1.0  # probability of feeding the gold token; 1.0 = one fast GRU call
    clip: float = 1.0  # gradient-norm clip (0 = none)
    label_smoothing: float = 0.0  # training loss only: share of each target's probability spread over the vocabulary
    weight_decay: float = 0.0  # AdamW's decoupled decay of weight matrices and embeddings, not biases (0 = plain Adam)
    ema_decay: float = 0.0  # validate, keep and test an exponential moving average of the weights (0 = off; e.g. 0.999)
    seed: int = 0  # data order, initial weights, dropout, teacher-forcing draws (and the toy data)
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 1  # CPU threads for torch (0 = torch's default); 1 is fastest on a busy machine
    eval_batch_size: int = 1024  # batch size for validation loss and greedy decoding
    validate_every: int = 1  # validate (and maybe save the best checkpoint) every N epochs, and when the run stops

    def __post_init__(self) -> None:
        positive = ("emb_dim", "hidden_dim", "num_layers", "epochs", "batch_size", "eval_batch_size", "validate_every")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"train config: {name} must be >= 1, got {getattr(self, name)!r}")
        for name in ("max_tokens", "encoder_hidden_dim", "max_minutes", "max_steps", "warmup_steps", "clip", "threads"):
            if getattr(self, name) < 0:
                raise ConfigError(f"train config: {name} must be >= 0, got {getattr(self, name)!r}")
        if self.threads > MAX_THREADS:
            raise ConfigError(f"train config: threads must be at most {MAX_THREADS}, got {self.threads!r}")
        if not self.lr > 0:
            raise ConfigError(f"train config: lr must be > 0, got {self.lr!r}")
        if not 0.0 <= self.teacher_forcing <= 1.0:
            raise ConfigError(f"train config: teacher_forcing must be in [0, 1], got {self.teacher_forcing!r}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"train config: label_smoothing must be in [0, 1), got {self.label_smoothing!r}")
        if not 0.0 <= self.weight_decay < 1.0:
            raise ConfigError(f"train config: weight_decay must be in [0, 1), got {self.weight_decay!r}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"train config: ema_decay must be in [0, 1), got {self.ema_decay!r}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ConfigError(f"train config: min_lr_ratio must be in [0, 1], got {self.min_lr_ratio!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"train config: lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        if self.clock not in CLOCKS:
            raise ConfigError(f"train config: clock must be one of {', '.join(CLOCKS)}, got {self.clock!r}")
        for name in ("src_tokenizer", "tgt_tokenizer"):
            if getattr(self, name) not in ("", *TOKENIZERS):
                raise ConfigError(f"train config: {name} must be one of {', '.join(TOKENIZERS)}, got {getattr(self, name)!r}")
        if self.device not in DEVICES:
            raise ConfigError(f"train config: device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        normalize_steps(self.normalize)
        self.model_config(1, 1)  # the model options, checked where ModelConfig checks them

    @property
    def normalize_steps(self) -> tuple[str, ...]:
        """normalize as a tuple of steps: "nfc,lower" -> ("nfc", "lower")."""
        return normalize_steps(self.normalize)

    def model_config(self, src_vocab_size: int, tgt_vocab_size: int) -> ModelConfig:
        """The model these settings train, for the given vocabulary sizes: every model option by its name."""
        options = {name: getattr(self, name) for name in MODEL_FIELDS}
        options["encoder_hidden_dim"] = self.encoder_hidden_dim or None  # TOML has no null: 0 stands for it
        return ModelConfig(src_vocab_size=src_vocab_size, tgt_vocab_size=tgt_vocab_size, **options)

    @property
    def minutes(self) -> str:
        """How the budget's minutes print: 'CPU-min' on the CPU clock, 'min' on the wall clock."""
        return "CPU-min" if self.clock == "cpu" else "min"

    @property
    def out_dir(self) -> Path:
        return Path(self.out) if self.out else Path(DEFAULT_ARTIFACTS_DIR) / self.preset

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "train config") -> "TrainConfig":
        types = {f.name: type(f.default) for f in fields(cls)}
        unknown = sorted(set(d) - set(types))
        if unknown:
            raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)}; known: {', '.join(types)}")
        clean = {}
        for key, value in d.items():
            want = types[key]
            if want is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, want) or (want is int and isinstance(value, bool)):
                raise ConfigError(f"{where}: {key} must be of type {want.__name__}, got {value!r}")
            clean[key] = value
        return cls(**clean)

    def differences(self, other: "TrainConfig", ignore: tuple[str, ...] = STOP_FIELDS) -> list[str]:
        """Fields (outside `ignore`) whose values differ, as 'name: mine vs theirs'."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [f"{k}: {mine[k]!r} vs {theirs[k]!r}" for k in mine if k not in ignore and mine[k] != theirs[k]]


def normalize_steps(text: str) -> tuple[str, ...]:
    """Comma-separated normalize steps ("nfc,lower") as a tuple; a ConfigError names a bad one."""
    try:
        return check_normalize([s.strip() for s in text.split(",")] if text.strip() else [])
    except VocabError as e:
        raise ConfigError(f"train config: {e}") from None


def preset_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files(__package__).iterdir() if p.name.endswith(".toml"))


def load_config(preset: str, **overrides: Any) -> TrainConfig:
    """A preset (a name shipped in seq2seq_export/train/ or a path to a TOML file) with overrides.

    Overrides whose value is None are ignored, so CLI options that were not given keep the preset's.
    """
    if preset.endswith(".toml") or "/" in preset or "\\" in preset:
        path, name = Path(preset), Path(preset).stem
        try:
            raw = path.read_bytes()
        except OSError as e:
            raise ConfigError(f"{path}: cannot read the preset ({e.strerror or e})") from None
    else:
        if preset not in preset_names():
            raise ConfigError(f"unknown preset {preset!r}: use one of {', '.join(preset_names())} or a .toml path")
        path, name = Path(f"{preset}.toml"), preset
        raw = resources.files(__package__).joinpath(f"{preset}.toml").read_bytes()
    try:
        values = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not a valid TOML preset: {e}") from None
    values = {"preset": name, **values}
    cfg = TrainConfig.from_dict(values, where=str(path))
    given = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(given) - set(cfg.to_dict()))
    if unknown:
        raise ConfigError(f"unknown train option(s) {', '.join(unknown)}")
    final = TrainConfig.from_dict({**cfg.to_dict(), **given}, where="train options")
    if not final.out and final.dataset != cfg.dataset:
        # Another dataset than the preset's gets its own folder: a run never lands on the preset's own run.
        out = Path(DEFAULT_ARTIFACTS_DIR) / f"{final.preset}-{dataset_name(final.dataset)}"
        final = TrainConfig.from_dict({**final.to_dict(), "out": str(out)}, where="train options")
    return final


def dataset_name(spec: str) -> str:
    """'tsv:data/eng-fra.tsv' -> 'eng-fra'; 'toy' -> 'toy'."""
    return Path(spec[4:]).stem if spec.startswith("tsv:") else spec


__all__ = ["TrainConfig", "load_config", "preset_names"]
