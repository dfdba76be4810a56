"""Input lines read with bounded memory, whatever the input: no line is ever held whole past a cap.

Only '\\n' ends a line ('\\r\\n' is one line end; a lone '\\r' is an ordinary character), as in the
Node and C++ drivers. A line longer than the cap keeps its first `max_chars` characters; the rest
is read in pieces of that size, counted in tokens and dropped.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, TextIO

from .constants import MAX_LINE_CHARS
from .vocab import TokenCounter

TRANSLATE_CHUNK = 512  # lines translated and written per round: bounded memory, batches stay full
TRANSLATE_CHUNK_CHARS = 1 << 22  # and at most about this many characters per round, however long the lines


@dataclass(frozen=True)
class InputLine:
    number: int  # 1-based
    text: str  # the line without its end; only its first max_chars characters when the line was cut
    tokens: int | None = None  # a cut line's tokens, all of it counted; None when `text` is the whole line


def text_stream(binary: BinaryIO) -> TextIO:
    """UTF-8 (strict; a leading byte-order mark dropped) with '\\n' as the only line end, whatever the locale."""
    return io.TextIOWrapper(binary, encoding="utf-8-sig", errors="strict", newline="\n")


def _strip_end(piece: str) -> str:
    return piece[:-2] if piece.endswith("\r\n") else piece.removesuffix("\n")


def read_lines(stream: TextIO, kind: str, max_chars: int = MAX_LINE_CHARS) -> Iterator[InputLine]:
    """Every line of `stream`; a line cut at max_chars carries its token count under tokenizer `kind`."""
    number = 0
    while piece := stream.readline(max_chars):
        number += 1
        if piece.endswith("\n") or len(piece) < max_chars:
            text = _strip_end(piece)
            yield InputLine(number, text)
            continue
        yield _long_line(stream, number, piece, kind, max_chars)


def _long_line(stream: TextIO, number: int, head: str, kind: str, max_chars: int) -> InputLine:
    """The rest of a line whose first max_chars characters are `head`: counted piece by piece, dropped."""
    count = TokenCounter(kind)
    held, first, cut = head, True, False
    while piece := stream.readline(max_chars):
        if held.endswith("\r"):  # held back: followed by '\n' it is part of the line end, not a character
            held, piece = held[:-1], "\r" + piece
        count.add(held)
        if first:
            head, first = held, False
        ends = piece.endswith("\n")
        held = _strip_end(piece) if ends else piece
        cut = cut or bool(held)
        if ends:
            break
    count.add(held)
    return InputLine(number, head, count.tokens if cut else None)


def chunked(
    items: Iterable[Any],
    size: int = TRANSLATE_CHUNK,
    chars: int = TRANSLATE_CHUNK_CHARS,
    length: Callable[[Any], int] = lambda item: len(item[0]),
) -> Iterator[list[Any]]:
    """Lists of up to `size` items and about `chars` characters (`length` of each item: by default
    the length of its first field, the text), never reading ahead of the list being filled."""
    chunk: list[Any] = []
    held = 0
    for item in items:
        chunk.append(item)
        held += length(item)
        if len(chunk) == size or held >= chars:
            yield chunk
            chunk, held = [], 0
    if chunk:
        yield chunk


def truncation_note(label: str, tokens: int, limit: int) -> str:
    """What is reported for an input cut to fit (Translator.fit with truncate): `tokens` it had, `limit` it may have."""
    if tokens > limit:
        return f"{label}: truncated to {limit} tokens (it has {tokens})"
    return f"{label}: truncated to its first {MAX_LINE_CHARS} characters"
