"""`create_app(models, limits, api_key, cors)`: the FastAPI application of `rnnkit serve`.

Endpoints: POST /v1/score, /v1/predict, /v1/generate (server-sent events with "stream"),
GET /v1/models, /health, and the page at / (static/index.html: score, hover, stream). Model work runs in worker threads, one request at a time per model
(a lock each: the engines are not safe for concurrent use of one model); the event loop only
waits. Answers: 401 without the API key (when one is set; /health, /, the docs exempt), 404
for an unknown model, 413 for a body over the limit, 422 for a bad field or a request past a
limit (naming the field, the limit and the value), 429 when the generation slots are full, 504
past the per-request time limit (the work already started on a model still finishes in its
thread, holding that model's lock; a stream stops between tokens).
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from .. import __version__
from ..config import SampleConfig
from ..errors import RnnkitError
from ..inference.predict import top_k as _top_k
from ..inference.score import _prepare, log_base_value
from . import schemas as s
from .limits import LimitError, Limits, Slots, at_most, check_texts
from .middleware import AuthMiddleware, BodyLimitMiddleware
from .stream import TokenStream

CHAR_MAX_LEN = 500  # max_len of a character model when not given, as rnnkit generate
STATIC = Path(__file__).parent / "static"
PAGE_FILES = {"": "index.html", "static/page.js": "page.js", "static/page.css": "page.css"}
OPEN_PATHS = frozenset({"/", "/static/page.js", "/static/page.css", "/health", "/docs", "/docs/oauth2-redirect",
                        "/redoc", "/openapi.json"})


class Served:
    """A model the server holds, with the lock that serialises its use."""

    def __init__(self, name: str, lm: Any):
        self.name, self.lm, self.lock = name, lm, threading.Lock()


def create_app(models: dict[str, Any], limits: Limits | None = None, api_key: str | None = None,
               cors: list[str] | None = None) -> FastAPI:
    """The app serving `models` ({name: LanguageModel}) within `limits`; `api_key` required (as
    X-API-Key or Authorization: Bearer) when given; CORS headers for the `cors` origins only."""
    limits = limits or Limits()
    served = {name: Served(name, lm) for name, lm in models.items()}
    slots = Slots(limits.max_generations)
    app = FastAPI(title="rnnkit", version=__version__,
                  description="Score sentences, predict next tokens and generate text with rnnkit language models.")
    app.state.limits, app.state.served, app.state.slots = limits, served, slots
    app.add_middleware(BodyLimitMiddleware, max_bytes=limits.max_body_bytes)
    if api_key:
        app.add_middleware(AuthMiddleware, key=api_key, open_paths=OPEN_PATHS)
    if cors:
        app.add_middleware(CORSMiddleware, allow_origins=list(cors), allow_methods=["GET", "POST"],
                           allow_headers=["Content-Type", "Authorization", "X-API-Key"])

    @app.exception_handler(LimitError)
    async def _limit(request: Request, e: LimitError) -> JSONResponse:
        return JSONResponse({"detail": e.detail()}, status_code=e.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _finite(jsonable_encoder(e.errors()))}, status_code=422)

    @app.exception_handler(RnnkitError)
    async def _refused(request: Request, e: RnnkitError) -> JSONResponse:
        return JSONResponse({"detail": [{"loc": ["body"], "msg": " ".join(str(e).split()), "type": "refused"}]},
                            status_code=422)

    def pick(name: str | None) -> Served:
        if name is None:
            if len(served) == 1:
                return next(iter(served.values()))
            raise LimitError(422, "model", f"model: {len(served)} models are served, name one of "
                                           f"{sorted(served)}")
        if name not in served:
            raise LimitError(404, "model", f"model: no model named {name[:100]!r} (GET /v1/models lists them)")
        return served[name]

    async def run(m: Served, fn: Callable[[], Any], deadline: float | None = None) -> Any:
        """fn() in a worker thread holding m's lock, within the time left to the request."""
        deadline = deadline or time.monotonic() + limits.timeout

        def locked() -> Any:
            with m.lock:
                return fn()

        try:
            return await asyncio.wait_for(run_in_threadpool(locked), max(deadline - time.monotonic(), 0))
        except TimeoutError:
            raise LimitError(504, "", f"the request took more than {limits.timeout:g} s (--timeout)") from None

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        """The page: score text (tokens coloured by surprisal, hover for the numbers), generate."""
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> FileResponse:
        if f"static/{name}" not in PAGE_FILES:
            raise LimitError(404, "", f"no file {name[:100]!r}")
        kind = "text/javascript" if name.endswith(".js") else "text/css"
        return FileResponse(STATIC / name, media_type=f"{kind}; charset=utf-8")

    @app.get("/health", response_model=s.Health, tags=["info"])
    async def health() -> dict:
        """Liveness: no API key needed."""
        return {"status": "ok", "models": len(served)}

    @app.get("/v1/models", response_model=s.ModelsResponse, tags=["info"])
    async def list_models() -> dict:
        """The models served: name, directory, engine, vocabulary size, level and configuration."""
        return {"models": [{"name": m.name, "path": None if m.lm.path is None else str(m.lm.path),
                            "engine": m.lm.engine, "vocab_size": len(m.lm.vocab),
                            "level": m.lm.tokenizer_config.level, "config": m.lm.config.to_dict()}
                           for m in served.values()]}

    @app.post("/v1/score", response_model=s.ScoreResponse, tags=["models"])
    async def score(req: s.ScoreRequest) -> dict:
        """Each sentence's log-probability, token count and perplexity; with per_token, each
        token's logprob, offsets, surprisal, entropy and rank (as `rnnkit score --per-token
        --output-format jsonl`)."""
        at_most("sentences", len(req.sentences), limits.max_sentences, "sentences per request (--max-sentences)")
        check_texts("sentences", req.sentences, limits)
        m = pick(req.model)
        k = req.alternatives if req.per_token else 0

        def work() -> tuple:
            scores = m.lm.score_sentences(req.sentences, bos=req.bos, eos=req.eos, oov=req.oov,
                                          per_token=req.per_token, detail=req.per_token)
            alts = [_alternatives(m.lm, text, req, k) for text in req.sentences] if k else None
            return scores, alts

        scores, alts = await run(m, work)
        ln_b = math.log(log_base_value(req.log_base))
        out = [_sentence(x, ln_b, req.per_token) for x in scores]
        for sent, per_token in zip(out, alts or []):
            for t, top in zip(sent["token_scores"], per_token):
                t["alternatives"] = [{"token": tok, "logprob": lp / ln_b, "prob": math.exp(lp)} for tok, lp in top]
        return {"model": m.name, "log_base": req.log_base, "sentences": out}

    @app.post("/v1/predict", response_model=s.PredictResponse, tags=["models"])
    async def predict(req: s.PredictRequest) -> dict:
        """The top_k most likely next tokens after the prompt (after <s> unless bos is false)."""
        check_texts("prompt", req.prompt, limits)
        m = pick(req.model)
        k = req.top_k or len(m.lm.vocab)
        if k > limits.max_top_k:
            raise LimitError(422, "top_k", f"top_k: at most {limits.max_top_k} tokens (--max-top-k; 0 means the "
                                           f"whole vocabulary, {len(m.lm.vocab)}), got {req.top_k}",
                             limits.max_top_k, req.top_k)

        def work() -> list:
            logp = m.lm.next_token_logprobs([req.prompt], bos=req.bos)
            ids, lps = _top_k(logp, req.top_k)
            return list(zip(m.lm.vocab.decode(ids[0].tolist()), ids[0].tolist(), lps[0].tolist()))

        pairs = await run(m, work)
        return {"model": m.name, "prompt": req.prompt,
                "top": [{"token": t, "id": i, "prob": math.exp(lp), "logprob": lp} for t, i, lp in pairs]}

    @app.post("/v1/generate", response_model=s.GenerateResponse, tags=["models"],
              responses={200: {"content": {"text/event-stream": {}}}})
    async def generate(req: s.GenerateRequest):
        """Sample, greedy-decode or beam-search text (rnnkit generate's options); with "stream":
        true, server-sent events: `prompt` (the prompt as the text shows it, when there is one),
        a `token` event per token ({"token", "text"}: the text it adds), then `done` ({"text"}:
        the whole text) or `error` ({"detail", "status"})."""
        check_texts("prompt", req.prompt, limits)
        check_texts("stop", req.stop, limits)
        m = pick(req.model)
        options = req.model_dump(exclude={"model", "prompt", "stream"})
        if options["max_len"] is None:
            options["max_len"] = CHAR_MAX_LEN if m.lm.tokenizer_config.level == "char" else SampleConfig.max_len
        at_most("max_len", options["max_len"], limits.max_new_tokens, "tokens (--max-new-tokens)")
        at_most("num_samples", req.num_samples, limits.max_samples, "samples (--max-samples)")
        at_most("beam", req.beam, limits.max_samples, "beam width (--max-samples)")
        cfg = SampleConfig(**options)
        cfg.validate()
        if req.stream and (req.beam or req.num_samples != 1):
            raise LimitError(422, "stream", "stream: streaming is for one sample without beam search "
                                            f"(got beam {req.beam}, num_samples {req.num_samples})")
        if not slots.take():
            raise LimitError(429, "", f"{limits.max_generations} generations are running (--max-generations): "
                                      "try again later", limits.max_generations, slots.used + 1)
        deadline = time.monotonic() + limits.timeout
        if not req.stream:
            try:
                texts = await run(m, lambda: m.lm.generate(req.prompt, **options), deadline)
            finally:
                slots.give()
            texts = [texts] if isinstance(texts, str) else texts
            return {"model": m.name, "text": texts[0], "texts": texts}
        try:
            stream = await run(m, lambda: TokenStream(m.lm, req.prompt, cfg), deadline)
        except BaseException:
            slots.give()
            raise
        return TimedStream(_events(m, stream, run, deadline, slots), deadline, media_type="text/event-stream",
                           headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    return app


STREAM_GRACE = 2.0  # seconds past the deadline for a stream to send its own 504 error event


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


async def _events(m: Served, stream: TokenStream, run: Callable, deadline: float, slots: Slots) -> AsyncIterator[str]:
    """The stream's events, a step at a time in a worker thread holding the model's lock (other
    requests for the model go between tokens); the slot is freed when it ends, however."""
    try:
        while True:
            try:
                piece = await run(m, stream.step, deadline)
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
        slots.give()


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


def _nullable(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _alternatives(lm: Any, text: str, req: s.ScoreRequest, k: int) -> list[list[tuple[str, float]]]:
    """The k most likely (token, ln p) where each predicted token of `text` is predicted (its
    prefix as the model reads it, one recurrent step per token), in token_scores' order."""
    seq = _prepare(text, lm.vocab, lm.tokenizer, req.bos, req.eos, req.oov).seq
    if len(seq) < 2:
        return []
    hidden, rows = lm.model.init_hidden(1), []
    for tok in seq[:-1]:
        logp, hidden = lm.model.step_logprobs(np.array([tok], dtype=np.int64), hidden)
        rows.append(np.asarray(logp, dtype=np.float64)[0])
    ids, lps = _top_k(np.stack(rows), k)
    return [list(zip(lm.vocab.decode(i.tolist()), lp.tolist())) for i, lp in zip(ids, lps)]


def _sentence(x: Any, ln_b: float, per_token: bool) -> dict:
    """A SentenceScore as JSON (rnnkit score's jsonl fields): logprobs in the base, surprisal and
    entropy in bits, what is undefined null."""
    out = {"text": x.text, "logprob": x.logprob / ln_b, "tokens": x.num_scored, "words": x.num_words,
           "oov": x.num_oov, "ppl": _nullable(x.ppl) if x.num_scored else None}
    if per_token:
        ln2 = math.log(2)
        out["token_scores"] = [
            {"token": t.token, "logprob": t.logprob / ln_b if t.scored else None, "oov": t.is_oov,
             "start": t.start, "end": t.end, "surprisal": -t.logprob / ln2 if t.scored else None,
             "entropy": None if t.entropy is None else float(np.float64(t.entropy) / ln2),
             "rank": t.rank if t.scored else None} for t in x.tokens]
    return out
