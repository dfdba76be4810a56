"""The command-line layer: parse options, call the library, format results. Nothing else.

Exit codes, for every command: 0 success; 1 a check failed (e.g. s2s-verify found a difference);
2 unusable input (bad option, file, bundle or checkpoint), reported as one line on stderr.
Heavy imports (torch above all) happen inside commands, so `s2s-translate --backend onnx` never
imports torch.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import click

from .errors import Seq2SeqExportError, VerificationFailed


class InputError(click.ClickException):
    """One line on stderr, exit 2: the input could not be used."""

    exit_code = 2


class CheckFailed(click.ClickException):
    """One line on stderr, exit 1: the input was fine but a check failed."""

    exit_code = 1


def library_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the library's typed exceptions into one-line click errors with the documented exit codes."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except VerificationFailed as e:
            raise CheckFailed(str(e)) from None
        except Seq2SeqExportError as e:
            raise InputError(str(e)) from None

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="seq2seq-export")
def main() -> None:
    """seq2seq-export: train, export, translate, verify and benchmark GRU seq2seq models.

    Each command is also installed as a console script (s2s-train, s2s-export, ...).
    """
