"""The HTTP routes and request validation: POST /v1/translate, GET /healthz, /readyz, /metrics, /openapi.json.

Every error is a JSON body {"error": "..."} that names the problem: 400 malformed JSON, 413 a body over
max_body_bytes, 422 a well-formed request that breaks a rule (types, counts, lengths, search settings),
429 a full queue (with Retry-After), 404/405 unknown routes and methods.
"""

from __future__ import annotations

import functools
import gc
import json
import math
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..constants import MAX_LENGTH_PENALTY
from ..errors import ConfigError, is_int
from ..runtime.translator import Translation, Translator
from . import SERVE_MAX_BEAM, ServeConfig
from .access_log import AccessLog
from .batcher import Batcher, QueueFull, Search
from .metrics import MetricsMiddleware, ServeMetrics
from .openapi import openapi_schema

RETRY_AFTER_S = 1  # what a 429 tells the client to wait: about one batch's time under load, rounded up
REQUEST_FIELDS = ("inputs", "beam_size", "n_best", "length_penalty")


class BadRequest(Exception):
    """A request refused with `status` and a one-line message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def error(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused (413) as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BadRequest(413, f"request body of {declared} bytes is over the limit of {limit} bytes (--max-body-bytes)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(413, f"request body is over the limit of {limit} bytes (--max-body-bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


SearchCheck = Callable[[int, int, float], object]  # Translator.search_options: raises ConfigError on bad settings


def parse_request(
    body: bytes, translator: Translator, config: ServeConfig, check: SearchCheck | None = None
) -> tuple[list[str], Search]:
    """A translate request's inputs and search settings, or BadRequest naming what is wrong.

    check: translator.search_options unless given (create_app passes it behind a cache).
    """
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as e:  # ValueError: bad JSON or bad UTF-8
        raise BadRequest(400, f"the body is not valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise BadRequest(422, f'the body must be a JSON object {{"inputs": [...]}}, got {type(doc).__name__}')
    unknown = sorted(set(doc) - set(REQUEST_FIELDS))
    if unknown:
        raise BadRequest(422, f"unknown field {unknown[0]!r}: a request has {', '.join(REQUEST_FIELDS)}")
    if "inputs" not in doc:
        raise BadRequest(422, "missing field 'inputs': a list of strings to translate")
    texts = doc["inputs"]
    if not isinstance(texts, list):
        raise BadRequest(422, f"'inputs' must be a list of strings, got {type(texts).__name__}")
    if len(texts) > config.max_inputs:
        raise BadRequest(
            422,
            f"'inputs' has {len(texts)} items, over the limit of {config.max_inputs} per request "
            "(--max-inputs): split the request",
        )
    for i, text in enumerate(texts):
        check_input(i, text, translator, config.max_input_chars)
    return texts, parse_search(doc, check or translator.search_options)


def check_input(i: int, text: Any, translator: Translator, max_chars: int) -> None:
    where = f"inputs[{i}]"
    if not isinstance(text, str):
        raise BadRequest(422, f"{where} must be a string, got {type(text).__name__}")
    if len(text) > max_chars:
        raise BadRequest(422, f"{where} has {len(text)} characters, over the limit of {max_chars} (--max-input-chars)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(422, f"{where} is not valid Unicode (it holds a lone surrogate escape)") from None
    fit = translator.fit(text, truncate=True)  # never raises with truncate: says whether it was too long
    if fit.truncated:
        raise BadRequest(
            422,
            f"{where} has {fit.tokens} tokens as the model sees them, over the bundle's limit "
            f"of {translator.max_src_tokens} tokens per input: split it",
        )


def parse_search(doc: dict[str, Any], check: SearchCheck) -> Search:
    beam, n_best, penalty = doc.get("beam_size", 1), doc.get("n_best", 1), doc.get("length_penalty", 1.0)
    if not is_int(beam, 1, SERVE_MAX_BEAM):
        raise BadRequest(422, f"'beam_size' must be an integer in [1, {SERVE_MAX_BEAM}], got {beam!r}")
    if not is_int(n_best, 1, beam):
        raise BadRequest(422, f"'n_best' must be an integer in [1, beam_size {beam}], got {n_best!r}")
    if isinstance(penalty, bool) or not isinstance(penalty, (int, float)) or not math.isfinite(penalty):
        raise BadRequest(422, f"'length_penalty' must be a number in [0, {MAX_LENGTH_PENALTY:g}], got {penalty!r}")
    try:
        check(beam, n_best, float(penalty))
    except ConfigError as e:
        raise BadRequest(422, str(e)) from None
    return Search(beam, n_best, float(penalty))


def record(t: Translation) -> dict[str, Any]:
    """One translation as JSON, exactly s2s-translate --json's record: the best hypothesis' output, ids
    and score, then the n-best list (`search` chose how many)."""
    best = {"output": t.output, "ids": list(t.ids), "score": t.score}
    hypotheses = [{"output": h.output, "ids": list(h.ids), "score": h.score} for h in t.hypotheses]
    return {"input": t.input, **best, "hypotheses": hypotheses}


class Queue(Protocol):
    """What the routes need of a batcher: batcher.Batcher, or ray_app.RayBatcher on Ray Serve."""

    @property
    def queued(self) -> int: ...
    async def start(self) -> None: ...
    async def drain(self) -> None: ...
    async def submit(self, texts: list[str], search: Search) -> list[Translation]: ...


def create_app(
    translator: Translator,
    config: ServeConfig,
    batcher_class: Callable[[Translator, int, float, int, ServeMetrics], Queue] = Batcher,
) -> Starlette:
    """The service over `translator` (loaded and checked by the caller): routes, batcher, metrics."""
    metrics = ServeMetrics()
    batcher = batcher_class(translator, config.max_batch_size, config.max_wait_ms, config.max_queue, metrics)
    state = {"ready": False}
    schema = openapi_schema(config, translator.max_src_tokens, SERVE_MAX_BEAM)
    access_log = AccessLog() if config.access_log else None
    # The library's check of search settings builds and validates DecodeOptions, about a tenth of the
    # app's own time for a small request: each setting seen is checked once (errors are never cached).
    check = functools.lru_cache(maxsize=256)(translator.search_options)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await batcher.start()
        # What loading made (modules, the bundle) lives as long as the process: out of the collector's
        # sight, a full collection no longer walks it, holding the event loop for tens of ms under load.
        gc.freeze()
        state["ready"] = True
        yield
        state["ready"] = False  # uvicorn has answered every request it accepted; the queue empties now
        await batcher.drain()
        metrics.close()
        if access_log is not None:
            access_log.flush()

    async def translate(request: Request) -> Response:
        try:
            body = await read_body(request, config.max_body_bytes)
            texts, search = parse_request(body, translator, config, check)
        except BadRequest as e:
            return error(e.status, str(e))
        try:
            found = await batcher.submit(texts, search) if texts else []
        except QueueFull as e:
            return error(429, str(e), {"Retry-After": str(RETRY_AFTER_S)})
        return JSONResponse({"translations": [record(t) for t in found]})

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "alive"})

    async def readyz(request: Request) -> Response:
        if state["ready"]:
            return JSONResponse({"status": "ready", "queued_inputs": batcher.queued})
        return error(503, "not ready: the bundle is loading or the server is shutting down")

    async def metrics_route(request: Request) -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    async def openapi(request: Request) -> Response:
        return JSONResponse(schema)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return error(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}", exc.headers)

    routes = [
        Route("/v1/translate", translate, methods=["POST"]),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics_route),
        Route("/openapi.json", openapi),
    ]
    paths = frozenset(r.path for r in routes)
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error},
        middleware=[Middleware(MetricsMiddleware, metrics=metrics, paths=paths, access_log=access_log)],
    )
