"""`POST /v1/score`: each sentence's log-probability, token count and perplexity, per token on
request (offsets, surprisal, entropy, rank, alternatives). The model work is batcher.py's:
through the model's ScoreBatcher when batching is on (--batch-window-ms), else alone."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from fastapi import APIRouter

from ..inference.score import log_base_value
from . import schemas as s
from .batcher import ScoreJob, ScoreOptions, score_job
from .limits import at_most, check_texts
from .state import State

router = APIRouter()


@router.post("/v1/score", response_model=s.ScoreResponse, tags=["models"])
async def score(req: s.ScoreRequest, st: State) -> dict:
    """Each sentence's log-probability, token count and perplexity; with per_token, each
    token's logprob, offsets, surprisal, entropy and rank (as `rnnkit score --per-token
    --output-format jsonl`). Concurrent requests with the same model, bos, eos, oov and
    per_token may be scored in one batched call (rnnkit serve --batch-window-ms)."""
    limits = st.limits
    at_most("sentences", len(req.sentences), limits.max_sentences, "sentences per request (--max-sentences)")
    check_texts("sentences", req.sentences, limits)
    m = st.pick(req.model)
    job = ScoreJob(list(req.sentences), ScoreOptions(req.bos, req.eos, req.oov, req.per_token),
                   req.alternatives if req.per_token else 0)
    if m.batcher is None:
        scores, alts = await st.run(m, lambda: score_job(m.lm, job))
    else:
        scores, alts = await m.batcher.score(job, st.deadline(), st.too_slow)
    ln_b = math.log(log_base_value(req.log_base))
    out = [_sentence(x, ln_b, req.per_token) for x in scores]
    for sent, per_token in zip(out, alts or []):
        for t, top in zip(sent["token_scores"], per_token):
            t["alternatives"] = [{"token": tok, "logprob": lp / ln_b, "prob": math.exp(lp)} for tok, lp in top]
    return {"model": m.name, "log_base": req.log_base, "sentences": out}


def _nullable(x: float) -> float | None:
    return x if math.isfinite(x) else None


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
