"""s2s-serve: an HTTP JSON service over a Translator, with dynamic batching (Starlette on uvicorn).

This module imports nothing of the serving stack, so the CLI can say which extra is missing; app.py,
batcher.py, metrics.py and server.py (how s2s-serve runs it) need the `serve` extra (pip install
'seq2seq-export[serve]'), ray_app.py (s2s-serve --ray) the `ray` extra too.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..constants import MAX_LINE_CHARS
from ..errors import ConfigError, first_line, is_int

if TYPE_CHECKING:
    from ..runtime.translator import Translator

# What the serve extra installs (pyproject.toml), by import name.
SERVE_MODULES = ("starlette", "uvicorn", "httptools", "prometheus_client")
SERVE_EXTRA = "pip install 'seq2seq-export[serve]'"
# Beam width one request may ask for: a batch decodes batch x beam rows, so the server caps it far
# below the library's MAX_BEAM_SIZE (a client must not make one batch thousands of rows wide).
SERVE_MAX_BEAM = 16
MAX_WAIT_MS_CEILING = 10_000.0  # a batch never waits longer than this to fill


class MissingExtra(ConfigError):
    """The serving stack is not installed."""


def require_serve_extra() -> None:
    """Raise MissingExtra (one line naming the extra) unless every serving module can be imported."""
    missing = [m for m in SERVE_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingExtra(f"s2s-serve needs {', '.join(missing)}, not installed: {SERVE_EXTRA}")


def require_ray_serve() -> None:
    """Raise MissingExtra (one line naming the ray extra) unless Ray Serve can be imported."""
    try:
        from ray import serve  # noqa: F401
    except ImportError as e:
        from ..bulk_ray import INSTALL_HINT

        raise MissingExtra(
            f"s2s-serve --ray needs Ray Serve, which is not installed ({first_line(e)}): {INSTALL_HINT}"
        ) from None


@dataclass(frozen=True)
class ServeConfig:
    """Batching and request limits of the service (each one an s2s-serve option)."""

    max_batch_size: int = 64  # inputs decoded together at most
    max_wait_ms: float = 5.0  # how long a batch waits at most to fill, from its oldest input's arrival
    max_queue: int = 1024  # inputs admitted and not yet answered; beyond it requests get 429
    max_inputs: int = 256  # inputs per request
    max_input_chars: int = 1000  # characters per input
    max_body_bytes: int = 1 << 20  # request body
    access_log: bool = False  # a line per request on standard output, as uvicorn's (s2s-serve: on; serve.access_log)

    def __post_init__(self) -> None:
        for name, high in (
            ("max_batch_size", None),
            ("max_queue", None),
            ("max_inputs", None),
            ("max_input_chars", MAX_LINE_CHARS),
            ("max_body_bytes", None),
        ):
            if not is_int(getattr(self, name), 1, high):
                raise ConfigError(f"{name} must be an integer in [1, {high or 'inf'}], got {getattr(self, name)!r}")
        wait = self.max_wait_ms
        if isinstance(wait, bool) or not isinstance(wait, (int, float)) or not 0 <= wait <= MAX_WAIT_MS_CEILING:
            raise ConfigError(f"max_wait_ms must be a number in [0, {MAX_WAIT_MS_CEILING:g}], got {wait!r}")
        if self.max_inputs > self.max_queue:
            raise ConfigError(
                f"max_inputs (--max-inputs {self.max_inputs}) must be at most max_queue "
                f"(--max-queue {self.max_queue}): "
                "a request larger than the queue could never be admitted"
            )


def create_app(translator: Translator, config: ServeConfig = ServeConfig()) -> Any:
    """The Starlette app (app.create_app) serving `translator`; needs the serve extra."""
    require_serve_extra()
    from .app import create_app as build

    return build(translator, config)


__all__ = [
    "SERVE_EXTRA",
    "SERVE_MAX_BEAM",
    "MissingExtra",
    "ServeConfig",
    "create_app",
    "require_ray_serve",
    "require_serve_extra",
]
