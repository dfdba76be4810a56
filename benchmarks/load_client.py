"""The HTTP/1.1 client of benchmarks/serve_load.py: asyncio connections on uvloop, responses parsed by httptools.

The clients run on the same two cores as the server they measure, so their own CPU time is taken from
it. Per one-word request at concurrency 64 (one run each, against s2s-serve --workers 2 on the cmudict
bundle): 64 http.client threads 0.27-0.29 ms, aiohttp on uvloop 0.18-0.22 ms, this 0.05-0.06 ms. uvloop
and httptools (the parser uvicorn uses) come with the serve extra.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httptools


class Connection(asyncio.Protocol):
    """One keep-alive connection to 127.0.0.1; post() sends a request and waits for its whole response."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.parser = httptools.HttpResponseParser(self)
        self.chunks: list[bytes] = []
        self.waiter: asyncio.Future | None = None
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as e:
            self._fail(ConnectionError(f"bad response: {e}"))
            self.transport.close()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        waiter, self.waiter = self.waiter, None
        body, self.chunks = b"".join(self.chunks), []
        if waiter is not None and not waiter.done():
            waiter.set_result((self.parser.get_status_code(), body))

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionError("the server closed the connection"))

    def _fail(self, error: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """(status, body) of one POST of a JSON body."""
        self.waiter = asyncio.get_running_loop().create_future()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.transport.write(head.encode() + body)  # one write: headers and body in one segment
        return await self.waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def connect(port: int) -> Connection:
    _, conn = await asyncio.get_running_loop().create_connection(lambda: Connection(port), "127.0.0.1", port)
    return conn
