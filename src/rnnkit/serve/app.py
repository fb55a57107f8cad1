"""`create_app(models, limits, api_key, cors, batch_window_ms)`: the FastAPI application of
`rnnkit serve`, assembled from its routers (one module per concern).

routes_score.py (POST /v1/score, micro-batched by batcher.py), routes_predict.py (POST
/v1/predict), routes_generate.py (POST /v1/generate, server-sent events with "stream"),
routes_info.py (GET /v1/models, /health), routes_page.py (the page at / and its files); what
they share (the models and their locks, the limits, the generation slots) is state.py's
ServeState, in app.state.serve. Model work runs in worker threads, one call at a time per
model (a lock each: the engines are not safe for concurrent use of one model); the event loop
only waits. Answers: 401 without the API key (when one is set; /health, /, the docs exempt),
404 for an unknown model, 413 for a body over the limit, 422 for a bad field or a request past
a limit (naming the field, the limit and the value), 429 when the generation slots are full,
504 past the per-request time limit (the work already started on a model still finishes in
its thread, holding that model's lock; a stream stops between tokens).
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from .. import __version__
from ..errors import RnnkitError
from . import routes_generate, routes_info, routes_page, routes_predict, routes_score
from .batcher import DEFAULT_WINDOW_MS
from .limits import LimitError, Limits
from .middleware import AuthMiddleware, BodyLimitMiddleware
from .routes_page import OPEN_PATHS
from .state import ServeState

ROUTERS = (routes_page, routes_info, routes_score, routes_predict, routes_generate)


def create_app(models: dict[str, Any], limits: Limits | None = None, api_key: str | None = None,
               cors: list[str] | None = None, batch_window_ms: float | None = DEFAULT_WINDOW_MS) -> FastAPI:
    """The app serving `models` ({name: LanguageModel}) within `limits`; `api_key` required (as
    X-API-Key or Authorization: Bearer) when given; CORS headers for the `cors` origins only;
    concurrent /v1/score requests batched (waiting `batch_window_ms` for more; None: each alone)."""
    st = ServeState(models, limits or Limits(), batch_window_ms)
    app = FastAPI(title="rnnkit", version=__version__,
                  description="Score sentences, predict next tokens and generate text with rnnkit language models.")
    app.state.serve, app.state.limits, app.state.served, app.state.slots = st, st.limits, st.served, st.slots
    app.add_middleware(BodyLimitMiddleware, max_bytes=st.limits.max_body_bytes)
    if api_key:
        app.add_middleware(AuthMiddleware, key=api_key, open_paths=OPEN_PATHS)
    if cors:
        app.add_middleware(CORSMiddleware, allow_origins=list(cors), allow_methods=["GET", "POST"],
                           allow_headers=["Content-Type", "Authorization", "X-API-Key"])
    app.add_exception_handler(LimitError, _limit)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(RnnkitError, _refused)
    for module in ROUTERS:
        app.include_router(module.router)
    return app


async def _limit(request: Request, e: LimitError) -> JSONResponse:
    return JSONResponse({"detail": e.detail()}, status_code=e.status)


async def _invalid(request: Request, e: RequestValidationError) -> JSONResponse:
    return JSONResponse({"detail": _finite(jsonable_encoder(e.errors()))}, status_code=422)


async def _refused(request: Request, e: RnnkitError) -> JSONResponse:
    return JSONResponse({"detail": [{"loc": ["body"], "msg": " ".join(str(e).split()), "type": "refused"}]},
                        status_code=422)


def _finite(x: Any) -> Any:
    """`x` with NaN and infinities as strings ("nan", "inf") and lone surrogates escaped: a
    validation error echoes the value given, and strict UTF-8 JSON has no such things."""
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, str):
        return x.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    return x
