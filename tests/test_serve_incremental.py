"""Streamed generation builds its text incrementally (rnnkit.text.tokenize.joiner, serve.stream):
each token's piece is what it appends to `tokenizer.detokenize`, checked on every prefix of
random token sequences (quotes, brackets, clitics, punctuation) against `detokenize` itself; a stream
never detokenizes the whole text (detokenize patched to fail); and the streamed events
concatenate to exactly the non-streamed /v1/generate text and `LanguageModel.generate`, for
word and character models, with stop strings cut from a generated text across token
boundaries (and ones that never or only partly match). Skipped without FastAPI."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

import serve_kit
from rnnkit.serve import create_app
from rnnkit.text import CharTokenizer, WordTokenizer
from rnnkit.text.detok import WholeJoiner
from rnnkit.text.tokenize import joiner
from serve_kit import sse

POOL = ['"', "(", ")", "[", "{", "$", "#", "``", "''", "n't", "N'T", "'s", "'S", "'re", "'m", ".", ",", "?", "...",
        "%", "'", "the", "Cat", "it", "is", "", "a-b", "…"]


lm, char_lm = serve_kit.lm, serve_kit.char_lm  # the shared model fixtures (tests/serve_kit.py)


class Odd(WordTokenizer):
    """A tokenizer whose detokenize is its own: the fallback (whole text each time) is used."""

    def detokenize(self, tokens: list[str]) -> str:
        return "+".join(t.upper() for t in tokens)


@pytest.mark.parametrize("tokenizer", [WordTokenizer(), WordTokenizer(split="whitespace"), CharTokenizer(), Odd()])
def test_each_piece_is_what_detokenize_appends(tokenizer):
    rng = np.random.default_rng(0)
    assert isinstance(joiner(tokenizer), WholeJoiner) == isinstance(tokenizer, Odd)
    for _ in range(300):
        tokens = [POOL[i] for i in rng.integers(0, len(POOL), int(rng.integers(1, 14)))]
        d, text = joiner(tokenizer), ""
        for n, tok in enumerate(tokens, 1):
            text += d.add(tok)
            assert text == tokenizer.detokenize(tokens[:n]), tokens[:n]


def streamed(c: TestClient, body: dict) -> str:
    r = c.post("/v1/generate", json={**body, "stream": True})
    assert r.status_code == 200
    events = sse(r.text)
    text = "".join(d["text"] for e, d in events if e in ("prompt", "token"))
    assert events[-1] == ("done", {"text": text})
    return text


def pieces(c: TestClient, body: dict) -> list[str]:
    """The text each token event of a streamed generation adds."""
    r = c.post("/v1/generate", json={**body, "stream": True})
    return [d["text"] for e, d in sse(r.text) if e == "token"]


def straddling_stops(parts: list[str]) -> list[str]:
    """Stop strings across token boundaries: the last character of one token's piece, then the
    next token's piece (the space between them, if any, included), so they end where a token
    ends (generate tests the text's end after each token)."""
    return [a[-1] + b for a, b in itertools.pairwise(parts) if a and b]


def cases(model, prompt: str, seed: int, max_len: int) -> list[dict]:
    """The option sets compared: no stop, stops straddling token boundaries of the unstopped text,
    a stop longer than the text, stops across the prompt's end and the first token's piece as
    shown (its leading space: stops test the generated text alone, as generate does), several."""
    base = {"prompt": prompt, "seed": seed, "max_len": max_len}
    parts = pieces(TestClient(create_app({"m": model})), base)
    stops = straddling_stops(parts)
    assert stops, base
    plain = model.generate(prompt, seed=seed, max_len=max_len)
    return ([base] + [{**base, "stop": [s]} for s in stops[::3][:4]]
            + [{**base, "stop": [plain + "zz"]}, {**base, "stop": [prompt[-2:] or "q", stops[-1], "zq"]},
               {**base, "stop": [prompt[-1:] + parts[0]]}, {**base, "stop": [parts[0]]}])


@pytest.mark.parametrize(("which", "prompt"), [("word", ""), ("word", "the cat"), ("word", "it 's a"),
                                               ("char", ""), ("char", "the c"), ("char", "a\nb")])
def test_streamed_text_is_exactly_the_generated_text(lm, char_lm, which, prompt, monkeypatch):
    model = lm if which == "word" else char_lm
    c = TestClient(create_app({"m": model}))
    for seed in (1, 2):
        for opts in cases(model, prompt, seed, 30 if which == "word" else 60):
            want = model.generate(opts["prompt"], **{k: v for k, v in opts.items() if k != "prompt"})
            assert c.post("/v1/generate", json=opts).json()["text"] == want
            with monkeypatch.context() as m:  # a stream never detokenizes the whole text
                m.setattr(model.tokenizer, "detokenize", lambda tokens: pytest.fail("detokenize called"))
                assert streamed(c, opts) == want, opts


def test_a_straddling_stop_ends_the_stream_early(lm, char_lm):
    for model in (lm, char_lm):
        body = {"seed": 3, "max_len": 40}
        plain = model.generate("", **body)
        c = TestClient(create_app({"m": model}))
        parts = pieces(c, body)
        stop = straddling_stops(parts)[1]  # ends where the third token ends
        text = streamed(c, {**body, "stop": [stop]})
        assert text.endswith(stop) and len(text) <= len("".join(parts[:3])) < len(plain)
        assert plain.startswith(text)


def test_stops_test_the_generated_text_alone(lm):
    """A stop with the space the shown text puts before the first new token (or the prompt's end
    before it) is not in the generated text, which starts with that token: no stop there."""
    c = TestClient(create_app({"m": lm}))
    seed = next(s for s in range(100) if pieces(c, {"prompt": "the cat", "seed": s, "max_len": 8})[0][:1] == " ")
    body = {"prompt": "the cat", "seed": seed, "max_len": 8}
    first = pieces(c, body)[0]
    for stop in (first, "t" + first):
        want = lm.generate("the cat", seed=seed, max_len=8, stop=[stop])
        assert streamed(c, {**body, "stop": [stop]}) == want == c.post("/v1/generate", json={
            **body, "stop": [stop]}).json()["text"]
        assert len(want) > len("the cat" + first)  # it went on past the first token
