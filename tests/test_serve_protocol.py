"""serve.protocol: the writes of one event-loop step leave the server as one send, on a real socket."""

from __future__ import annotations

import asyncio
import socket

import pytest

pytest.importorskip("uvicorn")
pytest.importorskip("httptools")

from seq2seq_export.serve.protocol import CoalescingTransport


@pytest.fixture(params=["asyncio", "uvloop"])
def loop_factory(request):
    if request.param == "uvloop":  # the loop uvicorn runs s2s-serve on
        return pytest.importorskip("uvloop").new_event_loop
    return asyncio.new_event_loop


def run_with_socket(loop_factory, body):
    """body(transport wrapped in CoalescingTransport, peer socket) inside a running loop."""

    async def main():
        ours, peer = socket.socketpair()
        peer.setblocking(False)
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_connection(asyncio.Protocol, sock=ours)
        try:
            return await body(CoalescingTransport(transport, loop), peer)
        finally:
            transport.close()
            peer.close()

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(main())


def test_writes_of_one_step_leave_together_after_it(loop_factory):
    async def body(transport, peer):
        transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        transport.write(b"ok")
        with pytest.raises(BlockingIOError):  # nothing sent while the step runs
            peer.recv(1024)
        await asyncio.sleep(0.05)
        return peer.recv(1024), transport.is_closing()

    assert run_with_socket(loop_factory, body) == (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", False)


def test_close_sends_what_is_held_first(loop_factory):
    async def body(transport, peer):
        transport.write(b"last words")
        transport.close()
        await asyncio.sleep(0.05)
        return peer.recv(1024), peer.recv(1024)

    assert run_with_socket(loop_factory, body) == (b"last words", b"")  # then end of stream


def test_a_write_after_close_is_dropped(loop_factory):
    async def body(transport, peer):
        transport.close()
        transport.write(b"too late")
        await asyncio.sleep(0.05)
        return peer.recv(1024)

    assert run_with_socket(loop_factory, body) == b""
