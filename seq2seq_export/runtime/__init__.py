"""Runtimes that drive an exported bundle. Importing this package never imports torch."""
from .greedy import Backend, decode_in_batches, greedy_decode, pad_batch

__all__ = ["Backend", "decode_in_batches", "greedy_decode", "pad_batch"]
