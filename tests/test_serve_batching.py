"""Micro-batching of /v1/score (rnnkit.serve.batcher): concurrent requests scored in one batched
call get the numbers of `LanguageModel.score_sentences` over each request alone (counts,
tokens, offsets and ranks exactly; log-probabilities to float32 rounding: BLAS sums in an
order that depends on the batch's shape), a failing request does not fail the others of its
batch, a request past its time limit is left out, and --batch-window-ms reaches the app.

Concurrency is forced without timing: the test holds the model's lock (as a running
generation would), sends the requests from threads, waits until the batcher has queued them
all (a bounded number of polls), then lets the model go; `batcher.sizes` shows the batches run.
Skipped without FastAPI."""

from __future__ import annotations

import math
import threading
import time
import warnings
from collections import Counter

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

import serve_kit
from conftest import make_model_dir
from rnnkit.cli import main
from rnnkit.errors import InputError
from rnnkit.serve import Limits, create_app

ATTEMPTS = 800  # polls of the batcher's queue, each after a short pause: a bound in attempts
SENTENCES = ["the cat sat on the mat .", "a dog ran .", "zebra unknown words", "", "the bird sang a song .",
             "it's a dog's life , isn't it ?", "the", "a cat and a dog played in the garden ."]


lm = serve_kit.lm  # the shared model fixture (tests/serve_kit.py)


def wait_queued(batcher, n: int) -> None:
    for _ in range(ATTEMPTS):
        if batcher.queued() == n:
            return
        time.sleep(0.01)
    assert batcher.queued() == n, f"{batcher.queued()} requests queued, expected {n}"


def concurrently(c: TestClient, bodies: list[dict]) -> list:
    """Post `bodies` to /v1/score while the model is held; all are queued before it is let go."""
    m = c.app.state.served["word"]
    answers: list = [None] * len(bodies)

    def post(i: int) -> None:
        answers[i] = c.post("/v1/score", json=bodies[i])

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(bodies))]
    with m.lock:
        for t in threads:
            t.start()
        wait_queued(m.batcher, len(bodies))
    for t in threads:
        t.join(60)
    return answers


def same(got: dict, want, ln_b: float = 1.0, rel: float = 1e-6) -> None:
    """A /v1/score sentence equal to a SentenceScore: counts, tokens, offsets and ranks exactly,
    log-probabilities and entropies to `rel`."""
    assert (got["text"], got["tokens"], got["words"], got["oov"]) == (want.text, want.num_scored, want.num_words,
                                                                      want.num_oov)
    assert got["logprob"] == pytest.approx(want.logprob / ln_b, rel=rel, abs=rel)
    if want.tokens is None:
        assert got.get("token_scores") is None
        return
    assert len(got["token_scores"]) == len(want.tokens)
    for g, w in zip(got["token_scores"], want.tokens):
        assert (g["token"], g["oov"], g["start"], g["end"]) == (w.token, w.is_oov, w.start, w.end)
        assert g["rank"] == (w.rank if w.scored else None)
        if w.scored:
            assert g["logprob"] == pytest.approx(w.logprob / ln_b, rel=rel, abs=rel)
            assert g["entropy"] == pytest.approx(w.entropy / math.log(2), rel=rel, abs=rel)


BODIES = [  # two option groups (per_token, and bos/eos/oov): each is one batch
    {"sentences": SENTENCES[:3], "per_token": True, "log_base": "10"},
    {"sentences": SENTENCES[3:4], "per_token": True},
    {"sentences": SENTENCES[4:8], "per_token": True, "log_base": "2", "alternatives": 2},
    {"sentences": SENTENCES[1:5], "bos": False, "eos": False, "oov": "skip"},
    {"sentences": SENTENCES[5:8] + SENTENCES[:1], "bos": False, "eos": False, "oov": "skip", "log_base": "10"},
    {"sentences": SENTENCES[2:4], "bos": False, "eos": False, "oov": "skip"},
]


@pytest.mark.parametrize("window_ms", [0, 5])
def test_concurrent_requests_are_batched_and_equal_the_api(lm, window_ms):
    c = TestClient(create_app({"word": lm}, batch_window_ms=window_ms))
    alone = [c.post("/v1/score", json=b).json() for b in BODIES]  # one after another: each alone
    assert c.app.state.served["word"].batcher.sizes == Counter({1: len(BODIES)})
    answers = concurrently(c, BODIES)
    assert c.app.state.served["word"].batcher.sizes == Counter({1: len(BODIES), 3: 2})  # 2 batches of 3
    for body, r, single in zip(BODIES, answers, alone):
        assert r.status_code == 200, r.text
        per_token = body.get("per_token", False)
        want = lm.score_sentences(body["sentences"], bos=body.get("bos", True), eos=body.get("eos", True),
                                  oov=body.get("oov", "unk"), per_token=per_token, detail=per_token)
        ln_b = math.log({"e": math.e, "10": 10.0, "2": 2.0}[body.get("log_base", "e")])
        got = r.json()
        assert got["log_base"] == body.get("log_base", "e") and len(got["sentences"]) == len(want)
        for g, s, w in zip(got["sentences"], single["sentences"], want):
            same(s, w, ln_b, rel=1e-12)  # alone: the very call score_sentences makes
            same(g, w, ln_b)
        if body.get("alternatives"):
            assert [t.get("alternatives") for g in got["sentences"] for t in g["token_scores"]] == [
                t.get("alternatives") for g in single["sentences"] for t in g["token_scores"]]


def test_a_failing_request_does_not_fail_its_batch(lm, monkeypatch):
    score = lm.score_sentences

    def poisoned(sentences, **kw):
        if any("POISON" in s for s in sentences):
            raise InputError("<request>: POISON is not allowed")
        return score(sentences, **kw)

    monkeypatch.setattr(lm, "score_sentences", poisoned)
    c = TestClient(create_app({"word": lm}))
    bodies = [{"sentences": SENTENCES[:2]}, {"sentences": ["a POISON ."]}, {"sentences": SENTENCES[2:6]}]
    answers = concurrently(c, bodies)
    assert c.app.state.served["word"].batcher.sizes == Counter({3: 1})  # all three in one batch
    bad = answers[1]
    assert bad.status_code == 422 and "POISON is not allowed" in bad.json()["detail"][0]["msg"]
    for i in (0, 2):
        assert answers[i].status_code == 200
        for g, w in zip(answers[i].json()["sentences"], score(bodies[i]["sentences"], per_token=False)):
            same(g, w, rel=1e-12)  # scored alone after the batched call failed


def test_a_request_past_its_time_limit_is_left_out(lm):
    c = TestClient(create_app({"word": lm}, Limits(timeout=1.0)))
    m = c.app.state.served["word"]
    answers: dict = {}
    with m.lock:  # the model is busy past the first request's time limit
        t = threading.Thread(target=lambda: answers.update(late=c.post("/v1/score", json={"sentences": ["a"]})))
        t.start()
        t.join(60)
        r = answers["late"]
        assert r.status_code == 504 and "--timeout" in r.json()["detail"][0]["msg"]
        assert m.batcher.queued() == 1  # still queued, given up
        t = threading.Thread(target=lambda: answers.update(next=c.post("/v1/score", json={"sentences": ["a dog ."]})))
        t.start()
        wait_queued(m.batcher, 2)
    t.join(60)
    assert answers["next"].json()["sentences"][0]["logprob"] == pytest.approx(lm.score("a dog ."), rel=1e-12)
    assert m.batcher.sizes == Counter({1: 1})  # the one that gave up was not scored


def test_batching_off_scores_each_request_alone(lm):
    c = TestClient(create_app({"word": lm}, batch_window_ms=None))
    assert c.app.state.served["word"].batcher is None
    got = c.post("/v1/score", json={"sentences": SENTENCES}).json()["sentences"]
    for g, w in zip(got, lm.score_sentences(SENTENCES, per_token=False)):
        same(g, w, rel=1e-12)


def test_batch_window_option(lm, monkeypatch, tmp_path, capsys):
    import uvicorn

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app))
    path = make_model_dir(tmp_path / "m")
    for flag, window in (([], 0.0), (["--batch-window-ms", "2.5"], 2.5), (["--batch-window-ms", "off"], None)):
        assert main(["serve", str(path), *flag]) == 0
        assert seen["app"].state.serve.batch_window_ms == window
        batcher = seen["app"].state.served["m"].batcher
        assert (batcher is None) == (window is None) and (window is None or batcher.window_s == window / 1e3)
    with pytest.raises(SystemExit):
        main(["serve", str(path), "--batch-window-ms", "-1"])
    assert "--batch-window-ms" in capsys.readouterr().err
