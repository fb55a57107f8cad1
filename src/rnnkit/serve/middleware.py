"""ASGI middleware of `rnnkit serve`: the request-body limit (413) and the API key (401)."""

from __future__ import annotations

import hmac
import json
from typing import Any


async def _send_json(send: Any, status: int, body: dict, headers: list | None = None) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": data})


class BodyLimitMiddleware:
    """413 for a Content-Length over `max_bytes` before reading; otherwise the body is read here
    (at most `max_bytes` + 1 bytes: a chunked body that turns out longer is 413 too) and handed
    on whole."""

    def __init__(self, app: Any, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            await _send_json(send, 413, {"detail": self.message(int(length))})
            return
        chunks, seen, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            seen += len(chunks[-1])
            more = message.get("more_body", False)
            if seen > self.max_bytes:
                await _send_json(send, 413, {"detail": self.message(seen, more)})
                return
        replayed = False

        async def whole() -> dict:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, whole, send)

    def message(self, n: int, more: bool = False) -> str:
        return f"request body: at most {self.max_bytes} bytes (--max-body-bytes), got {n}{' or more' if more else ''}"


class AuthMiddleware:
    """401 unless the request carries the key as `X-API-Key: KEY` or `Authorization: Bearer KEY`;
    `open_paths` (and CORS preflight requests) need none."""

    def __init__(self, app: Any, key: str, open_paths: frozenset[str]):
        self.app, self.key, self.open_paths = app, key.encode(), open_paths

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        given = headers.get(b"x-api-key")
        auth = headers.get(b"authorization", b"")
        if given is None and auth[:7].lower() == b"bearer ":
            given = auth[7:].strip()
        if given is None or not hmac.compare_digest(given, self.key):
            await _send_json(send, 401, {"detail": "a valid API key is needed: header X-API-Key: KEY or "
                                                   "Authorization: Bearer KEY"},
                             [(b"www-authenticate", b"Bearer")])
            return
        await self.app(scope, receive, send)
