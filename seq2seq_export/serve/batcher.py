"""Dynamic batching: inputs of concurrent requests decoded together, off the event loop.

Every input admitted waits in one queue; a batch takes up to max_batch_size inputs that share search
settings, waiting at most max_wait_ms (from its oldest input's arrival) to fill, and is decoded on a
worker thread by Translator.translations, whose results never depend on the batch (batch invariance).
The queue is bounded: a request that would overflow it is refused at once (QueueFull -> 429).
"""

from __future__ import annotations

import asyncio
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..runtime.translator import Translation, Translator
from .metrics import ServeMetrics


class Search(NamedTuple):
    """Search settings of a request; only inputs with equal settings are batched together."""

    beam_size: int = 1
    n_best: int = 1
    length_penalty: float = 1.0


class QueueFull(Exception):
    """The queue cannot take a request's inputs now: retry later."""


def check_room(queued: int, n: int, max_queue: int) -> None:
    """QueueFull unless `n` more inputs fit beside the `queued` ones in a queue of `max_queue`."""
    if queued + n > max_queue:
        raise QueueFull(
            f"the queue holds {queued} of at most {max_queue} inputs and cannot take {n} more now: retry later"
        )


def warm_up(translator: Translator) -> None:
    """Decode one input once, so the backend's lazy set-up is not paid by a client's first request."""
    translator.translate_ids([[len(translator.text.src) - 1]])


def decode(translator: Translator, texts: list[str], search: Search) -> list[Translation]:
    """One batch's translations, scored as s2s-translate --json's (every answer carries its score)."""
    return translator.translations(
        texts,
        beam_size=search.beam_size,
        num_hypotheses=search.n_best,
        length_penalty=search.length_penalty,
        scores=True,
    )


@dataclass(eq=False)
class _Request:
    texts: list[str]
    search: Search
    arrived: float
    future: asyncio.Future
    results: list[Any] = field(default_factory=list)
    pending: int = 0


class Batcher:
    """The queue and the one task that batches and decodes it; start() and drain() inside the event loop."""

    def __init__(
        self, translator: Translator, max_batch_size: int, max_wait_ms: float, max_queue: int, metrics: ServeMetrics
    ) -> None:
        self.translator, self.metrics = translator, metrics
        self.max_batch_size, self.max_wait_s, self.max_queue = max_batch_size, max_wait_ms / 1000, max_queue
        self._waiting: deque[tuple[_Request, int]] = deque()  # (request, input index), oldest first
        self._queued = 0  # inputs admitted and not yet answered
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="s2s-decode")  # one decode at a time
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        """Decode one input once (the backend runs), then start taking requests."""
        await asyncio.get_running_loop().run_in_executor(self._executor, warm_up, self.translator)
        self._wakeup = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="s2s-batcher")

    async def drain(self) -> None:
        """Answer every admitted input, then stop the task and the worker thread."""
        while self._queued:
            await asyncio.sleep(0.01)
        if self._task is not None:
            self._task.cancel()
        self._executor.shutdown(wait=True)

    @property
    def queued(self) -> int:
        return self._queued

    async def submit(self, texts: list[str], search: Search) -> list[Translation]:
        """Translations of `texts` in order, decoded with whatever else is queued; QueueFull when they do not fit."""
        assert self._wakeup is not None, "Batcher.start() first"
        check_room(self._queued, len(texts), self.max_queue)
        loop = asyncio.get_running_loop()
        request = _Request(texts, search, loop.time(), loop.create_future(), [None] * len(texts), len(texts))
        self._waiting.extend((request, i) for i in range(len(texts)))
        self._admit(len(texts))
        self._wakeup.set()
        return await request.future

    def _admit(self, n: int) -> None:
        self._queued += n
        self.metrics.queue.set(self._queued)

    async def _run(self) -> None:
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self._waiting:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            deadline = self._waiting[0][0].arrived + self.max_wait_s
            while len(self._waiting) < self.max_batch_size and (left := deadline - loop.time()) > 0:
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), left)
                except TimeoutError:
                    break
            await self._decode(self._take())

    def _take(self) -> list[tuple[_Request, int]]:
        """Up to max_batch_size waiting inputs with the oldest one's search settings, oldest first."""
        search = self._waiting[0][0].search
        batch: list[tuple[_Request, int]] = []
        rest: deque[tuple[_Request, int]] = deque()
        for item in self._waiting:
            (batch if len(batch) < self.max_batch_size and item[0].search == search else rest).append(item)
        self._waiting = rest
        return batch

    async def _decode(self, batch: list[tuple[_Request, int]]) -> None:
        search = batch[0][0].search
        texts = [request.texts[i] for request, i in batch]
        self.metrics.batch_size.observe(len(batch))
        loop = asyncio.get_running_loop()
        try:
            found = await loop.run_in_executor(self._executor, decode, self.translator, texts, search)
        except Exception as e:  # noqa: BLE001 -- a backend failure: every request in the batch gets it (500), the service goes on
            for request, _ in batch:
                if not request.future.done():
                    request.future.set_exception(e)
        else:
            for (request, i), translation in zip(batch, found):
                request.results[i] = translation
                request.pending -= 1
                if not request.pending and not request.future.done():  # done: the client went away
                    request.future.set_result(request.results)
            self.metrics.inputs.inc(len(batch))
        finally:
            self._admit(-len(batch))
