"""`rnnkit serve`: an HTTP API over loaded models (FastAPI; the optional extra rnnkit[serve]).

`create_app(models, limits, api_key, cors, batch_window_ms)` (app.py) assembles the
application from its routers (routes_*.py: score, predict, generate, models and health, the
page) and what they share (state.py); `Limits` (limits.py) holds the limits; the request and
response bodies are in schemas.py, the ASGI middleware (body size, API key) in middleware.py,
the micro-batching of /v1/score in batcher.py, the token-by-token generation behind streaming
in stream.py (its text built incrementally by text.tokenize.joiner); docs/serving.md is the tour.
`create_app` is imported on first use: `rnnkit.serve.limits` and `rnnkit.serve.batcher` (what
`rnnkit serve --help` reads) need no FastAPI, and nothing outside this package imports it."""

from __future__ import annotations

from typing import Any

from .limits import Limits

__all__ = ["Limits", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
