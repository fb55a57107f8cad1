"""`rnnkit serve`: an HTTP API (FastAPI + uvicorn, the extra rnnkit[serve]) over one or more
model directories: POST /v1/score, /v1/predict, /v1/generate, GET /v1/models, /health, the
OpenAPI docs at /docs. Binds 127.0.0.1 unless --host says otherwise; the limits are options
generated from rnnkit.serve.limits.Limits (imported without FastAPI, so --help needs none);
--batch-window-ms sets the micro-batching of /v1/score (rnnkit.serve.batcher)."""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .common import finite_float, number, positive_int
from .options import add_engine_options, show_default

API_KEY_ENV = "RNNKIT_API_KEY"
_milliseconds = number(float, 0)


def batch_window(text: str) -> float | None:
    """--batch-window-ms: milliseconds (>= 0), or "off" (None)."""
    return None if text.strip().lower() == "off" else _milliseconds(text)


def add_parser(subparsers: Any) -> None:
    from ..serve.batcher import DEFAULT_WINDOW_MS
    from ..serve.limits import Limits

    p = subparsers.add_parser("serve", help="an HTTP API: score, predict, generate (needs rnnkit[serve])",
                              description="Serve MODEL_DIR(s) over HTTP: POST /v1/score, /v1/predict, /v1/generate "
                                          "(server-sent events with \"stream\": true), GET /v1/models, /health; "
                                          "interactive docs at /docs. A model's name is its directory's name.")
    p.add_argument("models", metavar="MODEL_DIR", nargs="+", help="model directories (the --out of rnnkit train)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind; 0.0.0.0 for every interface (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=positive_int, default=8000, metavar="N", help="port (default: 8000)")
    p.add_argument("--api-key", default=None, metavar="KEY",
                   help=f"require this key (header X-API-Key: KEY or Authorization: Bearer KEY) on every endpoint "
                        f"but /health and the docs (default: ${API_KEY_ENV} when set, else none)")
    p.add_argument("--cors-origin", action="append", default=None, metavar="ORIGIN",
                   help="allow browser requests from this origin, e.g. http://localhost:3000 (repeatable; "
                        "default: none, no CORS headers)")
    for f in dataclasses.fields(Limits):
        typ = finite_float if f.type in (float, "float") else positive_int
        p.add_argument("--" + f.name.replace("_", "-"), type=typ, default=f.default, metavar="X" if typ is
                       finite_float else "N", help=f"{f.metadata['help']} (default: {show_default(f.default)})")
    p.add_argument("--batch-window-ms", type=batch_window, default=DEFAULT_WINDOW_MS, metavar="MS|off",
                   help="score concurrent /v1/score requests with the same model and options (bos, eos, oov, "
                        "per_token) in one batched model call: requests that come while the model is busy go "
                        "together, and the first of a batch waits MS milliseconds for others; off: each request "
                        f"alone (default: {show_default(DEFAULT_WINDOW_MS)})")
    add_engine_options(p)


def model_names(paths: list[str]) -> dict[str, str]:
    """{name: path}: a directory's name, then name-2, name-3 for directories of the same name."""
    names: dict[str, str] = {}
    for path in paths:
        base = Path(path).resolve().name or "model"
        name, n = base, 1
        while name in names:
            n += 1
            name = f"{base}-{n}"
        names[name] = path
    return names


def run(args: argparse.Namespace) -> int:
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError as e:
        raise ConfigError(f"serve needs FastAPI and uvicorn ({e.name} is missing): pip install 'rnnkit[serve]'"
                          ) from None
    from .. import api
    from ..serve import Limits, create_app

    try:
        limits = Limits(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Limits)})
    except ValueError as e:
        raise ConfigError(str(e)) from None
    models = {name: api.load(path, engine=args.engine, device=args.device)
              for name, path in model_names(args.models).items()}
    key = args.api_key if args.api_key is not None else os.environ.get(API_KEY_ENV) or None
    app = create_app(models, limits, api_key=key, cors=args.cors_origin, batch_window_ms=args.batch_window_ms)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0
