"""serve.access_log: the app's access log writes uvicorn's lines, in batches."""

from __future__ import annotations

import asyncio
import io
import logging

import pytest

pytest.importorskip("uvicorn")

from uvicorn.config import LOGGING_CONFIG
from uvicorn.logging import AccessFormatter
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

from seq2seq_export.serve.access_log import FLUSH_S, AccessLog


def scope(path="/v1/translate", query=b"", client=("127.0.0.1", 51234), method="POST"):
    return {"path": path, "query_string": query, "client": client, "method": method, "http_version": "1.1"}


def uvicorn_line(s, status):
    """The line uvicorn's own access log writes for this request (its formatter, without colours)."""
    fmt = AccessFormatter(LOGGING_CONFIG["formatters"]["access"]["fmt"], use_colors=False)
    args = (get_client_addr(s), s["method"], get_path_with_query_string(s), s["http_version"], status)
    return fmt.format(
        logging.LogRecord("uvicorn.access", logging.INFO, __file__, 0, '%s - "%s %s HTTP/%s" %d', args, None)
    )


CASES = [
    (scope(), 200),
    (scope(), 429),
    (scope("/nowhere", b"a=1&b=%20"), 404),
    (scope("/caf\u00e9 x", method="GET", client=None), 405),
    (scope("/healthz", method="GET", client=("::1", 8)), 599),  # a status without a phrase
]


def test_lines_are_uvicorns():
    out = io.StringIO()

    async def log():
        access = AccessLog(out)
        for s, status in CASES:
            access.add(s, status)
        assert out.getvalue() == ""  # held until the flush
        await asyncio.sleep(FLUSH_S * 2)
        return out.getvalue()

    assert asyncio.run(log()).splitlines() == [uvicorn_line(s, status) for s, status in CASES]


def test_flush_writes_what_is_held_and_a_closed_stream_is_no_error():
    out = io.StringIO()

    async def log():
        access = AccessLog(out)
        access.add(scope(), 200)
        access.flush()  # at shutdown: no wait for the timer
        first = out.getvalue()
        out.close()
        access.add(scope(), 200)
        access.flush()
        return first

    assert asyncio.run(log()) == uvicorn_line(scope(), 200) + "\n"
