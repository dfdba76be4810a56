"""How s2s-serve runs the app on uvicorn: one process, or N workers on one listening socket.

The socket is bound first, before the bundle is loaded, so a port in use is one line at once.

One server process is capped by its interpreter lock: its event loop and its decode thread share it,
and the decoder lets go of it only inside the backend (docs/serve.md). With --workers, uvicorn's
multiprocess supervisor starts N workers that accept on the socket; each loads and checks the bundle,
and serves the same app (create_app) with its own batcher and queue. A worker that dies is
replaced; one that cannot start stops the server.

Metrics add up over the workers through prometheus_client's multiprocess mode: each worker writes
its counts to files in a directory of this server's (PROMETHEUS_MULTIPROC_DIR), and /metrics, in
whichever worker answers, reads them all.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import sys
import tempfile
from dataclasses import dataclass
from typing import Any

import uvicorn
from prometheus_client import multiprocess
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from ..errors import ConfigError, Seq2SeqExportError, first_line
from ..manifest import Bundle, load_bundle
from ..runtime.translator import Translator
from . import ServeConfig
from .metrics import METRICS_DIR


class WorkerFailed(ConfigError):
    """A worker could not load the bundle and start serving."""


class ListenFailed(ConfigError):
    """The server cannot listen on its host and port."""


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port (as uvicorn binds one), or ListenFailed in one line."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise ListenFailed(
            f"cannot listen on {host}:{port}: {e.strerror or e}: choose another --port or --host, "
            "or stop the process that holds it"
        ) from None
    sock.set_inheritable(True)  # the workers accept on it
    name = f"[{host}]" if ":" in host else host
    logging.getLogger("uvicorn.error").info(
        "Uvicorn running on http://%s:%d (Press CTRL+C to quit)", name, sock.getsockname()[1]
    )
    return sock


def run_server(app: Any, sock: socket.socket, **uvicorn_options: Any) -> None:
    """Serve `app` in this process on `sock` until SIGTERM or Ctrl-C (uvicorn re-raises the signal).

    uvicorn_options: uvicorn.Config's (http, log_level, ...).
    """
    uvicorn.Server(uvicorn.Config(app, **uvicorn_options)).run(sockets=[sock])


def service(bundle: Bundle, backend: str, threads: int | None, config: ServeConfig) -> Any:
    """The app over `bundle` (its lifespan warms the decoder up before the first request)."""
    from . import create_app

    translator = Translator.from_bundle(bundle, backend, batch_size=config.max_batch_size, threads=threads)
    return create_app(translator, config)


@dataclass(frozen=True)
class WorkerApp:
    """What a worker builds its app from; uvicorn pickles it to each worker and calls it there (factory)."""

    bundle_dir: str
    digest: str  # the bundle the supervisor checked: a worker that finds other files stops
    backend: str
    threads: int | None
    config: ServeConfig

    def __call__(self) -> Any:
        try:
            bundle = load_bundle(self.bundle_dir, expect_digest=self.digest)
            return service(bundle, self.backend, self.threads, self.config)
        except (Seq2SeqExportError, OSError) as e:
            # uvicorn's supervisor stops the server on this exit status instead of restarting the worker
            print(f"Error: worker {os.getpid()}: {first_line(e)}", file=sys.stderr, flush=True)
            sys.exit(STARTUP_FAILURE)


class Supervisor(Multiprocess):
    """uvicorn's supervisor, which also says whether Ctrl-C stopped it and clears the metrics of dead workers."""

    interrupted = False

    def handle_int(self) -> None:
        self.interrupted = True
        super().handle_int()

    def keep_subprocess_alive(self) -> None:
        before = {p.pid for p in self.processes}
        super().keep_subprocess_alive()
        for pid in before - {p.pid for p in self.processes}:
            if pid is not None:
                multiprocess.mark_process_dead(pid)  # its live gauges (the queue) no longer count

    def failed(self) -> bool:
        return any(p.exitcode == STARTUP_FAILURE for p in self.processes)


def default_threads(workers: int) -> int:
    """Compute threads per worker when not given: the machine's cores shared out (never oversubscribed)."""
    return max(1, (os.cpu_count() or 1) // workers)


def run_workers(app: WorkerApp, workers: int, sock: socket.socket, **uvicorn_options: Any) -> None:
    """Serve `app` in `workers` processes on `sock` until SIGTERM (returns) or Ctrl-C (KeyboardInterrupt).

    uvicorn_options: uvicorn.Config's (http, log_level, ...). WorkerFailed if a worker could not start.
    """
    metrics_dir = tempfile.mkdtemp(prefix="s2s-serve-metrics-")
    os.environ[METRICS_DIR] = metrics_dir  # before the workers start: they read it when they import the client
    try:
        config = uvicorn.Config(app, factory=True, workers=workers, **uvicorn_options)
        supervisor = Supervisor(config, sockets=[sock])
        supervisor.run()
    finally:
        del os.environ[METRICS_DIR]
        shutil.rmtree(metrics_dir, ignore_errors=True)
    if supervisor.failed():
        raise WorkerFailed("a server worker could not start (its error is above): nothing is served")
    if supervisor.interrupted:
        raise KeyboardInterrupt
