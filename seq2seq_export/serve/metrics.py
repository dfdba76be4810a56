"""The service's Prometheus metrics, in a registry of its own, and the middleware that counts requests.

With PROMETHEUS_MULTIPROC_DIR set (s2s-serve --workers sets it for its workers), prometheus_client
keeps the counts in files there, and /metrics adds up those of every process (its multiprocess mode).
"""

from __future__ import annotations

import os
import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from .access_log import AccessLog

METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"  # set: prometheus_client's multiprocess mode keeps its files there
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServeMetrics:
    """requests by path and status, request latency, batch sizes, queue depth, inputs translated."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()  # its own: two apps in one process never share counts
        r = self.registry
        self.requests = Counter(
            "s2s_serve_requests", "HTTP requests answered, by path and status", ["path", "status"], registry=r
        )
        self.latency = Histogram(
            "s2s_serve_request_seconds",
            "Time from request to response, by path",
            ["path"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "s2s_serve_batch_size", "Inputs decoded together in one batch", buckets=BATCH_BUCKETS, registry=r
        )
        self.queue = Gauge(
            "s2s_serve_queue_inputs",
            "Inputs admitted and not yet answered (waiting or decoding)",
            registry=r,
            multiprocess_mode="livesum",  # the sum over the workers alive
        )
        self.inputs = Counter("s2s_serve_inputs", "Inputs translated", registry=r)
        self.shared = bool(os.environ.get(METRICS_DIR))  # prometheus_client's own test

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition and its content type (every process's counts when shared)."""
        if not self.shared:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST

    def close(self) -> None:
        """The process stops serving: its live gauges (the queue) stop counting."""
        if self.shared:
            multiprocess.mark_process_dead(os.getpid())


class MetricsMiddleware:
    """Pure ASGI middleware: every HTTP response counted by path (known routes, else "other") and status,
    timed, and logged when an access log is given."""

    def __init__(self, app: Any, metrics: ServeMetrics, paths: frozenset[str], access_log: AccessLog | None) -> None:
        self.app, self.metrics, self.paths, self.access_log = app, metrics, paths, access_log
        # labels() validates and locks on every call: each child is looked up once, on first use
        self._counters: dict[tuple[str, int], Any] = {}
        self._timers: dict[str, Any] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"] if scope["path"] in self.paths else "other"
        start, status = time.perf_counter(), 500  # no response started: the app failed

        async def counted(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, counted)
        finally:
            counter = self._counters.get((path, status))
            if counter is None:
                counter = self._counters[path, status] = self.metrics.requests.labels(path, str(status))
            counter.inc()
            timer = self._timers.get(path)
            if timer is None:
                timer = self._timers[path] = self.metrics.latency.labels(path)
            timer.observe(time.perf_counter() - start)
            if self.access_log is not None:
                self.access_log.add(scope, status)
