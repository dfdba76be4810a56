"""s2s-serve --ray: the same app (app.create_app) on Ray Serve, one copy per replica.

- Each replica unpacks the bundle's files, sent through Ray's object store (other nodes need only the
  package), into a private directory, loads and checks them once with the onnx backend (torch is never
  imported; the directory goes once the graphs are in memory) and serves app.create_app's routes,
  validation, limits, errors and metrics unchanged.
- Batching is Ray Serve's: RayBatcher puts each input of a request into the replica's @serve.batch
  queue (max_batch_size inputs, batch_wait_timeout_s = max_wait_ms / 1000); a batch is decoded in
  groups of equal search settings, one decode at a time, on a worker thread.
- Overload: a replica admits at most max_queue inputs and answers 429 with Retry-After beyond them, as
  the plain server does. Ray sends a replica at most max_queue + ONGOING_HEADROOM requests at once
  (max_ongoing_requests), so a full replica still receives the requests it refuses. Each proxy holds
  the requests it has not yet handed to a replica in a queue bounded (max_queued_requests) by what
  the replicas can take at once; beyond it Ray itself answers 429 with Retry-After
  (backpressure_config; its body is Ray's plain text, not our JSON), instead of Ray's default 503.
- /metrics are the answering replica's own (s2s_serve_replica_info{replica} names it); Ray's own
  metrics (ray_serve_*) cover the whole deployment.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from prometheus_client import Gauge
from ray import serve
from ray.serve.config import BackpressureConfig

from ..bulk_ray import bundle_files, connect, unpack_bundle
from ..errors import ConfigError, Seq2SeqExportError, first_line
from ..manifest import Bundle
from ..runtime.translator import Translation, Translator
from . import ServeConfig
from .app import RETRY_AFTER_S, create_app
from .batcher import Search, check_room, decode, warm_up
from .metrics import ServeMetrics

APP_NAME = "s2s-serve"  # the Serve application (and deployment) name on the cluster
# Requests a replica takes beyond those holding its max_queue inputs: the ones it refuses (429) and
# /healthz, /readyz and /metrics, answered at once while the queue is full.
ONGOING_HEADROOM = 64
SHUTDOWN_TIMEOUT_S = 60.0  # how long a stopping replica may take to answer the requests it holds


class RayServeFailed(Seq2SeqExportError):
    """Ray Serve could not start the app (cluster unreachable, port taken, a replica that fails)."""


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide the app runs on Ray (each one an s2s-serve option)."""

    host: str = "127.0.0.1"  # the proxies' address
    port: int = 8000  # the proxies' port
    replicas: int = 1  # copies of the app, each with its own bundle, queue and batches
    address: str | None = None  # the cluster to join [a local Ray started for the server]
    threads: int | None = None  # onnxruntime threads (and Ray CPUs) per replica [the library's; 1 CPU]
    access_log: bool = True  # Ray Serve's access log lines


class RayBatcher:
    """batcher.Batcher's interface (app.Queue) over Ray Serve's @serve.batch; one per replica process."""

    def __init__(
        self, translator: Translator, max_batch_size: int, max_wait_ms: float, max_queue: int, metrics: ServeMetrics
    ) -> None:
        self.translator, self.metrics, self.max_queue = translator, metrics, max_queue
        self._queued = 0  # inputs admitted and not yet answered
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="s2s-decode")  # one decode at a time
        handler: Any = self._batch  # @serve.batch's wrapper, typed by Ray as a plain callable
        handler.set_max_batch_size(max_batch_size)
        handler.set_batch_wait_timeout_s(max_wait_ms / 1000)
        replica = serve.get_replica_context().replica_id.unique_id
        info = Gauge(
            "s2s_serve_replica_info", "The Ray Serve replica that answered", ["replica"], registry=metrics.registry
        )
        info.labels(replica).set(1)

    @property
    def queued(self) -> int:
        return self._queued

    async def start(self) -> None:
        """Decode one input once (the backend runs)."""
        await asyncio.get_running_loop().run_in_executor(self._executor, warm_up, self.translator)

    async def drain(self) -> None:
        """Wait for every admitted input to be answered, then stop the worker thread."""
        while self._queued:
            await asyncio.sleep(0.01)
        self._executor.shutdown(wait=True)

    async def submit(self, texts: list[str], search: Search) -> list[Translation]:
        """Translations of `texts` in order, each input batched by Ray Serve; QueueFull when they do not fit."""
        check_room(self._queued, len(texts), self.max_queue)
        self._admit(len(texts))
        try:
            return list(await asyncio.gather(*(self._batch((text, search)) for text in texts)))
        finally:
            self._admit(-len(texts))

    def _admit(self, n: int) -> None:
        self._queued += n
        self.metrics.queue.set(self._queued)

    @serve.batch  # its sizes are set per replica in __init__
    async def _batch(self, items: list[tuple[str, Search]]) -> list[Translation]:
        """One Ray Serve batch, decoded in groups of equal search settings; results in item order."""
        groups: dict[Search, list[int]] = {}
        for i, (_, search) in enumerate(items):
            groups.setdefault(search, []).append(i)
        found: list[Any] = [None] * len(items)
        loop = asyncio.get_running_loop()
        for search, where in groups.items():
            self.metrics.batch_size.observe(len(where))
            texts = [items[i][0] for i in where]
            for i, translation in zip(
                where, await loop.run_in_executor(self._executor, decode, self.translator, texts, search)
            ):
                found[i] = translation
            self.metrics.inputs.inc(len(where))
        return found


class Replica:
    """A Ray Serve replica: the bundle unpacked, loaded and checked once; then app.create_app over it."""

    def __init__(self, files: list, config: ServeConfig, threads: int | None) -> None:
        with unpack_bundle(files[0], "s2s-serve-") as root:  # files: [ObjectRef], so Serve leaves it unresolved
            self.translator = Translator.from_bundle(root, "onnx", batch_size=config.max_batch_size, threads=threads)
        self.config = config

    def __serve_build_asgi_app__(self) -> Any:
        """The app Ray Serve runs in this replica (its lifespan starts the batcher)."""
        return create_app(self.translator, self.config, RayBatcher)


S2SServe = serve.deployment(name=APP_NAME)(serve.ingress()(Replica))


class RayService:
    """The app running on Ray Serve; stop() takes it down, and the Ray it started."""

    def __init__(self, ray: Any, started_ray: bool, shared: bool) -> None:
        self.ray, self.started_ray, self.shared = ray, started_ray, shared

    def stop(self) -> None:
        """Delete the app, its replicas answering every request they hold first; then stop Serve (unless
        it serves other apps) and a Ray it started."""
        try:
            serve.delete(APP_NAME)  # serve.shutdown alone stops the proxies before the replicas have answered
            if not self.shared:
                serve.shutdown()
        finally:
            if self.started_ray:
                self.ray.shutdown()


def start_on_ray(bundle: Bundle, config: ServeConfig, options: RayOptions) -> RayService:
    """Run the app on Ray Serve (joining or starting Ray) and return once every replica is ready."""
    import ray

    threads = options.threads or 1
    started = connect(ray, options.address, options.replicas * threads, log_to_driver=True)
    # This process's own Serve log lines only say what start_on_ray's caller says; Ray's warnings stay.
    logging.getLogger("ray.serve").setLevel(logging.WARNING)
    try:
        running = serve.status().applications
        if APP_NAME in running:
            raise ConfigError(
                f"an app named {APP_NAME!r} already runs on this Ray cluster: stop that s2s-serve first "
                f"(or `serve delete {APP_NAME}`)"
            )
    except BaseException:
        if started:
            ray.shutdown()
        raise
    service = RayService(ray, started, shared=bool(running))  # Serve serves other apps: leave it at exit
    try:
        serve.start(http_options={"host": options.host, "port": options.port})
        deployment = S2SServe.options(
            num_replicas=options.replicas,
            ray_actor_options={"num_cpus": threads},
            max_ongoing_requests=config.max_queue + ONGOING_HEADROOM,
            # A burst is queued here while replicas are picked: never refuse one they could take.
            max_queued_requests=options.replicas * (config.max_queue + ONGOING_HEADROOM),
            backpressure_config=BackpressureConfig(status_code=429, retry_after_s=RETRY_AFTER_S),
            graceful_shutdown_timeout_s=SHUTDOWN_TIMEOUT_S,
        )
        files = [ray.put(bundle_files(bundle))]
        serve.run(
            deployment.bind(files, config, options.threads),
            name=APP_NAME,
            route_prefix="/",
            logging_config={"enable_access_log": options.access_log},
        )
    except Exception as e:
        service.stop()
        raise RayServeFailed(
            f"Ray Serve could not start {APP_NAME} ({first_line(e)}): Ray's log lines above say why"
        ) from None
    except BaseException:
        service.stop()
        raise
    return service
