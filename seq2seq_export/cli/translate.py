"""s2s-translate: text in (arguments or streamed standard input), one output line per input line."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from ..constants import (
    BACKENDS,
    MAX_THREADS,
)
from ..lines import TRANSLATE_CHUNK, chunked, truncation_note
from .options import (
    InputError,
    bundle_option,
    command,
    decoding_options,
    expect_digest_option,
    json_option,
    library_errors,
    quiet_option,
    text_stdout,
    threads_option,
)


def _fitted(translator: Any, lines: Any, truncate: bool, where: str) -> Any:
    """(text as read, truncated, the line as given, its label) per input line: normalized, within the
    translator's token limit (or InputTooLong)."""
    for line in lines:
        label = f"{where} {line.number}"
        fit = translator.fit(line.text, truncate=truncate, where=label, tokens=line.tokens)
        if fit.truncated:
            click.echo(truncation_note(label, fit.tokens, translator.max_src_tokens), err=True)
        yield fit.text, fit.truncated, line.text, label


@command("translate")
@bundle_option("Bundle directory written by s2s-export (checked: version, paths, sha256).")
@click.option(
    "--backend",
    default="onnx",
    type=click.Choice(BACKENDS),
    help="onnx (onnxruntime, never imports torch), torchscript or eager (the bundle's reference checkpoint).",
)
@decoding_options("line", 'on stderr (and with --json as "truncated": true)')
@threads_option(None, f"Compute threads (onnxruntime intra-op / torch), 1-{MAX_THREADS} [default: the library's].")
@json_option(
    'Write one JSON object per line: {input, output, ids}, plus "unknown" (the input\'s symbols outside the '
    "source vocabulary) when it has any."
)
@click.option(
    "--beam-size",
    default=1,
    type=int,
    help="Hypotheses kept per input while searching; 1 is greedy search (the fastest).",
)
@click.option(
    "--n-best",
    "num_hypotheses",
    default=1,
    type=int,
    help="Hypotheses returned per input, at most --beam-size; with --json they are listed under "
    '"hypotheses", best first (plain output prints the best one).',
)
@click.option(
    "--length-penalty",
    default=1.0,
    type=float,
    help="A hypothesis' score is the sum of its tokens' log-probs (<eos> included) divided by "
    "length ** this; 0 gives the plain sum.",
)
@click.option(
    "--token-scores",
    is_flag=True,
    help="With --json: add \"token_scores\", each output token's log-prob (then <eos>'s).",
)
@click.option(
    "--attention-out",
    "attention",
    is_flag=True,
    help='With --json: add "attention", one row per output token of weights over the source tokens '
    "(models with attention).",
)
@expect_digest_option
@quiet_option
@click.argument("texts", nargs=-1, metavar="[TEXT]...")
@library_errors
def translate_cmd(
    bundle_dir: Path,
    backend: str,
    batch_size: int,
    max_len: int | None,
    max_src_tokens: int | None,
    truncate: bool,
    threads: int | None,
    as_json: bool,
    beam_size: int,
    num_hypotheses: int,
    length_penalty: float,
    token_scores: bool,
    attention: bool,
    expect_digest: str | None,
    quiet: bool,
    texts: tuple[str, ...],
) -> None:
    """Translate each TEXT, or each line of standard input, to one output line, in input order.

    Standard input is UTF-8, streamed in chunks (any size of input, constant memory); only \\n ends
    a line (\\r\\n too; a lone \\r is a character), a leading byte-order mark is dropped, and empty
    lines give empty outputs. A progress bar appears on stderr when it is a terminal.
    """
    from ..lines import InputLine, read_lines, text_stream
    from ..manifest import load_bundle
    from ..runtime.translator import Translator

    for flag, on in (("--attention-out", attention), ("--token-scores", token_scores)):
        if on and not as_json:
            raise click.UsageError(f"{flag} needs --json (it is written into each JSON line)")
    bundle = load_bundle(bundle_dir, expect_digest=expect_digest)
    translator = Translator.from_bundle(
        bundle, backend, batch_size=batch_size, max_len=max_len, max_src_tokens=max_src_tokens, threads=threads
    )
    translator.search_options(beam_size, num_hypotheses, length_penalty)  # bad values: one line before any input
    # --json reports scores (greedy then fetches each step's logits); plain output stays one line per input.
    search = dict(
        beam_size=beam_size,
        num_hypotheses=num_hypotheses,
        length_penalty=length_penalty,
        scores=as_json,
        token_scores=token_scores,
    )
    stdin = text_stream(sys.stdin.buffer)
    lines: Iterator[InputLine]
    if texts:
        lines, where, chunk = (InputLine(i, t) for i, t in enumerate(texts, 1)), "TEXT argument", TRANSLATE_CHUNK
    else:
        lines, where = read_lines(stdin, translator.text.src.tokenizer), "standard input line"
        chunk = 1 if stdin.isatty() else TRANSLATE_CHUNK  # interactive: answer each line at once
    unknown = UnknownTally()
    bar = None
    if sys.stderr.isatty() and not quiet:
        from tqdm import tqdm

        bar = tqdm(total=len(texts) or None, unit="line", file=sys.stderr)
    try:
        inputs = chunked(_fitted(translator, lines, truncate, where), chunk)
        _translate_stream(translator, inputs, as_json, attention, bar, unknown, search)
    except UnicodeDecodeError:
        raise InputError("standard input is not valid UTF-8") from None
    finally:
        if bar is not None:
            bar.close()
    if unknown.symbols:
        click.echo(unknown.summary(), err=True)


class UnknownTally:
    """Source symbols outside the vocabulary, counted over a whole run for the closing warning."""

    def __init__(self) -> None:
        self.inputs, self.symbols, self.first = 0, 0, ""

    def add(self, unknown: tuple[str, ...], label: str) -> None:
        if unknown:
            self.inputs += 1
            self.symbols += len(unknown)
            self.first = self.first or f"{unknown[0]!r} in {label}"

    def summary(self) -> str:
        inputs = f"{self.inputs} input{'s' if self.inputs > 1 else ''} had"
        symbols = f"{self.symbols} symbol{'s' if self.symbols > 1 else ''}"
        return (
            f"warning: {inputs} {symbols} outside the source vocabulary (first: {self.first}); the model read "
            'them as <unk>: check the input\'s language, script and case (--json lists them as "unknown")'
        )


def _hypothesis(h: Any, token_scores: bool) -> dict[str, Any]:
    record: dict[str, Any] = {"output": h.output, "ids": list(h.ids), "score": h.score}
    if token_scores:
        record["token_scores"] = list(h.token_scores or ())
    return record


def _translate_stream(
    translator: Any,
    chunks: Any,
    as_json: bool,
    attention: bool,
    bar: Any,
    unknown: UnknownTally,
    search: dict[str, Any],
) -> None:
    import json

    out = text_stdout()
    for batch in chunks:
        results = translator.translations([text for text, *_ in batch], attention=attention, normalized=True, **search)
        for t, (_, truncated, given, label) in zip(results, batch):
            unknown.add(t.unknown, label)
            if as_json:
                best = _hypothesis(t, search["token_scores"])
                record: dict[str, Any] = {
                    "input": t.input if truncated else given,
                    **best,
                    "hypotheses": [_hypothesis(h, search["token_scores"]) for h in t.hypotheses],
                }
                if attention:
                    record["attention"] = [[round(w, 6) for w in row] for row in t.attention]
                if truncated:
                    record["truncated"] = True
                if t.unknown:
                    record["unknown"] = list(t.unknown)
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
            else:
                out.write(t.output + "\n")
        out.flush()
        if bar is not None:
            bar.update(len(batch))
