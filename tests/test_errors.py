"""The helpers every module uses to phrase and check: first_line, is_int."""

from __future__ import annotations

import pytest

from seq2seq_export.errors import first_line, is_int


@pytest.mark.parametrize(
    "error, line",
    [
        (RuntimeError("one\ntwo\nthree"), "one"),
        (RuntimeError("\n  indented first\nsecond"), "indented first"),
        (RuntimeError("\x1b[31mred\x1b[0m text\nmore"), "red text"),
        (RuntimeError(""), "RuntimeError"),  # an empty message: the type's name, never an IndexError
        (KeyError(), "KeyError"),
        (OSError("   \n\n"), "OSError"),
    ],
)
def test_first_line(error, line):
    assert first_line(error) == line


@pytest.mark.parametrize(
    "value, low, high, ok",
    [
        (1, 1, None, True),
        (0, 1, None, False),
        (0, 0, None, True),
        (-1, 0, None, False),
        (256, 1, 256, True),
        (257, 1, 256, False),
        (True, 1, None, False),
        (False, 0, None, False),
        (1.0, 1, None, False),
        ("1", 1, None, False),
        (None, 1, None, False),
        (10**30, 1, None, True),
    ],
)
def test_is_int(value, low, high, ok):
    assert is_int(value, low, high) is ok
