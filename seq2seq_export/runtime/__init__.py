"""Runtimes that drive an exported bundle. Importing this package never imports torch."""
from .greedy import Backend, decode_in_batches, greedy_decode, pad_batch
from .translator import BACKENDS, Translation, Translator, open_backend

__all__ = [
    "BACKENDS",
    "Backend",
    "Translation",
    "Translator",
    "decode_in_batches",
    "greedy_decode",
    "open_backend",
    "pad_batch",
]
