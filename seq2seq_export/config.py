"""ModelConfig: everything needed to rebuild a model; it travels inside every checkpoint and manifest.

Pure Python (no torch), so runtimes and the IO spec can read it without importing torch.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from .errors import ConfigError

RNN_TYPES = ("gru",)


@dataclass(frozen=True)
class ModelConfig:
    src_vocab_size: int  # rows of encoder.embedding
    tgt_vocab_size: int  # rows of decoder.embedding and outputs of decoder.fc_out
    emb_dim: int = 256  # embedding size, both sides
    hidden_dim: int = 512  # recurrent state size, shared by encoder and decoder
    num_layers: int = 1  # stacked recurrent layers, both sides
    dropout: float = 0.0  # on embeddings and between layers, training only
    rnn: str = "gru"  # recurrent cell type

    def __post_init__(self) -> None:
        for name in ("src_vocab_size", "tgt_vocab_size", "emb_dim", "hidden_dim", "num_layers"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"model config: {name} must be a positive integer, got {value!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ConfigError(f"model config: dropout must be in [0, 1), got {self.dropout!r}")
        if self.rnn not in RNN_TYPES:
            raise ConfigError(f"model config: rnn must be one of {', '.join(RNN_TYPES)}, got {self.rnn!r}")

    @property
    def state_names(self) -> tuple[str, ...]:
        """Names of the recurrent state tensors the decoder carries from step to step."""
        return ("hidden",)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        if not isinstance(d, dict):
            raise ConfigError(f"model config must be a mapping, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"model config: unknown field(s) {', '.join(unknown)}")
        try:
            return cls(**d)
        except TypeError as e:
            raise ConfigError(f"model config: {e}") from None
