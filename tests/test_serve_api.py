"""`rnnkit serve`'s HTTP API (rnnkit.serve) against the Python API: every endpoint gives the
numbers LanguageModel gives, every limit holds at limit-1 and limit and answers limit+1 with
a 4xx naming the field, the limit and the value; bad input never gives a 5xx; the API key,
CORS, the generation slots (429) and the time limit (504). Skipped without FastAPI."""

from __future__ import annotations

import math
import subprocess
import sys
import threading
import warnings

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's note about httpx versions
    from fastapi.testclient import TestClient

import rnnkit
import serve_kit
from conftest import make_model_dir
from rnnkit.cli import main
from rnnkit.serve import Limits, create_app
from serve_kit import sse

SENTENCES = ["the cat sat on the mat .", "a dog ran .", "zebra unknown words", ""]


lm, char_lm = serve_kit.lm, serve_kit.char_lm  # the shared model fixtures (tests/serve_kit.py)


def client(lm, **kw) -> TestClient:
    limits = kw.pop("limits", Limits())
    return TestClient(create_app({"word": lm}, limits, **kw))


# ---------------------------------------------------------------------------- the numbers


def test_health_and_models(lm):
    c = client(lm)
    assert c.get("/health").json() == {"status": "ok", "models": 1}
    (info,) = c.get("/v1/models").json()["models"]
    assert info["name"] == "word" and info["engine"] == "numpy" and info["level"] == "word"
    assert info["vocab_size"] == len(lm.vocab) and info["config"] == lm.config.to_dict()
    assert c.get("/openapi.json").status_code == 200 and c.get("/docs").status_code == 200


def test_every_endpoint_has_an_example(lm):
    schema = client(lm).get("/openapi.json").json()
    for name in ("ScoreRequest", "PredictRequest", "GenerateRequest", "ScoreResponse", "PredictResponse",
                 "GenerateResponse", "ModelsResponse", "Health"):
        assert schema["components"]["schemas"][name].get("examples"), name


@pytest.mark.parametrize("opts", [{}, {"log_base": "10"}, {"log_base": "2", "bos": False},
                                  {"eos": False, "oov": "skip"}])
def test_score_equals_the_api(lm, opts):
    body = client(lm).post("/v1/score", json={"sentences": SENTENCES, "per_token": True, **opts}).json()
    ln_b = math.log({"e": math.e, "10": 10, "2": 2}[opts.get("log_base", "e")])
    ref = lm.score_sentences(SENTENCES, bos=opts.get("bos", True), eos=opts.get("eos", True),
                             oov=opts.get("oov", "unk"), per_token=True, detail=True)
    assert len(body["sentences"]) == len(ref)
    for got, want in zip(body["sentences"], ref):
        assert got["text"] == want.text and got["tokens"] == want.num_scored and got["oov"] == want.num_oov
        assert got["logprob"] == pytest.approx(want.logprob / ln_b, rel=1e-12, abs=1e-12)
        assert got["ppl"] == (pytest.approx(want.ppl) if want.num_scored else None)
        assert len(got["token_scores"]) == len(want.tokens)
        for g, w in zip(got["token_scores"], want.tokens):
            assert (g["token"], g["oov"], g["start"], g["end"]) == (w.token, w.is_oov, w.start, w.end)
            if w.scored:
                assert g["logprob"] == pytest.approx(w.logprob / ln_b)
                assert g["surprisal"] == pytest.approx(-w.logprob / math.log(2))
                assert g["rank"] == w.rank
            else:
                assert g["logprob"] is None and g["surprisal"] is None and g["rank"] is None
            assert g["entropy"] == pytest.approx(w.entropy / math.log(2))


def test_score_without_per_token_has_totals_only(lm):
    (got,) = client(lm).post("/v1/score", json={"sentences": ["a dog ran ."]}).json()["sentences"]
    assert "token_scores" not in got or got["token_scores"] is None
    assert got["logprob"] == pytest.approx(lm.score("a dog ran ."))


@pytest.mark.parametrize("top_k", [1, 5, 0])
def test_predict_equals_the_api(lm, top_k):
    body = client(lm).post("/v1/predict", json={"prompt": "the cat", "top_k": top_k}).json()
    pairs = lm.predict("the cat", top_k=top_k)
    assert [t["token"] for t in body["top"]] == [t for t, _ in pairs]
    assert [t["prob"] for t in body["top"]] == pytest.approx([p for _, p in pairs], rel=1e-12)
    assert [t["id"] for t in body["top"]] == lm.vocab.encode([t for t, _ in pairs])


@pytest.mark.parametrize("prompt", ["", "   ", "zebra qqq"])
def test_predict_refuses_a_prompt_with_nothing_to_predict_from(lm, prompt):  # as rnnkit predict
    r = client(lm).post("/v1/predict", json={"prompt": prompt, "top_k": 3})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "prompt"]


GEN_OPTIONS = [{"seed": 1}, {"prompt": "the", "seed": 7, "temperature": 0.7, "top_k": 5},
               {"prompt": "a dog", "seed": 3, "top_p": 0.8, "min_len": 3, "max_len": 12},
               {"greedy": True, "max_len": 8}, {"prompt": "the", "seed": 2, "stop": ["."]}]


@pytest.mark.parametrize("opts", GEN_OPTIONS + [{"beam": 3, "num_samples": 2, "max_len": 6},
                                                {"seed": 5, "num_samples": 3}])
def test_generate_equals_the_api(lm, opts):
    body = client(lm).post("/v1/generate", json=opts).json()
    want = lm.generate(opts.get("prompt", ""), **{k: v for k, v in opts.items() if k != "prompt"})
    want = [want] if isinstance(want, str) else want
    assert body["texts"] == want and body["text"] == want[0]


def streamed(c: TestClient, body: dict) -> tuple[str, list[tuple[str, dict]]]:
    r = c.post("/v1/generate", json={**body, "stream": True})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = sse(r.text)
    return "".join(d["text"] for e, d in events if e in ("prompt", "token")), events


@pytest.mark.parametrize("opts", GEN_OPTIONS)
def test_streamed_generation_equals_non_streamed(lm, opts):
    c = client(lm)
    text, events = streamed(c, opts)
    plain = c.post("/v1/generate", json=opts).json()["text"]
    assert text == plain and events[-1] == ("done", {"text": plain})
    assert all(e == "token" for e, _ in events[1 if opts.get("prompt") else 0:-1])


@pytest.mark.parametrize("opts", [{"prompt": "the c", "seed": 4, "max_len": 40},
                                  {"prompt": "a\nb", "seed": 1, "max_len": 30, "stop": ["t"]}])
def test_streamed_char_model_equals_the_api(char_lm, opts):
    c = TestClient(create_app({"char": char_lm}))
    text, _ = streamed(c, opts)
    assert text == char_lm.generate(opts["prompt"], **{k: v for k, v in opts.items() if k != "prompt"})


def test_stream_refuses_beam_and_samples(lm):
    r = client(lm).post("/v1/generate", json={"beam": 2, "stream": True})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "stream"]


def test_torch_engine(tmp_path):
    pytest.importorskip("torch")
    tlm = rnnkit.load(make_model_dir(tmp_path / "m"), engine="torch", device="cpu")
    c = TestClient(create_app({"t": tlm}))
    assert c.get("/v1/models").json()["models"][0]["engine"] == "torch"
    got = c.post("/v1/score", json={"sentences": SENTENCES[:2]}).json()["sentences"]
    assert [g["logprob"] for g in got] == pytest.approx([s.logprob for s in tlm.score_sentences(SENTENCES[:2])])
    text, _ = streamed(c, {"prompt": "the", "seed": 9})
    assert text == tlm.generate("the", seed=9) == c.post("/v1/generate", json={"prompt": "the", "seed": 9}).json()["text"]


# ---------------------------------------------------------------------------- limits at limit-1, limit, limit+1


LIMIT_CASES = {  # limit name -> (its value in the test, (endpoint, body for a value), field, value given)
    "max_sentences": (3, lambda n: ("/v1/score", {"sentences": ["a dog ."] * n}), "sentences"),
    "max_chars": (10, lambda n: ("/v1/score", {"sentences": ["a" * n]}), "sentences.0"),
    "max_new_tokens": (5, lambda n: ("/v1/generate", {"max_len": n, "seed": 1}), "max_len"),
    "max_samples": (2, lambda n: ("/v1/generate", {"num_samples": n, "seed": 1}), "num_samples"),
    "max_top_k": (5, lambda n: ("/v1/predict", {"prompt": "the", "top_k": n}), "top_k"),
}


@pytest.mark.parametrize("name", list(LIMIT_CASES))
def test_limit(lm, name):
    limit, make, field = LIMIT_CASES[name]
    c = client(lm, limits=Limits(**{name: limit}))
    for n in (limit - 1, limit):
        path, body = make(n)
        assert c.post(path, json=body).status_code == 200, (name, n)
    path, body = make(limit + 1)
    r = c.post(path, json=body)
    assert r.status_code == 422
    (d,) = r.json()["detail"]
    assert d["loc"] == ["body", *field.split(".")] and d["limit"] == limit and d["value"] == limit + 1
    assert field.split(".")[0] in d["msg"] and str(limit) in d["msg"] and str(limit + 1) in d["msg"]


def test_predict_prompt_chars_and_whole_vocabulary_top_k(lm):
    c = client(lm, limits=Limits(max_chars=5, max_top_k=5))
    r = c.post("/v1/predict", json={"prompt": "the cat", "top_k": 2})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "prompt"]
    r = c.post("/v1/predict", json={"prompt": "the", "top_k": 0})  # 0 is the vocabulary: over 5
    assert r.status_code == 422 and r.json()["detail"][0]["value"] == 0


def body_of(size: int) -> bytes:
    """A valid score request of exactly `size` bytes."""
    head = b'{"sentences": ["'
    return head + b"a" * (size - len(head) - 3) + b'"]}'


def test_body_size_limit(lm):
    c = client(lm, limits=Limits(max_body_bytes=100))
    headers = {"content-type": "application/json"}
    for n in (99, 100):
        assert c.post("/v1/score", content=body_of(n), headers=headers).status_code == 200
    r = c.post("/v1/score", content=body_of(101), headers=headers)
    assert r.status_code == 413 and "100" in r.json()["detail"] and "101" in r.json()["detail"]
    r = c.post("/v1/score", content=iter([body_of(101)[:60], body_of(101)[60:]]), headers=headers)  # chunked
    assert r.status_code == 413


class Held:
    """A patched model step that blocks, deterministically: `entered` is set when a step is
    running, and it goes on when `release` is set."""

    def __init__(self, monkeypatch, lm):
        self.entered, self.release, self.step = threading.Event(), threading.Event(), lm.model.step_logprobs

        def step(*args):
            self.entered.set()
            assert self.release.wait(30)
            return self.step(*args)

        monkeypatch.setattr(lm.model, "step_logprobs", step)


def test_concurrent_generations_full_is_429(lm, char_lm, monkeypatch):
    """max_generations 2: one running (limit-1) and two (the limit) are accepted, a third is 429;
    the generations are held in their model steps (one per model: a model runs one at a time)."""
    c = TestClient(create_app({"word": lm, "char": char_lm}, Limits(max_generations=2)))
    held = {"word": Held(monkeypatch, lm), "char": Held(monkeypatch, char_lm)}
    answers: dict = {}

    def post(name: str) -> threading.Thread:
        t = threading.Thread(target=lambda: answers.update(
            {name: c.post("/v1/generate", json={"model": name, "seed": 1, "max_len": 3})}))
        t.start()
        return t

    threads = []
    try:
        for name in ("word", "char"):
            threads.append(post(name))
            assert held[name].entered.wait(30)
        r = c.post("/v1/generate", json={"model": "word", "seed": 2})
        assert r.status_code == 429
        (d,) = r.json()["detail"]
        assert d["limit"] == 2 and d["value"] == 3 and "--max-generations" in d["msg"]
        assert c.get("/health").status_code == 200  # the event loop is free
    finally:
        for h in held.values():
            h.release.set()
        for t in threads:
            t.join(30)
    assert answers["word"].json()["text"] == lm.generate(seed=1, max_len=3)
    assert answers["char"].json()["text"] == char_lm.generate(seed=1, max_len=3)
    assert c.post("/v1/generate", json={"model": "word", "seed": 2, "max_len": 3}).status_code == 200  # freed


def test_time_limit_is_504_and_a_stream_error_event(lm, monkeypatch):
    c = client(lm, limits=Limits(timeout=1.0))
    held = Held(monkeypatch, lm)
    try:
        r = c.post("/v1/generate", json={"seed": 1, "max_len": 3})
        assert r.status_code == 504 and "--timeout" in r.json()["detail"][0]["msg"]
    finally:
        held.release.set()
    with c.app.state.served["word"].lock:  # the generation that timed out has finished in its thread
        pass
    held = Held(monkeypatch, lm)
    try:
        r = c.post("/v1/generate", json={"seed": 1, "max_len": 3, "stream": True})
        assert r.status_code == 200 and sse(r.text)[-1][0] == "error" and sse(r.text)[-1][1]["status"] == 504
    finally:
        held.release.set()
    assert held.entered.is_set()
    with c.app.state.served["word"].lock:
        pass
    assert c.post("/v1/generate", json={"seed": 1, "max_len": 3}).status_code == 200


# ---------------------------------------------------------------------------- bad input


BAD = [
    ("/v1/score", b"{"), ("/v1/score", b"not json"), ("/v1/score", b"[]"), ("/v1/score", b"null"),
    ("/v1/score", b'{"sentences": "one string"}'), ("/v1/score", b'{"sentences": [1, 2]}'),
    ("/v1/score", b'{"sentences": []}'), ("/v1/score", b'{"sentences": ["a"], "log_base": "7"}'),
    ("/v1/score", b'{"sentences": ["a"], "oov": "drop"}'), ("/v1/score", b'{"sentences": ["a"], "extra": 1}'),
    ("/v1/score", b'{"sentences": ["\xff\xfe bad utf-8"]}'), ("/v1/score", b'{"sentences": ["a"], "model": "nope"}'),
    ("/v1/predict", b'{"prompt": "the", "top_k": -1}'), ("/v1/predict", b'{"prompt": "the", "top_k": 1e400}'),
    ("/v1/predict", b'{"prompt": "the", "top_k": 99999999999999999999999999}'),
    ("/v1/predict", b'{"prompt": "", "bos": false}'),
    ("/v1/predict", b'{"top_k": 3}'), ("/v1/predict", b'{"prompt": null}'),
    ("/v1/generate", b'{"max_len": 0}'), ("/v1/generate", b'{"max_len": 1e308}'),
    ("/v1/generate", b'{"seed": 99999999999999999999999}'), ("/v1/generate", b'{"seed": -1}'),
    ("/v1/generate", b'{"temperature": 0}'), ("/v1/generate", b'{"temperature": "hot"}'),
    ("/v1/generate", b'{"top_p": 2}'), ("/v1/generate", b'{"stop": [""]}'), ("/v1/generate", b'{"min_len": 60}'),
    ("/v1/generate", b'{"beam": 2, "num_samples": 3}'), ("/v1/generate", b'{"prompt": "zzzz qqqq"}'),
    ("/v1/generate", b'{"length_penalty": NaN}'), ("/v1/generate", b'{"temperature": Infinity}'),
    ("/v1/models", b"{}"), ("/v1/score", b'{"sentences": ["a \\ud800 b"]}'),
    ("/v1/predict", b'{"prompt": "\\udfff"}'), ("/v1/generate", b'{"prompt": "the \\ud800", "stream": true}'),
    ("/v1/generate", b'{"stop": ["\\ud800"]}'),
]


@pytest.mark.parametrize(("path", "body"), BAD)
def test_bad_input_is_a_4xx_never_a_5xx(lm, path, body):
    r = client(lm).post(path, content=body, headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500, (r.status_code, r.text)


def test_unknown_model_and_the_model_field(lm, char_lm):
    c = TestClient(create_app({"word": lm, "char": char_lm}))
    r = c.post("/v1/score", json={"sentences": ["a"], "model": "nope"})
    assert r.status_code == 404 and "nope" in r.json()["detail"][0]["msg"]
    r = c.post("/v1/score", json={"sentences": ["a"]})  # two models: name one
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "model"]
    r = c.post("/v1/score", json={"sentences": ["a b"], "model": "char"})
    assert r.json()["sentences"][0]["tokens"] == char_lm.score_sentences(["a b"])[0].num_scored


def test_empty_sentence_scores_as_the_api(lm):
    (got,) = client(lm).post("/v1/score", json={"sentences": [""]}).json()["sentences"]
    assert got["logprob"] == pytest.approx(lm.score(""))


# ---------------------------------------------------------------------------- API key, CORS


def test_api_key(lm):
    c = client(lm, api_key="s3cret")
    body = {"sentences": ["a dog ."]}
    assert c.get("/health").status_code == 200
    for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
        r = c.post("/v1/score", json=body, headers=headers)
        assert r.status_code == 401 and "X-API-Key" in r.json()["detail"]
    assert c.get("/v1/models").status_code == 401
    assert c.post("/v1/score", json=body, headers={"X-API-Key": "s3cret"}).status_code == 200
    assert c.post("/v1/score", json=body, headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_cors_only_when_asked(lm):
    origin = {"Origin": "http://localhost:3000"}
    r = client(lm).get("/v1/models", headers=origin)
    assert "access-control-allow-origin" not in r.headers
    c = client(lm, cors=["http://localhost:3000"], api_key="k")
    r = c.get("/v1/models", headers={**origin, "X-API-Key": "k"})
    assert r.headers["access-control-allow-origin"] == "http://localhost:3000"
    pre = c.options("/v1/score", headers={**origin, "Access-Control-Request-Method": "POST",
                                          "Access-Control-Request-Headers": "x-api-key,content-type"})
    assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == "http://localhost:3000"
    r = c.get("/v1/models", headers={"Origin": "http://evil.example", "X-API-Key": "k"})
    assert "access-control-allow-origin" not in r.headers


# ---------------------------------------------------------------------------- the command


def test_serve_command_binds_localhost_by_default(lm, monkeypatch, tmp_path):
    import uvicorn

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    monkeypatch.setenv("RNNKIT_API_KEY", "envkey")
    path = make_model_dir(tmp_path / "m1")
    assert main(["serve", str(path), "--max-top-k", "3"]) == 0
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8000
    c = TestClient(seen["app"])
    assert c.get("/v1/models").status_code == 401
    r = c.post("/v1/predict", json={"prompt": "the", "top_k": 4}, headers={"X-API-Key": "envkey"})
    assert r.status_code == 422 and r.json()["detail"][0]["limit"] == 3
    assert main(["serve", str(path), "--timeout", "0"]) == 1


def test_missing_fastapi_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "fastapi", None)
    assert main(["serve", str(make_model_dir(tmp_path / "m"))]) == 1
    err = capsys.readouterr().err
    assert err.startswith("rnnkit: error:") and "pip install 'rnnkit[serve]'" in err and err.count("\n") == 1


def test_nothing_outside_serve_imports_fastapi():
    code = ("import sys, rnnkit, rnnkit.api, rnnkit.cli, rnnkit.serve.limits; "
            "rnnkit.cli.build_parser().format_help(); print(sorted(m for m in sys.modules if 'fastapi' in m "
            "or 'starlette' in m or m.startswith('rnnkit.serve.app')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
