"""Attention weights of decodes already made: which source tokens each output token attended to.

The greedy loop fetches only the tokens it needs; this re-runs a batch's decoder steps fed with the
tokens it emitted (teacher forcing on its own output reproduces its states), fetching the
`attention` output of every step. Any backend serves; numpy only (no torch).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ConfigError
from ..iospec import ATTENTION, DECODER_STEP, SRC_TOKENS
from .core import Backend, DecodeOptions, Seqs, teacher_forced_steps


def require_attention(backend: Backend) -> None:
    """ConfigError unless the backend's decoder step has an attention output."""
    if ATTENTION not in backend.graphs[DECODER_STEP].output_names:
        raise ConfigError(
            "attention weights need a model with attention; this bundle's model_config.attention is 'none'"
        )


def attention_weights(
    backend: Backend, seqs: Seqs, outputs: Sequence[Sequence[int]], opts: DecodeOptions
) -> list[np.ndarray]:
    """Per sequence, (T, S) float32: row t is the attention over its S source tokens when the
    decoder emitted outputs[t]; T = len(outputs[i]) (the <eos> step is not included)."""
    require_attention(backend)
    if not seqs:
        return []
    steps = max(len(o) for o in outputs)
    forced = np.full((len(seqs), steps + 1), opts.start_id, dtype=np.int64)  # (B, T + 1): <sos> + emitted tokens
    for i, o in enumerate(outputs):
        forced[i, 1 : len(o) + 1] = o
    calls = teacher_forced_steps(backend, seqs, forced[:, :steps], pad_id=opts.pad_id)
    _, encoder_feeds, _ = next(calls)
    rows = [out[ATTENTION] for _, _, out in calls]  # each (B, S)
    src_len = encoder_feeds[SRC_TOKENS].shape[1]
    weights = np.stack(rows, 1) if rows else np.zeros((len(seqs), 0, src_len), np.float32)  # (B, T, S)
    return [weights[i, : len(o), : len(s)] for i, (s, o) in enumerate(zip(seqs, outputs))]
