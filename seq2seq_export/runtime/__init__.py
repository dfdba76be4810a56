"""Runtimes that drive an exported bundle. Importing this package never imports torch."""
from .core import (
    Backend,
    Carry,
    DecodeOptions,
    batch_indices,
    decode_in_batches,
    pad_batch,
    teacher_forced_steps,
)
from .greedy import greedy_decode
from .translator import BACKENDS, Translation, Translator, open_backend

__all__ = [
    "BACKENDS",
    "Backend",
    "Carry",
    "DecodeOptions",
    "Translation",
    "Translator",
    "batch_indices",
    "decode_in_batches",
    "greedy_decode",
    "open_backend",
    "pad_batch",
    "teacher_forced_steps",
]
