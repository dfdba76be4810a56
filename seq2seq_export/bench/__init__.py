"""s2s-bench: every backend side by side, against the eager model and the machine's GEMM limit."""

from .report import BenchResult, LoadRow, Row, TokenCheck, format_table
from .run import BACKENDS, BenchConfig, run_benchmark

__all__ = ["BACKENDS", "BenchConfig", "BenchResult", "LoadRow", "Row", "TokenCheck", "format_table", "run_benchmark"]
