"""The access log: uvicorn's line per request, written to standard output in batches.

uvicorn's own access log goes through the logging module (a record, a copied record, a formatter)
and writes and flushes once per request: about 0.1 ms of the event loop's time per request, a third
of the whole cost of a small request on a 2-core machine (docs/serve.md). Here a line is one f-string,
and the lines of every request answered within FLUSH_S go out in one write.
"""

from __future__ import annotations

import asyncio
import select
import sys
import urllib.parse
from http import HTTPStatus
from typing import Any, TextIO

FLUSH_S = 0.05  # a line reaches standard output at most this long after its response
PHRASES = {s.value: s.phrase for s in HTTPStatus}


class AccessLog:
    """Lines as uvicorn's (uncoloured): `INFO:     127.0.0.1:51000 - "POST /v1/translate HTTP/1.1" 200 OK`."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream  # None: sys.stdout when written
        self._lines: list[str] = []
        self._flush: asyncio.TimerHandle | None = None

    def add(self, scope: Any, status: int) -> None:
        """Log one response to the request of `scope`; inside the event loop."""
        client = scope.get("client")
        addr = f"{client[0]}:{client[1]}" if client else ""
        path = urllib.parse.quote(scope["path"])
        if scope.get("query_string"):
            path = f"{path}?{scope['query_string'].decode('ascii')}"
        line = f'INFO:     {addr} - "{scope["method"]} {path} HTTP/{scope["http_version"]}" {status} {PHRASES.get(status, "")}'
        self._lines.append(line + "\n")
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(FLUSH_S, self.flush)

    def flush(self) -> None:
        """Write the lines logged so far."""
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        if not self._lines:
            return
        lines, self._lines = self._lines, []
        stream = self.stream or sys.stdout
        try:
            for chunk in chunks(lines, select.PIPE_BUF):
                stream.write(chunk)
                stream.flush()
        except (OSError, ValueError):  # standard output closed: as with logging, the service goes on
            pass


def chunks(lines: list[str], size: int) -> list[str]:
    """Whole lines joined into pieces of at most `size` characters (a longer line alone): a pipe
    takes each piece in one write, never interleaved with another process's (s2s-serve --workers)."""
    pieces: list[str] = []
    current: list[str] = []
    length = 0
    for line in lines:
        if current and length + len(line) > size:
            pieces.append("".join(current))
            current, length = [], 0
        current.append(line)
        length += len(line)
    if current:
        pieces.append("".join(current))
    return pieces
