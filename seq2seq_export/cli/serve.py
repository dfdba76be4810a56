"""s2s-serve: the HTTP translation service (seq2seq_export.serve) on uvicorn, or on Ray Serve (--ray)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from ..constants import BACKENDS, MAX_THREADS
from ..serve import ServeConfig
from .options import (
    InputError,
    bundle_option,
    command,
    expect_digest_option,
    library_errors,
    threads_option,
)

DEFAULT = ServeConfig()  # the defaults shown by --help (seq2seq_export.serve imports no server library)


@command("serve")
@bundle_option("Bundle directory written by s2s-export (checked: version, paths, sha256) before the server starts.")
@click.option("--host", default="127.0.0.1", help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", default=8000, type=click.IntRange(0, 65535), help="TCP port to listen on.")
@click.option(
    "--backend", default="onnx", type=click.Choice(BACKENDS), help="onnx (never imports torch), torchscript or eager."
)
@click.option(
    "--max-batch-size",
    default=DEFAULT.max_batch_size,
    type=click.IntRange(1, 4096),
    help="Inputs of concurrent requests decoded together at most.",
)
@click.option(
    "--max-wait-ms",
    default=DEFAULT.max_wait_ms,
    type=click.FloatRange(0, 10_000),
    help="How long a batch waits at most to fill, from its oldest input's arrival.",
)
@click.option(
    "--max-queue",
    default=DEFAULT.max_queue,
    type=click.IntRange(1),
    help="Inputs admitted and not yet answered at most (per replica with --ray); a request that does not fit "
    "gets 429 with Retry-After.",
)
@threads_option(
    None, f"Compute threads of the decoder (onnxruntime intra-op / torch), 1-{MAX_THREADS} [default: the library's]."
)
@click.option(
    "--max-inputs",
    default=DEFAULT.max_inputs,
    type=click.IntRange(1),
    help="Inputs per request at most (422 beyond); at most --max-queue.",
)
@click.option(
    "--max-input-chars",
    default=DEFAULT.max_input_chars,
    type=click.IntRange(1),
    help="Characters per input at most (422 beyond); the bundle's token limit applies too.",
)
@click.option(
    "--max-body-bytes",
    default=DEFAULT.max_body_bytes,
    type=click.IntRange(1),
    help="Request body size at most (413 beyond).",
)
@click.option(
    "--workers",
    default=1,
    type=click.IntRange(1, 256),
    help="Server processes on the one port, each loading the bundle with its own batcher and queue of "
    "--max-queue inputs; --threads defaults to the cores shared out between them.",
)
@click.option(
    "--access-log/--no-access-log",
    default=True,
    help="The access log: one line per request (on standard output, in uvicorn's format; with --ray, Ray Serve's).",
)
@click.option(
    "--ray",
    "on_ray",
    is_flag=True,
    help="Run on Ray Serve: --replicas copies of the app behind Ray's HTTP proxy, each batching with "
    "@serve.batch (needs the ray extra; the onnx backend only).",
)
@click.option(
    "--replicas",
    default=1,
    type=click.IntRange(1, 4096),
    help="With --ray: copies of the app, each loading the bundle once, with its own queue of --max-queue inputs.",
)
@click.option(
    "--ray-address",
    metavar="ADDR",
    envvar="RAY_ADDRESS",
    help="With --ray: the cluster to join (HEAD:6379); read from RAY_ADDRESS too "
    "[default: a local Ray started for the server].",
)
@expect_digest_option
@library_errors
def serve_cmd(
    bundle_dir: Path,
    host: str,
    port: int,
    backend: str,
    max_batch_size: int,
    max_wait_ms: float,
    max_queue: int,
    threads: int | None,
    max_inputs: int,
    max_input_chars: int,
    max_body_bytes: int,
    workers: int,
    access_log: bool,
    on_ray: bool,
    replicas: int,
    ray_address: str | None,
    expect_digest: str | None,
) -> None:
    """Serve translations over HTTP: POST /v1/translate {"inputs": [...]}, with dynamic batching.

    Also GET /healthz, /readyz, /metrics (Prometheus) and /openapi.json. Needs the serve extra
    (pip install 'seq2seq-export[serve]'). SIGTERM or Ctrl-C: stop accepting, answer every request
    already accepted, exit (0 on SIGTERM). With --ray, the same app runs on Ray Serve (the ray extra too).
    """
    from ..serve import require_ray_serve, require_serve_extra

    _check_ray_options(on_ray, backend, workers)
    require_serve_extra()
    # Without --ray the app writes the access log (serve.access_log: uvicorn's lines, cheaper), never uvicorn.
    limits = (max_batch_size, max_wait_ms, max_queue, max_inputs, max_input_chars, max_body_bytes)
    config = ServeConfig(*limits, access_log=access_log and not on_ray)
    from ..manifest import load_bundle

    if on_ray:
        require_ray_serve()
        from ..serve.ray_app import RayOptions

        bundle = load_bundle(bundle_dir, expect_digest=expect_digest)
        _serve_on_ray(bundle, config, RayOptions(host, port, replicas, ray_address, threads, access_log))
        return
    from ..serve.protocol import CoalescingHttpToolsProtocol
    from ..serve.server import WorkerApp, default_threads, listen, run_server, run_workers, service

    sock = listen(host, port)  # first: a port in use is known before the bundle is loaded
    bundle = load_bundle(bundle_dir, expect_digest=expect_digest)
    # each response leaves in one send (serve.protocol); the app writes the access log
    server: dict[str, Any] = {
        "http": CoalescingHttpToolsProtocol,
        "log_level": "info",
        "access_log": False,
        "timeout_graceful_shutdown": None,
    }
    if workers > 1:
        threads = default_threads(workers) if threads is None else threads
        run_workers(WorkerApp(str(bundle_dir), bundle.digest, backend, threads, config), workers, sock, **server)
        return
    app = service(bundle, backend, threads, config)
    # uvicorn drains on SIGTERM, then raises the signal again with the handler found before it started:
    # a no-op one makes a drained shutdown exit 0 instead of dying by the signal.
    signal.signal(signal.SIGTERM, lambda *_: None)
    run_server(app, sock, **server)


def _check_ray_options(on_ray: bool, backend: str, workers: int) -> None:
    """Options that only make sense with --ray need it; --ray runs the onnx backend only, --workers is not for it."""
    ctx = click.get_current_context()
    given = {name for name in ctx.params if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE}
    if on_ray and workers > 1:
        raise InputError("--workers runs several plain servers: with --ray, use --replicas")
    if not on_ray:
        for name, flag in (("replicas", "--replicas"), ("ray_address", "--ray-address")):
            if name in given:
                raise InputError(f"{flag} needs --ray")
    elif backend != "onnx":
        raise InputError(
            f"--backend {backend}: with --ray the replicas run the onnx backend only (torch is never imported)"
        )


def _serve_on_ray(bundle: Any, config: ServeConfig, options: Any) -> None:
    """Start the app on Ray Serve, then wait for SIGTERM (exit 0) or Ctrl-C (exit 130) and take it down."""
    from ..serve.ray_app import start_on_ray

    service = start_on_ray(bundle, config, options)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # after ray.init, which installs its own
    click.echo(
        f"ready: {options.replicas} replica(s) on Ray Serve at http://{options.host}:{options.port} "
        "(SIGTERM or Ctrl-C stops them)",
        err=True,
    )
    try:
        while not stop.wait(0.5):
            pass
    finally:
        click.echo("stopping: deleting the Ray Serve app", err=True)
        service.stop()
