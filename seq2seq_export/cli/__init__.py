"""The command-line layer: parse options, call the library, format results. Nothing else.

Exit codes, for every command (console script or `python -m seq2seq_export`):
  0    success;
  1    a check failed (s2s-verify found a difference, s2s-bench saw backends disagree);
  2    unusable input (bad option, file, bundle, checkpoint, or an input over the token limit),
       reported as one line on stderr;
  130  interrupted (SIGINT, Ctrl-C): one line on stderr, no traceback; s2s-train first saves last.pt;
  141  standard output closed early (`s2s-translate ... | head -1`): quiet, as a shell reports a
       process ended by SIGPIPE.
Heavy imports (torch above all) happen inside commands, so `s2s-translate --backend onnx` never
imports torch. One module per command (export holds import too); options.py holds what they share.
"""

from __future__ import annotations

import click

from .bench import bench_cmd
from .bulk import bulk_cmd
from .export import export_cmd, import_cmd
from .options import (
    CONTEXT_SETTINGS,
    EXIT_BROKEN_PIPE,
    EXIT_INTERRUPTED,
    CheckFailed,
    Group,
    InputError,
)
from .serve import serve_cmd
from .train import train_cmd
from .translate import TRANSLATE_CHUNK, translate_cmd
from .verify import verify_cmd

__all__ = [
    "EXIT_BROKEN_PIPE",
    "EXIT_INTERRUPTED",
    "TRANSLATE_CHUNK",
    "CheckFailed",
    "InputError",
    "bench_cmd",
    "bulk_cmd",
    "export_cmd",
    "import_cmd",
    "main",
    "serve_cmd",
    "train_cmd",
    "translate_cmd",
    "verify_cmd",
]


@click.group(cls=Group, context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="seq2seq-export")
def main() -> None:
    """seq2seq-export: train, export, translate, verify, benchmark and serve GRU seq2seq models.

    Each command is also installed as a console script (s2s-train, s2s-export, ...).
    """


for _command in (train_cmd, import_cmd, export_cmd, translate_cmd, bulk_cmd, verify_cmd, bench_cmd, serve_cmd):
    main.add_command(_command)
