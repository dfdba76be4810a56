"""The package's exceptions: each message is one line that says what, where, and what to do."""

from __future__ import annotations

import re


class Seq2SeqExportError(Exception):
    """Base class; the CLI turns any of these into a one-line error and a non-zero exit."""


class ConfigError(Seq2SeqExportError):
    """A bad option, preset or model configuration."""


class DataError(Seq2SeqExportError):
    """A dataset that cannot be read (malformed TSV line, empty split, unknown dataset)."""


class VocabError(Seq2SeqExportError):
    """A vocabulary that is inconsistent or does not fit the model."""


class CheckpointError(Seq2SeqExportError):
    """A checkpoint file that is missing, truncated, foreign or of an unknown format version."""


class SeedImportError(Seq2SeqExportError):
    """A seed-layout state_dict or vocabulary that does not fit together."""


class ExportError(Seq2SeqExportError):
    """An export that failed or produced a graph that fails its checks."""


class BundleError(Seq2SeqExportError):
    """A bundle that cannot be trusted: missing file, bad checksum, path escaping, bad manifest."""


class OutputError(Seq2SeqExportError):
    """A write that failed (full disk, read-only or missing directory): nothing half-written is left."""


class InputTooLong(Seq2SeqExportError):
    """An input with more tokens than the bundle's (or the option's) limit."""


class VerificationFailed(Seq2SeqExportError):
    """Exported graphs that do not behave like the eager model."""


def first_line(e: BaseException) -> str:
    """The first line of an exception's message, without terminal colour codes; its type's name if empty.

    For wrapping another library's multi-line error into one of ours, which must be one line.
    """
    lines = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip().splitlines()
    return lines[0].strip() if lines else type(e).__name__


def is_int(value: object, low: int = 1, high: int | None = None) -> bool:
    """True for an int within [low, high] (no upper bound when high is None), never for a bool.

    The check behind every count, size, seed and id the library takes from a caller or a file.
    """
    return isinstance(value, int) and not isinstance(value, bool) and low <= value and (high is None or value <= high)
