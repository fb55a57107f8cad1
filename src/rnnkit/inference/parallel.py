"""Run independent batches (scoring, sentence-mode evaluation) on the engine's worker threads.

An engine may offer `model.batch_workers()`, a context manager yielding how many batches to
run at once. The torch engine on CPU yields its intra-op thread count and makes each op
single-threaded meanwhile: a 2-layer LSTM's small per-step products scale better across
batches than within one (PTB test scoring ~10% faster on 2 cores, bitwise the same
results). Engines without it, and CUDA, run the batches one after another.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def map_batches(model, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
    """fn(item) for each item, in order; concurrently where the model allows it."""
    workers = getattr(model, "batch_workers", None)
    with (workers() if workers is not None else contextlib.nullcontext(1)) as n:
        if n <= 1:
            for item in items:
                yield fn(item)
            return
        with ThreadPoolExecutor(max_workers=n) as pool:
            pending = []
            for item in items:  # keep at most 2n batches in flight (memory stays bounded)
                pending.append(pool.submit(fn, item))
                if len(pending) >= 2 * n:
                    yield pending.pop(0).result()
            for f in pending:
                yield f.result()
