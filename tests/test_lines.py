"""lines.read_lines and vocab.count_tokens: line ends, the character cap, and token counts without token lists."""

from __future__ import annotations

import io
import random
import sys

import pytest

from seq2seq_export.lines import read_lines, text_stream
from seq2seq_export.vocab import TokenCounter, count_tokens, first_tokens, tokenize

WHITESPACE = "".join(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace())


def lines(data: bytes, kind: str = "char", cap: int = 4) -> list[tuple]:
    return [(x.number, x.text, x.tokens) for x in read_lines(text_stream(io.BytesIO(data)), kind, cap)]


@pytest.mark.parametrize(
    "data, expected",
    [
        (b"\xef\xbb\xbfab\r\nc\rd\n\ng", [(1, "ab", None), (2, "c\rd", None), (3, "", None), (4, "g", None)]),
        (b"ab\xef\xbb\xbf\n", [(1, "ab\ufeff", None)]),  # only a leading BOM is dropped
        (b"abc\r", [(1, "abc\r", None)]),  # a lone '\r' at the end is a character too
        (b"abcd\r\nxy", [(1, "abcd", None), (2, "xy", None)]),  # '\r\n' split by the cap is still one line end
        (b"abcdefghij\nxy\r\n", [(1, "abcd", 10), (2, "xy", None)]),  # cut: the head, and the whole count
        (b"abcdefg\r\nxy", [(1, "abcd", 7), (2, "xy", None)]),
        (b"abcd\rx\n", [(1, "abcd", 6)]),
    ],
)
def test_line_ends_bom_and_the_cap(data, expected):
    assert lines(data) == expected


def test_a_cut_line_counts_words_across_pieces():
    assert lines(b"ab cd ef gh ij\nx y\n", "space", 3) == [(1, "ab ", 5), (2, "x y", None)]
    assert lines(b"abcdefghij k", "space", 4) == [(1, "abcd", 2)]


def test_count_tokens_equals_len_of_the_token_list():
    rng = random.Random(0)
    alphabet = "ab\u00e9\u4e2d" + WHITESPACE
    for size in [0, 1, 2, 5, 50, 70_000, 200_001]:  # the long ones cross TokenCounter's slices
        text = "".join(rng.choice(alphabet) for _ in range(size))
        for kind in ("char", "space"):
            assert count_tokens(text, kind) == len(tokenize(text, kind))
            cut = rng.randint(0, size)
            counter = TokenCounter(kind)
            counter.add(text[:cut])
            counter.add(text[cut:])
            assert counter.tokens == len(tokenize(text, kind))


def test_first_tokens_is_a_prefix_with_those_tokens():
    text = "  alpha\tbeta \u3000gamma delta "
    assert first_tokens(text, "space", 2) == "  alpha\tbeta"
    assert first_tokens(text, "space", 9) == text.rstrip()
    assert first_tokens(text, "char", 3) == "  a"
