"""The one IO description per exported graph: names, dtypes, shapes with symbolic dims.

Exporters, the manifest, runtimes and the verifier all read these; nothing else spells a name.
Pure Python so the torch-free runtime can use it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import ModelConfig

ENCODER, DECODER_STEP = "encoder", "decoder_step"  # the two graphs (file names: constants.py)
GRAPH_NAMES = (ENCODER, DECODER_STEP)

BATCH, SRC_LEN = "batch", "src_len"  # the symbolic (dynamic) dims

SRC_TOKENS, SRC_LENGTHS = "src_tokens", "src_lengths"
PREV_TOKENS, LOGITS, NEXT_TOKENS = "prev_tokens", "logits", "next_tokens"
HIDDEN, CELL = "hidden", "cell"  # recurrent state: every model's hidden, an LSTM's cell too
STATE_OUT_SUFFIX = "_out"  # decoder state input X comes back as output X_out
ENCODER_OUTPUTS, SRC_MASK = "encoder_outputs", "src_mask"  # attention memory (memory_names)
ATTENTION_KEYS = "attention_keys"  # Bahdanau memory: the key projection of encoder_outputs
ATTENTION = "attention"  # attention models' last decoder_step output: weights over source positions

# Where each manifest role lives: {role: (graph, "inputs" | "outputs")}. Drivers find IO by role;
# each role is named after the IO that plays it (attention: none without attention).
ROLE_SIDES = {
    SRC_TOKENS: (ENCODER, "inputs"),
    SRC_LENGTHS: (ENCODER, "inputs"),
    PREV_TOKENS: (DECODER_STEP, "inputs"),
    LOGITS: (DECODER_STEP, "outputs"),
    NEXT_TOKENS: (DECODER_STEP, "outputs"),
    ATTENTION: (DECODER_STEP, "outputs"),
}


def state_names(cfg: ModelConfig) -> tuple[str, ...]:
    """The recurrent state tensors the decoder carries from step to step."""
    return (HIDDEN, CELL) if cfg.rnn == "lstm" else (HIDDEN,)


def memory_names(cfg: ModelConfig) -> tuple[str, ...]:
    """Encoder outputs fed unchanged to every decoder step (attention models only; Bahdanau also
    gets its key projection of the encoder outputs, computed once per source)."""
    if cfg.attention == "none":
        return ()
    return (ENCODER_OUTPUTS, SRC_MASK) + ((ATTENTION_KEYS,) if cfg.attention == "bahdanau" else ())


def carried_entries(cfg: ModelConfig) -> dict[str, list[dict[str, str]]]:
    """The manifest's `state` and `memory` entries: how each carried tensor flows between the graphs."""
    return {
        "state": [
            {"encoder_output": s, "decoder_input": s, "decoder_output": s + STATE_OUT_SUFFIX} for s in state_names(cfg)
        ],
        "memory": [{"encoder_output": m, "decoder_input": m} for m in memory_names(cfg)],
    }


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str  # "int64" or "float32"
    shape: tuple[int | str, ...]  # str entries are dynamic dims

    def dynamic_axes(self) -> dict[int, str]:
        return {i: d for i, d in enumerate(self.shape) if isinstance(d, str)}

    def to_dict(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}

    @classmethod
    def from_dict(cls, d: dict) -> TensorSpec:
        return cls(d["name"], d["dtype"], tuple(d["shape"]))


@dataclass(frozen=True)
class GraphSpec:
    name: str  # one of GRAPH_NAMES
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]

    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        """{tensor name: {axis: dim name}} for every input and output (legacy exporter format)."""
        return {t.name: t.dynamic_axes() for t in self.inputs + self.outputs if t.dynamic_axes()}

    def to_dict(self) -> dict:
        return {"inputs": [t.to_dict() for t in self.inputs], "outputs": [t.to_dict() for t in self.outputs]}

    @classmethod
    def from_dict(cls, name: str, d: dict) -> GraphSpec:
        return cls(name, tuple(map(TensorSpec.from_dict, d["inputs"])), tuple(map(TensorSpec.from_dict, d["outputs"])))


def _state_specs(cfg: ModelConfig, suffix: str = "") -> tuple[TensorSpec, ...]:
    return tuple(
        TensorSpec(name + suffix, "float32", (cfg.num_layers, BATCH, cfg.hidden_dim)) for name in state_names(cfg)
    )


def _memory_specs(cfg: ModelConfig) -> tuple[TensorSpec, ...]:
    """Attention memory, produced once by the encoder and fed unchanged to every decoder step."""
    shapes = {
        ENCODER_OUTPUTS: (BATCH, SRC_LEN, cfg.encoder_output_dim),  # exact zeros at padded positions
        SRC_MASK: (BATCH, SRC_LEN),  # 1.0 at real source positions, 0.0 at padding
        ATTENTION_KEYS: (BATCH, SRC_LEN, cfg.hidden_dim),  # W_k encoder_outputs + b (the bias at padding)
    }
    return tuple(TensorSpec(name, "float32", shapes[name]) for name in memory_names(cfg))


def encoder_spec(cfg: ModelConfig) -> GraphSpec:
    """Encoder: padded source ids + true lengths -> the decoder's initial state (+ attention memory)."""
    return GraphSpec(
        ENCODER,
        inputs=(
            TensorSpec(SRC_TOKENS, "int64", (BATCH, SRC_LEN)),  # padded with the source <pad> id
            TensorSpec(SRC_LENGTHS, "int64", (BATCH,)),  # true lengths; 0 allowed (empty input)
        ),
        outputs=_state_specs(cfg) + _memory_specs(cfg),
    )


def decoder_step_spec(cfg: ModelConfig) -> GraphSpec:
    """One decoder step: previous token + state (+ memory) -> logits, greedy next token, new state
    (+ attention weights (batch, src_len), exactly 0 at padding, for attention models)."""
    attention = (TensorSpec(ATTENTION, "float32", (BATCH, SRC_LEN)),) if memory_names(cfg) else ()
    return GraphSpec(
        DECODER_STEP,
        inputs=(TensorSpec(PREV_TOKENS, "int64", (BATCH,)),) + _state_specs(cfg) + _memory_specs(cfg),
        outputs=(
            TensorSpec(LOGITS, "float32", (BATCH, cfg.tgt_vocab_size)),
            TensorSpec(NEXT_TOKENS, "int64", (BATCH,)),  # argmax of logits, so drivers can skip copying logits
        )
        + _state_specs(cfg, STATE_OUT_SUFFIX)
        + attention,
    )


def graph_specs(cfg: ModelConfig) -> dict[str, GraphSpec]:
    return {ENCODER: encoder_spec(cfg), DECODER_STEP: decoder_step_spec(cfg)}


def io_roles(cfg: ModelConfig) -> dict[str, str | None]:
    """The manifest's roles: {role: the graph input or output that plays it}; attention None without attention."""
    return {role: None if role == ATTENTION and not memory_names(cfg) else role for role in ROLE_SIDES}
