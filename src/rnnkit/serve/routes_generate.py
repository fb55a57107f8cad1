"""`POST /v1/generate`: rnnkit generate's sampling options over HTTP; with "stream": true,
server-sent events, a token at a time (stream.py's TokenStream, each step in a worker thread
holding the model's lock). A generation holds one of --max-generations slots (429 when they
are all in use) until it ends, however it ends; a stream whose client stops reading is cut
STREAM_GRACE s past the time limit (TimedStream)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from ..config import SampleConfig
from ..errors import RnnkitError
from . import schemas as s
from .limits import LimitError, Limits, at_most, check_texts
from .state import Served, ServeState, State
from .stream import TokenStream

CHAR_MAX_LEN = 500  # max_len of a character model when not given, as rnnkit generate
STREAM_GRACE = 2.0  # seconds past the deadline for a stream to send its own 504 error event

router = APIRouter()


def _options(req: s.GenerateRequest, m: Served, limits: Limits) -> dict:
    """The request's SampleConfig fields (max_len defaulted as rnnkit generate), checked
    against the limits and SampleConfig.validate."""
    options = req.model_dump(exclude={"model", "prompt", "stream"})
    if options["max_len"] is None:
        options["max_len"] = CHAR_MAX_LEN if m.lm.tokenizer_config.level == "char" else SampleConfig.max_len
    at_most("max_len", options["max_len"], limits.max_new_tokens, "tokens (--max-new-tokens)")
    at_most("num_samples", req.num_samples, limits.max_samples, "samples (--max-samples)")
    at_most("beam", req.beam, limits.max_samples, "beam width (--max-samples)")
    SampleConfig(**options).validate()
    if req.stream and (req.beam or req.num_samples != 1):
        raise LimitError(422, "stream", "stream: streaming is for one sample without beam search "
                                        f"(got beam {req.beam}, num_samples {req.num_samples})")
    return options


@router.post("/v1/generate", response_model=s.GenerateResponse, tags=["models"],
             responses={200: {"content": {"text/event-stream": {}}}})
async def generate(req: s.GenerateRequest, st: State):
    """Sample, greedy-decode or beam-search text (rnnkit generate's options); with "stream":
    true, server-sent events: `prompt` (the prompt as the text shows it, when there is one),
    a `token` event per token ({"token", "text"}: the text it adds), then `done` ({"text"}:
    the whole text) or `error` ({"detail", "status"})."""
    check_texts("prompt", req.prompt, st.limits)
    check_texts("stop", req.stop, st.limits)
    m = st.pick(req.model)
    options = _options(req, m, st.limits)
    if not st.slots.take():
        raise LimitError(429, "", f"{st.limits.max_generations} generations are running (--max-generations): "
                                  "try again later", st.limits.max_generations, st.slots.used + 1)
    deadline = st.deadline()
    if not req.stream:
        try:
            texts = await st.run(m, lambda: m.lm.generate(req.prompt, **options), deadline)
        finally:
            st.slots.give()
        texts = [texts] if isinstance(texts, str) else texts
        return {"model": m.name, "text": texts[0], "texts": texts}
    try:
        stream = await st.run(m, lambda: TokenStream(m.lm, req.prompt, SampleConfig(**options)), deadline)
    except BaseException:
        st.slots.give()
        raise
    return TimedStream(_events(st, m, stream, deadline), deadline, media_type="text/event-stream",
                       headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


class TimedStream(StreamingResponse):
    """A streamed response that ends STREAM_GRACE s after `deadline` however stuck its client is:
    one that stops reading would otherwise keep the response waiting to send, and its generation
    slot, forever. The events stop, the stream is closed (its slot freed), the connection drops."""

    def __init__(self, content: AsyncIterator[str], deadline: float, **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self.deadline = deadline

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await asyncio.wait_for(super().__call__(scope, receive, send),
                                   max(0.0, self.deadline - time.monotonic()) + STREAM_GRACE)
        except TimeoutError:
            pass  # the client stopped reading: nothing more can be sent to it
        finally:
            await self.body_iterator.aclose()


def _sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


async def _events(st: ServeState, m: Served, stream: TokenStream, deadline: float) -> AsyncIterator[str]:
    """The stream's events, a step at a time in a worker thread holding the model's lock (other
    requests for the model go between tokens); the slot is freed when it ends, however."""
    try:
        while True:
            try:
                piece = await st.run(m, stream.step, deadline)
            except LimitError as e:
                yield _sse("error", {"detail": e.message, "status": e.status})
                return
            except RnnkitError as e:
                yield _sse("error", {"detail": " ".join(str(e).split()), "status": 422})
                return
            if piece is None:
                yield _sse("done", {"text": stream.text()})
                return
            yield _sse("prompt" if piece.token is None else "token",
                       {"text": piece.text} if piece.token is None else {"token": piece.token, "text": piece.text})
    finally:
        st.slots.give()
