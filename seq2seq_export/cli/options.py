"""What every command shares: exits and one-line errors, the command class, and the common options."""

from __future__ import annotations

import codecs
import functools
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import click

from ..constants import DEVICES, MAX_THREADS
from ..errors import Seq2SeqExportError, VerificationFailed

EXIT_INTERRUPTED = 130  # 128 + SIGINT: what a shell reports for a program stopped by Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for `cmd | head` when head exits first
# -h as well as --help; every option's default in --help (options without one say it in their text).
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "show_default": True}

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


class InputError(click.ClickException):
    """One line on stderr, exit 2: the input could not be used."""

    exit_code = 2


class CheckFailed(click.ClickException):
    """One line on stderr, exit 1: the input was fine but a check failed."""

    exit_code = 1


class Interrupted(click.ClickException):
    """One line on stderr, exit 130: SIGINT (Ctrl-C)."""

    exit_code = EXIT_INTERRUPTED


class _Exits:
    """Every command and the group: arguments must be UTF-8; Ctrl-C and a closed stdout pipe end with
    their Unix exit codes."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        for i, arg in enumerate(args, 1):
            try:
                arg.encode("utf-8")
            except UnicodeEncodeError:  # bytes the locale could not decode, kept as surrogate escapes
                raise InputError(
                    f"argument {i} is not valid UTF-8 ({os.fsencode(arg)!r}): every argument, path or text, must be"
                ) from None
        return super().parse_args(ctx, args)  # type: ignore[misc]

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)  # type: ignore[misc]
        except KeyboardInterrupt:
            if sys.stderr.isatty():
                click.echo(err=True)  # end the terminal's "^C" line first
            raise Interrupted("interrupted") from None
        except BrokenPipeError:
            # Nobody reads any more: later writes (and the flush at exit) go to /dev/null, quietly.
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, sys.stdout.fileno())
            os.close(null)
            ctx.exit(EXIT_BROKEN_PIPE)


class Command(_Exits, click.Command):
    pass


class Group(_Exits, click.Group):
    pass


def command(name: str) -> Callable[[Callable[..., Any]], click.Command]:
    """@click.command with the project's exits, help options and shown defaults."""
    return click.command(name, cls=Command, context_settings=CONTEXT_SETTINGS)


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


class CommaList(click.ParamType):
    """'1,16,64' -> (1, 16, 64): items converted by `convert`, and each one of `choices` when given."""

    name = "list"

    def __init__(self, convert: Callable[[str], Any] = str, choices: tuple[str, ...] | None = None) -> None:
        self.item, self.choices = convert, choices

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return f"[{'|'.join(self.choices)}],..." if self.choices else "N,..."

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple:
        if isinstance(value, tuple):  # a default already converted
            return value
        try:
            items = tuple(self.item(v.strip()) for v in value.split(",") if v.strip())
        except ValueError:
            self.fail(f"expected a comma-separated list, got {value!r}", param, ctx)
        if not items:
            self.fail("the list is empty", param, ctx)
        unknown = [v for v in items if self.choices and v not in self.choices]
        if unknown:
            self.fail(f"{unknown[0]!r} is not one of {', '.join(map(repr, self.choices or ()))}.", param, ctx)
        return items


def bundle_option(help: str) -> Decorator:
    """--bundle DIR (required), passed as bundle_dir."""
    return click.option("--bundle", "bundle_dir", required=True, type=click.Path(path_type=Path), help=help)


def threads_option(default: int | None, help: str, minimum: int = 1) -> Decorator:
    """--threads N, bounded by MAX_THREADS (0 allowed where it means the library's default)."""
    return click.option("--threads", default=default, type=click.IntRange(minimum, MAX_THREADS), help=help)


def device_option(default: str | None, help: str) -> Decorator:
    return click.option("--device", default=default, type=click.Choice(DEVICES), help=help)


def decoding_options(where: str, reported: str) -> Decorator:
    """--batch-size, --max-len, --max-input-tokens and --truncate, as translate and bulk share them;
    `where` names what an over-long input's error points at, `reported` where a cut is reported."""
    from ..constants import DEFAULT_BATCH_SIZE, MAX_SRC_TOKENS_CEILING

    options = (
        click.option(
            "--batch-size",
            default=DEFAULT_BATCH_SIZE,
            type=int,
            help="Sequences per batch (sorted by length); results do not depend on it.",
        ),
        click.option("--max-len", type=int, help="Decoding steps at most per sequence [default: the bundle's]."),
        click.option(
            "--max-input-tokens",
            "max_src_tokens",
            type=click.IntRange(1, MAX_SRC_TOKENS_CEILING),
            help=f"Tokens at most per input, <eos> included, 1-{MAX_SRC_TOKENS_CEILING}; a longer input is an "
            f"error (exit 2) naming its {where}, unless --truncate [default: the bundle's].",
        ),
        click.option(
            "--truncate",
            is_flag=True,
            help=f"Cut an input over --max-input-tokens to its first tokens instead of stopping; each cut is "
            f"reported {reported}.",
        ),
    )

    def apply(fn: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            fn = option(fn)
        return fn

    return apply


def json_option(help: str) -> Decorator:
    """--json: a flag, always; the command writes JSON to standard output instead of text."""
    return click.option("--json", "as_json", is_flag=True, help=help)


def report_option(help: str) -> Decorator:
    """--report FILE: also write the JSON report to a file, atomically."""
    return click.option(
        "--report", "report_path", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path), help=help
    )


quiet_option = click.option(
    "--quiet",
    is_flag=True,
    help="No progress lines on stderr (they are shown only when stderr is a terminal, never in a pipe or a file).",
)


def progress_printer(quiet: bool) -> Callable[[str], None] | None:
    """The library's progress callback for a command: each stage as one stderr line with the time since
    the command started, only when stderr is a terminal and without --quiet; None (silent) otherwise."""
    if quiet or not sys.stderr.isatty():
        return None
    start = time.perf_counter()

    def show(note: str) -> None:
        click.echo(f"[{time.perf_counter() - start:5.1f} s] {note}", err=True)

    return show


expect_digest_option = click.option(
    "--expect-digest",
    metavar="sha256:HEX",
    help="Refuse the bundle (exit 2) unless its digest is this one: pin a bundle with what s2s-export or "
    "s2s-verify --digest printed.",
)


def text_stdout() -> TextIO:
    """Standard output for text, UTF-8 where a misconfigured locale says ASCII (PYTHONIOENCODING=ascii)."""
    out = sys.stdout
    if codecs.lookup(getattr(out, "encoding", None) or "ascii").name == "ascii" and hasattr(out, "reconfigure"):
        out.reconfigure(encoding="utf-8")
    return out


def emit_report(text: str, as_json: bool, report_path: Path | None, table: Callable[[], str]) -> None:
    """The JSON report to --report FILE (atomically: a reader never sees half of it), then the JSON
    (with --json) or the table on standard output."""
    if report_path is not None:
        from ..fsutil import atomic_file

        with atomic_file(report_path, option="--report") as tmp:
            tmp.write_text(text, encoding="utf-8")
    click.echo(text.rstrip("\n") if as_json else table())
