"""ModelConfig: everything needed to rebuild a model; it travels inside every checkpoint and manifest.

Pure Python (no torch), so runtimes and the IO spec can read it without importing torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from .errors import ConfigError, is_int

RNN_TYPES = ("gru", "lstm")
ATTENTION_TYPES = ("none", "bahdanau", "luong")
ATTENTION_SCORES = ("general", "dot")  # Luong scores: h^T W k, or h^T k


@dataclass(frozen=True)
class ModelConfig:
    src_vocab_size: int  # rows of encoder.embedding
    tgt_vocab_size: int  # rows of decoder.embedding and outputs of decoder.fc_out
    emb_dim: int = 256  # embedding size, both sides
    hidden_dim: int = 512  # recurrent state size, shared by encoder and decoder
    num_layers: int = 1  # stacked recurrent layers, both sides
    dropout: float = 0.0  # on embeddings and between layers, training only
    rnn: str = "gru"  # recurrent cell type: gru | lstm
    reverse_source: bool = False  # encoder reads each source backwards (inside its true length)
    bidirectional_encoder: bool = False  # encoder reads both ways; a learned bridge feeds the decoder
    attention: str = "none"  # none | bahdanau (additive) | luong (multiplicative, after the RNN step)
    attention_score: str = "general"  # luong only: general | dot (dot needs encoder_output_dim == hidden_dim)
    encoder_hidden_dim: int | None = None  # encoder state size per direction; None = hidden_dim (bidirectional only)

    def __post_init__(self) -> None:
        for name in ("src_vocab_size", "tgt_vocab_size", "emb_dim", "hidden_dim", "num_layers"):
            value = getattr(self, name)
            if not is_int(value):
                raise ConfigError(f"model config: {name} must be a positive integer, got {value!r:.60}")
        if self.encoder_hidden_dim is not None:
            value = self.encoder_hidden_dim
            if not is_int(value):
                raise ConfigError(
                    f"model config: encoder_hidden_dim must be a positive integer or null, got {value!r:.60}"
                )
            if value != self.hidden_dim and not self.bidirectional_encoder:
                raise ConfigError(
                    "model config: encoder_hidden_dim may differ from hidden_dim only with a "
                    "bidirectional encoder (its bridge maps the encoder's states to the decoder's size)"
                )
        if (
            not isinstance(self.dropout, (int, float))
            or isinstance(self.dropout, bool)
            or not 0.0 <= self.dropout < 1.0
        ):
            raise ConfigError(f"model config: dropout must be a number in [0, 1), got {self.dropout!r:.60}")
        for name in ("reverse_source", "bidirectional_encoder"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"model config: {name} must be true or false, got {getattr(self, name)!r:.60}")
        for name, allowed in (
            ("rnn", RNN_TYPES),
            ("attention", ATTENTION_TYPES),
            ("attention_score", ATTENTION_SCORES),
        ):
            if getattr(self, name) not in allowed:
                raise ConfigError(
                    f"model config: {name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r:.60}"
                )
        if self.attention_score == "dot" and self.attention != "luong":
            raise ConfigError(
                f"model config: attention_score 'dot' applies to luong attention only, not {self.attention!r}"
            )
        if self.attention_score == "dot" and self.encoder_output_dim != self.hidden_dim:
            raise ConfigError(
                "model config: luong 'dot' scores need encoder outputs of hidden_dim; "
                "a bidirectional encoder doubles them, so use attention_score 'general'"
            )

    @property
    def encoder_dim(self) -> int:
        """The encoder's state size per direction: encoder_hidden_dim, else hidden_dim."""
        return self.hidden_dim if self.encoder_hidden_dim is None else self.encoder_hidden_dim

    @property
    def encoder_output_dim(self) -> int:
        """Size of each encoder output vector: both directions concatenated when bidirectional."""
        return self.encoder_dim * (2 if self.bidirectional_encoder else 1)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        if not isinstance(d, dict):
            raise ConfigError(f"model config must be a mapping, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(k) for k in set(d) - known)
        if unknown:
            raise ConfigError(f"model config: unknown field(s) {', '.join(unknown)}")
        try:
            return cls(**d)
        except TypeError as e:
            raise ConfigError(f"model config: {e}") from None
