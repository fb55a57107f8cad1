"""`POST /v1/predict`: the top-k next tokens after a prompt. A prompt with nothing to predict
from (no tokens, or only tokens unknown to the model) is refused with a 422 naming the
field, as `rnnkit predict` refuses it (naming FILE:LINE or --prompt)."""

from __future__ import annotations

import math

from fastapi import APIRouter

from ..inference.predict import top_k as _top_k
from . import schemas as s
from .limits import LimitError, check_texts
from .state import Served, State

router = APIRouter()


def check_prompt(m: Served, prompt: str) -> None:
    """A 422 naming `prompt` when it has no tokens, or every token is unknown to the model."""
    lm = m.lm
    tokens = lm.tokenizer.tokenize(prompt)
    if not tokens:
        raise LimitError(422, "prompt", "prompt: empty prompt: give the text to predict the next token after")
    if all(i == lm.vocab.unk_id for i in lm.vocab.encode(tokens)):
        raise LimitError(422, "prompt", f"prompt: every token of the prompt is unknown to the model "
                                        f"({prompt.strip()[:60]!r})")


@router.post("/v1/predict", response_model=s.PredictResponse, tags=["models"])
async def predict(req: s.PredictRequest, st: State) -> dict:
    """The top_k most likely next tokens after the prompt (after <s> unless bos is false). An
    empty prompt, or one whose every token is unknown, is a 422 (as rnnkit predict)."""
    check_texts("prompt", req.prompt, st.limits)
    m = st.pick(req.model)
    check_prompt(m, req.prompt)
    k = req.top_k or len(m.lm.vocab)
    if k > st.limits.max_top_k:
        raise LimitError(422, "top_k", f"top_k: at most {st.limits.max_top_k} tokens (--max-top-k; 0 means the "
                                       f"whole vocabulary, {len(m.lm.vocab)}), got {req.top_k}",
                         st.limits.max_top_k, req.top_k)

    def work() -> list:
        logp = m.lm.next_token_logprobs([req.prompt], bos=req.bos)
        ids, lps = _top_k(logp, req.top_k)
        return list(zip(m.lm.vocab.decode(ids[0].tolist()), ids[0].tolist(), lps[0].tolist()))

    pairs = await st.run(m, work)
    return {"model": m.name, "prompt": req.prompt,
            "top": [{"token": t, "id": i, "prob": math.exp(lp), "logprob": lp} for t, i, lp in pairs]}
