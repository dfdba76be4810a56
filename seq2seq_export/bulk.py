"""Bulk translation: text files in, one output file per input (same base name, same lines, same order).

Each input is read as s2s-translate reads standard input (lines.read_lines: UTF-8, only '\\n' ends
a line, a leading byte-order mark dropped, bounded line length) and translated in chunks, so memory
stays bounded whatever the file's size. Every output line ends with '\\n', as s2s-translate prints
it: an input without a final newline still gives one output line per input line, an empty line an
empty output line, an empty file an empty output. Each output is written atomically
(fsutil.atomic_file): a failed run leaves complete outputs for the files it finished, nothing else.

Both engines share three steps over rows: read_rows (a file -> InRows), translate_rows (InRows ->
OutRows on a Translator) and write_outputs (OutRows in file and line order -> files, checked: every
line of every file exactly once). run_local chains them in this process; bulk_ray runs
translate_rows on a pool of Ray actors.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from .constants import DEFAULT_BATCH_SIZE
from .errors import ConfigError, DataError, Seq2SeqExportError
from .fsutil import atomic_file, output_error
from .lines import InputLine, chunked, read_lines, text_stream, truncation_note
from .manifest import Bundle
from .runtime.translator import Translator

Log = Callable[[str], None]
Progress = Callable[[int], None]


class IncompleteOutput(Seq2SeqExportError):
    """Translated lines that came back missing, repeated or out of place: that file is not written."""


@dataclass(frozen=True)
class Job:
    source: Path  # an input text file
    target: Path  # its output: OUTDIR / the input's base name


@dataclass(frozen=True)
class BulkOptions:
    """How each worker translates: the onnx backend, these limits, this many compute threads."""

    batch_size: int = DEFAULT_BATCH_SIZE  # sequences per backend call; results never depend on it
    max_len: int | None = None  # decoding steps at most [the bundle's]
    max_src_tokens: int | None = None  # tokens per input, <eos> included [the bundle's]
    truncate: bool = False  # cut an input over max_src_tokens instead of stopping
    threads: int | None = None  # onnxruntime intra-op threads per worker [the library's]

    def translator(self, bundle: str | os.PathLike | Bundle) -> Translator:
        return Translator.from_bundle(
            bundle,
            "onnx",
            batch_size=self.batch_size,
            max_len=self.max_len,
            max_src_tokens=self.max_src_tokens,
            threads=self.threads,
        )


class InRow(NamedTuple):
    """One input line on its way to a worker."""

    text: str  # the line without its end (its head when cut, see lines.InputLine)
    file: int  # index of its Job
    line: int  # 1-based; 0 marks an empty file, which has no line to translate
    tokens: int  # a cut line's token count (lines.InputLine.tokens); -1 for a whole line
    last: bool  # the file's last row
    error: str  # why the file cannot be read from here on ("" when fine); such a row is last


class OutRow(NamedTuple):
    """One translated line on its way back to the writer."""

    file: int
    line: int
    last: bool
    output: str
    note: str  # a truncation report ("" when none)
    error: str  # why this line could not be translated, or InRow.error


@dataclass(frozen=True)
class BulkResult:
    files: int
    lines: int
    seconds: float


def plan(inputs: Sequence[str | os.PathLike], outdir: str | os.PathLike) -> list[Job]:
    """One Job per input; every input readable, no two with the same base name, OUTDIR writable (made if missing)."""
    if not inputs:
        raise ConfigError("no INPUT file given: name at least one text file to translate")
    outdir = Path(outdir)
    seen: dict[str, Path] = {}
    jobs: list[Job] = []
    for source in map(Path, inputs):
        if not source.is_file():
            raise DataError(f"{source}: {'not a regular file' if source.exists() else 'no such input file'}")
        if not os.access(source, os.R_OK):
            raise DataError(f"{source}: not readable (permission denied)")
        if source.name in seen:
            raise ConfigError(
                f"{source}: same base name as {seen[source.name]}, and each output is "
                "OUTDIR/<base name>: rename one, or translate them in separate runs"
            )
        seen[source.name] = source
        target = outdir / source.name
        if target.exists() and target.resolve() == source.resolve():
            raise ConfigError(f"{source}: its output would replace it: choose another --output")
        jobs.append(Job(source, target))
    _check_writable(outdir)
    return jobs


def _check_writable(outdir: Path) -> None:
    """Make OUTDIR if missing and write a scratch file in it: a bad --output fails before any work."""
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=outdir):
            pass
    except OSError as e:
        raise output_error(outdir, e, "--output") from None


def read_rows(file: int, path: str | os.PathLike, kind: str) -> Iterator[InRow]:
    """The rows of input file number `file`: one per line (the last one marked), or one line-0 row
    for an empty file; a file that cannot be read or decoded ends with an error row."""
    done = 0  # lines read and passed on
    try:
        with open(path, "rb") as f:
            lines = read_lines(text_stream(f), kind)
            line = next(lines, None)
            if line is None:
                yield InRow("", file, 0, -1, True, "")
            while line is not None:
                following = next(lines, None)  # one line ahead: the last row says it is last
                yield _in_row(file, line, following is None)
                done, line = line.number, following
    except UnicodeDecodeError:
        yield InRow("", file, done + 1, -1, True, f"{path}: not valid UTF-8 (after line {done}): convert it to UTF-8")
    except OSError as e:
        yield InRow("", file, done + 1, -1, True, f"{path}: cannot read ({e.strerror or type(e).__name__})")


def _in_row(file: int, line: InputLine, last: bool) -> InRow:
    return InRow(line.text, file, line.number, -1 if line.tokens is None else line.tokens, last, "")


def translate_rows(translator: Translator, names: Sequence[str], rows: Sequence[InRow], truncate: bool) -> list[OutRow]:
    """Translate a block of rows (`names`: each file's name, for messages). An input over the token
    limit (without truncate) ends the block with its error row, as a reading error does."""
    kept: list[tuple[InRow, str, str]] = []  # (row, text to translate, note)
    for row in rows:
        if row.error or row.line == 0:
            kept.append((row, "", ""))
            continue
        label = f"{names[row.file]} line {row.line}"
        try:
            fit = translator.fit(
                row.text, truncate=truncate, where=label, tokens=None if row.tokens < 0 else row.tokens
            )
        except Seq2SeqExportError as e:
            kept.append((row._replace(error=str(e), last=True), "", ""))
            break
        note = truncation_note(label, fit.tokens, translator.max_src_tokens) if fit.truncated else ""
        kept.append((row, fit.text, note))
    todo = [i for i, (row, _, _) in enumerate(kept) if row.line and not row.error]
    done = translator.translations([kept[i][1] for i in todo], normalized=True)  # Fit.text: normalized already
    outputs = {i: t.output for i, t in zip(todo, done)}
    return [
        OutRow(row.file, row.line, row.last, outputs.get(i, ""), note, row.error)
        for i, (row, _, note) in enumerate(kept)
    ]


def write_outputs(jobs: Sequence[Job], rows: Iterable[OutRow], log: Log, progress: Progress | None = None) -> int:
    """Write each job's output from `rows`, which must come in file and line order; returns the lines
    written. A row with an error raises it; a missing, repeated or stray row raises IncompleteOutput."""
    rows = iter(rows)
    total = 0
    for index, job in enumerate(jobs):
        with atomic_file(job.target, option="--output") as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as out:
            total += _write_file(jobs, index, rows, out.write, log, progress)
    stray = next(rows, None)
    if stray is not None:
        raise IncompleteOutput(
            f"{_where(jobs, stray)} came back after every file was complete: "
            "a line was repeated on the way; do not trust this run's outputs"
        )
    return total


def _write_file(
    jobs: Sequence[Job],
    index: int,
    rows: Iterator[OutRow],
    write: Callable[[str], object],
    log: Log,
    progress: Progress | None,
) -> int:
    expected = 1
    for row in rows:
        if row.error:
            raise DataError(row.error)
        empty_file = row.line == 0 and expected == 1 and row.last
        if row.file != index or not (row.line == expected or empty_file):
            raise IncompleteOutput(
                f"{jobs[index].source}: expected line {expected}, got {_where(jobs, row)}: "
                "lines were lost or repeated on the way; this file was not written"
            )
        if row.note:
            log(row.note)
        if row.line:
            write(row.output + "\n")
            expected += 1
            if progress is not None:
                progress(1)
        if row.last:
            return expected - 1
    raise IncompleteOutput(f"{jobs[index].source}: lines from {expected} on never came back; this file was not written")


def _where(jobs: Sequence[Job], row: OutRow) -> str:
    name = jobs[row.file].source if 0 <= row.file < len(jobs) else f"file #{row.file}"
    return f"{name} line {row.line}"


def run_local(
    jobs: Sequence[Job],
    bundle: str | os.PathLike | Bundle,
    options: BulkOptions,
    log: Log,
    progress: Progress | None = None,
) -> BulkResult:
    """Translate every job in this process, file after file, chunk after chunk."""
    start = time.perf_counter()
    translator = options.translator(bundle)
    kind = translator.text.src.tokenizer
    names = [str(job.source) for job in jobs]

    def translated() -> Iterator[OutRow]:
        for index, job in enumerate(jobs):
            for block in chunked(read_rows(index, job.source, kind)):
                yield from translate_rows(translator, names, block, options.truncate)

    lines = write_outputs(jobs, translated(), log, progress)
    return BulkResult(len(jobs), lines, time.perf_counter() - start)
