"""s2s-serve: the HTTP translation service (seq2seq_export.serve) on uvicorn."""

from __future__ import annotations

import signal
from pathlib import Path

import click

from ..constants import BACKENDS, MAX_THREADS
from ..serve import ServeConfig
from .options import (
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
    help="Inputs admitted and not yet answered at most; a request that does not fit gets 429 with Retry-After.",
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
    "--access-log/--no-access-log",
    default=True,
    help="The access log: one line per request on standard output, as uvicorn's.",
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
    access_log: bool,
    expect_digest: str | None,
) -> None:
    """Serve translations over HTTP: POST /v1/translate {"inputs": [...]}, with dynamic batching.

    Also GET /healthz, /readyz, /metrics (Prometheus) and /openapi.json. Needs the serve extra
    (pip install 'seq2seq-export[serve]'). SIGTERM or Ctrl-C: stop accepting, answer every request
    already accepted, exit (0 on SIGTERM).
    """
    from ..serve import create_app, require_serve_extra

    require_serve_extra()
    config = ServeConfig(
        max_batch_size, max_wait_ms, max_queue, max_inputs, max_input_chars, max_body_bytes, access_log=access_log
    )
    import uvicorn

    from ..manifest import load_bundle
    from ..runtime.translator import Translator
    from ..serve.protocol import CoalescingHttpToolsProtocol

    bundle = load_bundle(bundle_dir, expect_digest=expect_digest)
    translator = Translator.from_bundle(bundle, backend, batch_size=max_batch_size, threads=threads)
    app = create_app(translator, config)
    # uvicorn drains on SIGTERM, then raises the signal again with the handler found before it started:
    # a no-op one makes a drained shutdown exit 0 instead of dying by the signal.
    signal.signal(signal.SIGTERM, lambda *_: None)
    # The app writes the access log (serve.access_log: uvicorn's lines, cheaper), uvicorn never does;
    # each response leaves in one send (serve.protocol).
    uvicorn.run(
        app,
        host=host,
        port=port,
        http=CoalescingHttpToolsProtocol,
        log_level="info",
        access_log=False,
        timeout_graceful_shutdown=None,
    )
