"""Input lines read with bounded memory, whatever the input: no line is ever held whole past a cap.

Only '\\n' ends a line ('\\r\\n' is one line end; a lone '\\r' is an ordinary character), as in the
Node and C++ drivers. A line longer than the cap keeps its first `max_chars` characters; the rest
is read in pieces of that size, counted in tokens and dropped.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import BinaryIO, Iterator, TextIO

from .constants import MAX_LINE_CHARS
from .vocab import TokenCounter


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
