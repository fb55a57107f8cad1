"""The JSON bodies of `rnnkit serve`: pydantic request and response models, each with an
example that /docs shows. Static ranges (those of SampleConfig, the log bases, the OOV
policies) are checked here and answered 422 naming the field; the configurable limits are
checked in app.py (limits.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ..config import SEED_MAX

LogBase = Literal["e", "10", "2"]


def _whole_characters(text: str) -> str:
    """A string JSON escapes could leave half a UTF-16 pair in ("\\ud800"): refused, as it has no
    UTF-8 form to answer with."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"a lone surrogate {text[e.start]!r} at character {e.start}: not a Unicode text") from None
    return text


Text = Annotated[str, AfterValidator(_whole_characters)]
_MODEL = Field(None, description="the model's name (GET /v1/models); may be left out when one model is served")


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScoreRequest(Request):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"sentences": ["the cat sat on the mat .", "a dog ran ."], "per_token": True, "log_base": "10"}]})
    model: str | None = _MODEL
    sentences: list[Text] = Field(..., min_length=1, description="one sentence per item")
    per_token: bool = Field(False, description="also each token: logprob, character offsets, surprisal and "
                                               "entropy (bits), rank (1 = most likely)")
    log_base: LogBase = Field("e", description="base of the logprobs (surprisal and entropy are always bits)")
    bos: bool = Field(True, description="condition the first word on <s>")
    eos: bool = Field(True, description="predict </s> at the end of each sentence")
    oov: Literal["unk", "skip"] = Field("unk", description="unk: score unknown words as <unk>; skip: leave them out")
    alternatives: int = Field(0, ge=0, le=10, description="with per_token: also the k most likely tokens where each "
                                                          "token is predicted (as /v1/predict of its prefix)")


class Alternative(BaseModel):
    token: str
    logprob: float = Field(..., description="in log_base")
    prob: float


class TokenOut(BaseModel):
    token: str
    logprob: float | None = Field(None, description="in log_base; null for a skipped OOV")
    oov: bool
    start: int | None = None
    end: int | None = None
    surprisal: float | None = Field(None, description="bits")
    entropy: float | None = Field(None, description="bits, of the distribution the token is predicted from")
    rank: int | None = None
    alternatives: list[Alternative] | None = Field(None, description="with alternatives: the most likely tokens "
                                                                     "there, most likely first")


class SentenceOut(BaseModel):
    text: str
    logprob: float
    tokens: int = Field(..., description="predicted tokens counted (</s> included)")
    words: int
    oov: int
    ppl: float | None = Field(None, description="null when nothing was scored")
    token_scores: list[TokenOut] | None = None


class ScoreResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"model": "ptb", "log_base": "10", "sentences": [
            {"text": "a dog ran .", "logprob": -9.1, "tokens": 5, "words": 4, "oov": 0, "ppl": 66.1}]}]})
    model: str
    log_base: LogBase
    sentences: list[SentenceOut]


class PredictRequest(Request):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"prompt": "the cat", "top_k": 5}]})
    model: str | None = _MODEL
    prompt: Text = Field(..., description="the text whose next token is predicted")
    top_k: int = Field(10, ge=0, description="how many tokens, most likely first; 0: the whole vocabulary")
    bos: bool = Field(True, description="start the prompt with <s>")


class Prediction(BaseModel):
    token: str
    id: int
    prob: float
    logprob: float = Field(..., description="natural log")


class PredictResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"model": "ptb", "prompt": "the cat", "top": [{"token": "sat", "id": 7, "prob": 0.2, "logprob": -1.6}]}]})
    model: str
    prompt: str
    top: list[Prediction]


class GenerateRequest(Request):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"prompt": "the", "temperature": 0.8, "max_len": 20, "seed": 1},
        {"prompt": "the", "seed": 1, "stream": True}]})
    model: str | None = _MODEL
    prompt: Text = Field("", description="text to continue (empty: start a sentence)")
    temperature: float = Field(1.0, gt=0, le=1000, description="> 1 more random, < 1 more conservative")
    top_k: int = Field(0, ge=0, description="sample among the k most likely tokens (0 = all)")
    top_p: float = Field(1.0, gt=0, le=1, description="nucleus sampling (1 = all)")
    greedy: bool = Field(False, description="always take the most likely token")
    beam: int = Field(0, ge=0, description="beam search width (0 = sample)")
    length_penalty: float = Field(1.0, ge=-10, le=10, description="beam search ranks by logprob / length**alpha")
    max_len: int | None = Field(None, ge=1, description="most new tokens (default: 50 for a word model, 500 for "
                                                        "a character model, as rnnkit generate)")
    min_len: int = Field(0, ge=0, description="</s> is not allowed before this many tokens")
    num_samples: int = Field(1, ge=1, description="how many texts (with beam: the best hypotheses)")
    seed: int | None = Field(None, ge=0, le=SEED_MAX, description="the same seed gives the same text")
    stop: list[Text] = Field([], description="stop when the text ends with one of these (non-empty) strings")
    stream: bool = Field(False, description="server-sent events, one per token (sampling or greedy, "
                                            "num_samples 1): events prompt, token (data: token and text), "
                                            "then done (data: the whole text) or error")


class GenerateResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"model": "ptb", "text": "the market fell .", "texts": ["the market fell ."]}]})
    model: str
    text: str = Field(..., description="the first (or only) text")
    texts: list[str]


class ModelInfo(BaseModel):
    name: str
    path: str | None
    engine: str
    vocab_size: int
    level: str
    config: dict


class ModelsResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"models": [
        {"name": "ptb", "path": "ptb-model", "engine": "numpy", "vocab_size": 10000, "level": "word",
         "config": {"cell": "lstm", "hidden_dim": 256, "num_layers": 2}}]}]})
    models: list[ModelInfo]


class Health(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok", "models": 1}]})
    status: str
    models: int
