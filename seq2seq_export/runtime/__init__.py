"""Runtimes that drive an exported bundle. Importing this package never imports torch."""

from .beam import beam_search
from .core import (
    Backend,
    Carry,
    DecodeOptions,
    Scored,
    batch_indices,
    decode_in_batches,
    log_softmax,
    pad_batch,
    teacher_forced_steps,
)
from .greedy import greedy_decode
from .translator import BACKENDS, Hypothesis, Translation, Translator, open_backend

__all__ = [
    "BACKENDS",
    "Backend",
    "Carry",
    "DecodeOptions",
    "Hypothesis",
    "Scored",
    "Translation",
    "Translator",
    "batch_indices",
    "beam_search",
    "decode_in_batches",
    "greedy_decode",
    "log_softmax",
    "open_backend",
    "pad_batch",
    "teacher_forced_steps",
]
