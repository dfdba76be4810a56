"""Attention weights of decodes already made: which source tokens each output token attended to.

The greedy loop fetches only the tokens it needs; this re-runs a batch's decoder steps fed with the
tokens it emitted (teacher forcing on its own output reproduces its states), fetching the
`attention` output of every step. Any backend with run_graph serves; numpy only (no torch).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import ConfigError
from ..iospec import ATTENTION, PREV_TOKENS, SRC_LENGTHS, SRC_TOKENS
from .greedy import pad_batch


def require_attention(backend: Any) -> None:
    """ConfigError unless the backend's decoder step has an attention output."""
    if ATTENTION not in backend.graphs["decoder_step"].output_names:
        raise ConfigError("attention weights need a model with attention; this bundle's model_config.attention is 'none'")


def attention_weights(
    backend: Any, seqs: Sequence[Sequence[int]], outputs: Sequence[Sequence[int]], *, pad_id: int, start_id: int
) -> list[np.ndarray]:
    """Per sequence, (T, S) float32: row t is the attention over its S source tokens when the
    decoder emitted outputs[t]; T = len(outputs[i]) (the <eos> step is not included)."""
    require_attention(backend)
    if not seqs:
        return []
    src, lengths = pad_batch(seqs, pad_id)
    encoded = backend.run_graph("encoder", {SRC_TOKENS: src, SRC_LENGTHS: lengths})
    carried = {f.decoder_input: encoded[f.encoder_output] for f in backend.flows + backend.memory}
    steps = max(len(o) for o in outputs)
    forced = np.full((len(seqs), steps + 1), start_id, dtype=np.int64)  # (B, T + 1): <sos> + emitted tokens
    for i, o in enumerate(outputs):
        forced[i, 1 : len(o) + 1] = o
    rows = []
    for t in range(steps):
        out = backend.run_graph("decoder_step", {PREV_TOKENS: np.ascontiguousarray(forced[:, t]), **carried})
        rows.append(out[ATTENTION])  # (B, S)
        carried.update({f.decoder_input: out[f.decoder_output] for f in backend.flows})
    weights = np.stack(rows, 1) if rows else np.zeros((len(seqs), 0, src.shape[1]), np.float32)  # (B, T, S)
    return [weights[i, : len(o), : len(s)] for i, (s, o) in enumerate(zip(seqs, outputs))]
