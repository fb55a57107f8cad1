"""The server's limits (`Limits`) and the checks that turn a request past one into a clear 4xx.

Every limit is a field with its help, so `rnnkit serve --help` shows each one and its default
(cli/serve.py generates the options from the fields). A request past a limit is a `LimitError`:
the app answers it with its status (413 for the body, 429 for full generation slots, 422 for
the rest) and a detail naming the field, the limit and the value."""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field


def _limit(default: float, help: str) -> float:
    return field(default=default, metadata={"help": help})


@dataclass
class Limits:
    max_body_bytes: int = _limit(1_000_000, "largest request body in bytes (413 past it)")
    max_sentences: int = _limit(1000, "most sentences in one /v1/score request")
    max_chars: int = _limit(10_000, "most characters in one sentence or prompt")
    max_new_tokens: int = _limit(1000, "most tokens one /v1/generate may ask for (max_len)")
    max_samples: int = _limit(16, "most samples (num_samples) or beam width in one /v1/generate")
    max_top_k: int = _limit(1000, "most tokens one /v1/predict may ask for (top_k; 0 counts as the vocabulary)")
    max_generations: int = _limit(4, "generations running at once over all models (429 when full)")
    timeout: float = _limit(60.0, "seconds one request may take, waiting for its model included "
                                  "(504 past it; a stream ends with an error event)")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not value > 0:
                raise ValueError(f"--{f.name.replace('_', '-')} must be > 0, got {value!r}")


class LimitError(Exception):
    """A request past a limit (or otherwise refused): its HTTP status and a detail naming the
    field, the limit and the value given."""

    def __init__(self, status: int, field: str, message: str, limit: object = None, value: object = None):
        super().__init__(message)
        self.status, self.field, self.message, self.limit, self.value = status, field, message, limit, value

    def detail(self) -> list[dict]:
        item = {"loc": ["body", *self.field.split(".")] if self.field else [], "msg": self.message,
                "type": "limit_exceeded" if self.limit is not None else "refused"}
        if self.limit is not None:
            item.update(limit=self.limit, value=self.value)
        return [item]


def at_most(field_name: str, value: int, limit: int, what: str, status: int = 422) -> None:
    """LimitError when `value` is over `limit`."""
    if value > limit:
        raise LimitError(status, field_name, f"{field_name}: at most {limit} {what}, got {value}", limit, value)


def check_texts(field_name: str, texts: list[str] | str, limits: Limits) -> None:
    """A text, or each of a list (the first one past the limit named by its index), at most
    max_chars characters."""
    for i, t in enumerate([texts] if isinstance(texts, str) else texts):
        if len(t) > limits.max_chars:
            name = field_name if isinstance(texts, str) else f"{field_name}.{i}"
            at_most(name, len(t), limits.max_chars, "characters (--max-chars)")


class Slots:
    """A counter of running generations shared by threads and event loops: `take()` is False
    when all `n` are in use (the caller answers 429), `give()` frees one."""

    def __init__(self, n: int):
        self.n, self.used, self._lock = n, 0, threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.used >= self.n:
                return False
            self.used += 1
            return True

    def give(self) -> None:
        with self._lock:
            self.used -= 1
