"""What the routers of `rnnkit serve` share: the served models (each with the lock that
serialises its use and, with batching on, its score batcher), the limits, the generation slots,
and the two helpers every model endpoint uses: `pick` (the model a request names) and `run`
(model work in a worker thread, holding the model's lock, within the request's time limit).

`create_app` (app.py) keeps one `ServeState` in `app.state.serve`; a route reaches it with
a parameter typed `State`."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from .batcher import ScoreBatcher
from .limits import LimitError, Limits, Slots


class Served:
    """A model the server holds, with the lock that serialises its use and its score batcher
    (None when batching is off)."""

    def __init__(self, name: str, lm: Any, batch_window_ms: float | None = None):
        self.name, self.lm, self.lock = name, lm, threading.Lock()
        self.batcher = None if batch_window_ms is None else ScoreBatcher(lm, self.lock, batch_window_ms / 1e3)


class ServeState:
    """The models ({name: Served}), the limits, the generation slots and the batching window."""

    def __init__(self, models: dict[str, Any], limits: Limits, batch_window_ms: float | None):
        self.limits, self.batch_window_ms = limits, batch_window_ms
        self.served = {name: Served(name, lm, batch_window_ms) for name, lm in models.items()}
        self.slots = Slots(limits.max_generations)

    def pick(self, name: str | None) -> Served:
        """The model `name` (the only one when None and one is served); 404 / 422 otherwise."""
        if name is None:
            if len(self.served) == 1:
                return next(iter(self.served.values()))
            raise LimitError(422, "model", f"model: {len(self.served)} models are served, name one of "
                                           f"{sorted(self.served)}")
        if name not in self.served:
            raise LimitError(404, "model", f"model: no model named {name[:100]!r} (GET /v1/models lists them)")
        return self.served[name]

    def deadline(self) -> float:
        """The monotonic time a request starting now must be answered by."""
        return time.monotonic() + self.limits.timeout

    def too_slow(self) -> LimitError:
        return LimitError(504, "", f"the request took more than {self.limits.timeout:g} s (--timeout)")

    async def run(self, m: Served, fn: Callable[[], Any], deadline: float | None = None) -> Any:
        """fn() in a worker thread holding m's lock, within the time left to the request (504
        past it; the work already started still finishes in its thread)."""
        deadline = deadline or self.deadline()

        def locked() -> Any:
            with m.lock:
                return fn()

        try:
            return await asyncio.wait_for(run_in_threadpool(locked), max(deadline - time.monotonic(), 0))
        except TimeoutError:
            raise self.too_slow() from None


def state(request: Request) -> ServeState:
    """The app's ServeState (a FastAPI dependency)."""
    return request.app.state.serve


State = Annotated[ServeState, Depends(state)]  # a route's parameter `st: State` is the app's ServeState
