"""`rnnkit serve`'s page at `/` (src/rnnkit/serve/static/) and the `alternatives` field of
/v1/score behind its hover. Without a browser: the page and its files are served (without the
API key) and reference nothing outside the server, and each token's alternatives equal
LanguageModel.predict of its prefix. With headless Chromium (Selenium and chromedriver;
skipped when either is missing), against uvicorn on a free local port: a typed sentence's
coloured tokens (count, order, text) and the numbers their hover shows (logprob, rank, top-5)
equal /v1/score's; a streamed generation ends with /v1/generate's text for the same seed and
controls; the model picker switches models; a server with an API key asks for it.

RNNKIT_SCREENSHOTS=DIR saves DIR/serve-score.png and DIR/serve-generate.png (docs/ holds
those, taken with runs/shakespeare-char-lstm served when it exists)."""

from __future__ import annotations

import math
import os
import re
import shutil
import socket
import threading
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's note about httpx versions
    from fastapi.testclient import TestClient

import rnnkit
import serve_kit
from rnnkit.serve import create_app

STATIC = Path(rnnkit.__file__).parent / "serve" / "static"
SENTENCE = "the cat sat on the zebra mat ."
TRAINED = Path(__file__).resolve().parents[1] / "runs" / "shakespeare-char-lstm"


lm, char_lm = serve_kit.lm, serve_kit.char_lm  # the shared model fixtures (tests/serve_kit.py)


# ---------------------------------------------------------------------------- no browser


def test_page_is_served_without_the_key(lm):
    c = TestClient(create_app({"word": lm}, api_key="sekrit"))
    page = c.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for name, kind in (("page.js", "javascript"), ("page.css", "css")):
        r = c.get(f"/static/{name}")
        assert r.status_code == 200 and kind in r.headers["content-type"], name
        assert f'static/{name}' in page.text
    assert c.get("/static/nothing.js").status_code == 401  # only the page's own files are open
    assert TestClient(create_app({"word": lm})).get("/static/nothing.js").status_code == 404
    assert c.get("/static/..%2Fapp.py").status_code in (401, 404)
    assert c.get("/v1/models").status_code == 401
    assert "/" not in c.get("/openapi.json").json()["paths"]


def test_page_fetches_nothing_from_elsewhere():
    for path in STATIC.iterdir():
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/|@import|url\(", text, re.IGNORECASE), path.name


@pytest.mark.parametrize("opts", [{}, {"bos": False, "log_base": "10"}, {"oov": "skip", "eos": False}])
def test_alternatives_equal_predict_of_the_prefix(lm, opts):
    text = SENTENCE
    c = TestClient(create_app({"word": lm}))
    body = c.post("/v1/score", json={"sentences": [text, ""], "per_token": True, "alternatives": 5, **opts}).json()
    ln_b = math.log({"e": math.e, "10": 10, "2": 2}[opts.get("log_base", "e")])
    tokens = body["sentences"][0]["token_scores"]
    assert len(tokens) == len(lm.score_sentences([text], **{k: v for k, v in opts.items() if k != "log_base"},
                                                 per_token=True)[0].tokens)
    for t in tokens:
        prefix = text[:t["start"]].rstrip()
        if not opts.get("bos", True) and not prefix:
            continue  # never predicted from nothing
        want = lm.predict(prefix, top_k=5, bos=opts.get("bos", True))
        assert [a["token"] for a in t["alternatives"]] == [w for w, _ in want]
        assert [a["prob"] for a in t["alternatives"]] == pytest.approx([p for _, p in want], rel=1e-5)
        assert [a["logprob"] for a in t["alternatives"]] == pytest.approx(
            [math.log(p) / ln_b for _, p in want], rel=1e-5)
        if t["rank"] is not None and t["rank"] <= 5:
            assert t["alternatives"][t["rank"] - 1]["token"] in (t["token"], "<unk>")
    empty = body["sentences"][1]["token_scores"]  # "": </s> after <s> alone, or nothing to predict
    assert [t["token"] for t in empty] == ([] if not opts.get("eos", True) or not opts.get("bos", True) else ["</s>"])


def test_alternatives_char_model_and_limits(char_lm, lm):
    c = TestClient(create_app({"char": char_lm}))
    text = "the cat"
    (s,) = c.post("/v1/score", json={"sentences": [text], "per_token": True, "alternatives": 3}).json()["sentences"]
    for t in s["token_scores"]:
        want = char_lm.predict(text[:t["start"]], top_k=3)
        assert [a["token"] for a in t["alternatives"]] == [w for w, _ in want]
    c = TestClient(create_app({"word": lm}))
    r = c.post("/v1/score", json={"sentences": ["a"], "per_token": True, "alternatives": 11})
    assert r.status_code == 422 and "alternatives" in str(r.json()["detail"])
    (s,) = c.post("/v1/score", json={"sentences": ["a"], "alternatives": 3}).json()["sentences"]
    assert s.get("token_scores") is None  # alternatives come with per_token only
    (s,) = c.post("/v1/score", json={"sentences": ["a"], "per_token": True}).json()["sentences"]
    assert all(t.get("alternatives") is None for t in s["token_scores"])


# ---------------------------------------------------------------------------- the browser


def _browser():
    """(chromium, chromedriver) paths, or a skip naming what is missing."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.skip("selenium is not installed (pip install selenium)")
    chromium = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("no headless browser: apt-get install chromium chromium-driver")
    return chromium, driver


@contextmanager
def serving(models: dict, **kw):
    """The app on uvicorn in a thread at 127.0.0.1 and a free port: yields its base URL."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(models, **kw), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def browser():
    chromium, driver_path = _browser()
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1100,900", "--force-device-scale-factor=1"):
        opts.add_argument(arg)
    try:
        drv = webdriver.Chrome(service=Service(executable_path=driver_path), options=opts)
    except WebDriverException as e:  # a driver that cannot start a browser here
        pytest.skip(f"chromium did not start: {' '.join(str(e).split())[:200]}")
    drv.set_script_timeout(30)
    yield drv
    drv.quit()


def wait(drv, cond, what: str, timeout: float = 20):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(drv, timeout, poll_frequency=0.05, ignored_exceptions=(StaleElementReferenceException,)
                         ).until(lambda d: cond(d), message=what)


def by(drv, css: str, many: bool = False):
    from selenium.webdriver.common.by import By

    return drv.find_elements(By.CSS_SELECTOR, css) if many else drv.find_element(By.CSS_SELECTOR, css)


def type_and_score(drv, text: str):
    """Type one sentence, score it, wait until the page shows it (the text between its tokens, then </s>)."""
    box = by(drv, "#score-text")
    box.clear()
    box.send_keys(text)
    by(drv, "#score-button").click()
    wait(drv, lambda d: [e.get_attribute("textContent") for e in by(d, "#score-out .line", many=True)]
         == [text + "</s>"], f"{text!r} scored")


def set_value(drv, css: str, value) -> None:
    drv.execute_script("const e = document.querySelector(arguments[0]); e.value = arguments[1];"
                       "e.dispatchEvent(new Event('input'));", css, str(value))


def hover(drv, element) -> dict:
    """The tooltip's numbers after moving the mouse onto `element`."""
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(drv).move_to_element(element).perform()
    wait(drv, lambda d: by(d, "#tip").is_displayed(), "the tooltip")
    return {"token": by(drv, "#tip .tip-token").text, "logprob": by(drv, "#tip .tip-logprob").text,
            "rank": by(drv, "#tip .tip-rank").text,
            "alternatives": [e.text for e in by(drv, "#tip .alt-token", many=True)]}


def test_page_scores_hovers_and_streams(browser, lm, char_lm):
    drv = browser
    with serving({"word": lm, "char": char_lm}) as url:
        drv.get(url)
        wait(drv, lambda d: by(d, "#model-info table", many=True), "the model's configuration")
        assert by(drv, "#model-picker").is_displayed()  # two models: the picker shows
        info = by(drv, "#model-info").text
        assert "hidden_dim 8" in info and "numpy" in info and str(lm.path) in info

        type_and_score(drv, SENTENCE)
        want = httpx.post(url + "v1/score", json={"model": "word", "sentences": [SENTENCE], "per_token": True,
                                                  "alternatives": 5}).json()["sentences"][0]["token_scores"]
        wait(drv, lambda d: len(by(d, "#score-out .tok", many=True)) == len(want), "the coloured tokens")
        spans = by(drv, "#score-out .tok", many=True)
        assert [s.text for s in spans] == [t["token"] for t in want]  # order and text; </s> last
        colours = {s.value_of_css_property("background-color") for s in spans}
        assert len(colours) > 1  # coloured by surprisal, not all alike
        assert by(drv, "#score-out .line").get_attribute("textContent") == SENTENCE + "</s>"
        for span, t in zip(spans, want):
            tip = hover(drv, span)
            assert tip["token"].split()[0] == t["token"]
            assert float(tip["logprob"]) == pytest.approx(t["logprob"], abs=6e-5)
            assert int(tip["rank"]) == t["rank"]
            assert tip["alternatives"] == [a["token"] for a in t["alternatives"]]

        # a streamed generation with the controls: the text /v1/generate gives for the seed
        opts = {"prompt": "the cat", "seed": 11, "temperature": 0.8, "top_p": 0.9, "max_len": 12}
        prompt = by(drv, "#gen-prompt")
        prompt.clear()
        prompt.send_keys(opts["prompt"])
        set_value(drv, "#temperature", opts["temperature"])
        set_value(drv, "#top-p", opts["top_p"])
        assert by(drv, "#temperature-value").text == "0.80" and by(drv, "#top-p-value").text == "0.90"
        for css, key in (("#seed", "seed"), ("#max-len", "max_len")):
            by(drv, css).clear()
            by(drv, css).send_keys(str(opts[key]))
        by(drv, "#gen-button").click()
        wait(drv, lambda d: by(d, "#gen-status").get_attribute("data-state") in ("done", "error"), "the stream")
        assert by(drv, "#gen-status").get_attribute("data-state") == "done", by(drv, "#gen-status").text
        text = httpx.post(url + "v1/generate", json={"model": "word", **opts}).json()["text"]
        assert by(drv, "#gen-out").get_attribute("textContent") == text
        assert by(drv, "#gen-out").get_attribute("data-text") == text
        assert len(by(drv, "#gen-out .new", many=True)) >= 1

        # the picker: the character model scores characters
        from selenium.webdriver.support.ui import Select

        Select(by(drv, "#model")).select_by_value("char")
        wait(drv, lambda d: "hidden_dim" in by(d, "#model-info").text and "char" in by(d, "#model-info").text,
             "the character model's configuration")
        type_and_score(drv, "a cat")
        want = httpx.post(url + "v1/score", json={"model": "char", "sentences": ["a cat"], "per_token": True}
                          ).json()["sentences"][0]["token_scores"]
        assert [t["token"] for t in want] == [*"a cat", "</s>"]
        wait(drv, lambda d: [s.get_attribute("textContent") for s in by(d, "#score-out .tok", many=True)]
             == [t["token"] for t in want], "the characters")
        assert by(drv, "#score-out .line").get_attribute("textContent") == "a cat</s>"


def test_page_asks_for_the_api_key(browser, lm):
    drv = browser
    with serving({"word": lm}, api_key="sekrit") as url:
        drv.get(url)
        wait(drv, lambda d: "API key" in by(d, "#server-status").text, "the request for a key")
        assert not by(drv, "#model-picker").is_displayed()
        key = by(drv, "#api-key")
        key.send_keys("sekrit\n")
        wait(drv, lambda d: "1 model served" in by(d, "#server-status").text, "the models, with the key")
        type_and_score(drv, "a dog ran .")
        wait(drv, lambda d: len(by(d, "#score-out .tok", many=True)) == 5, "the tokens, with the key")


@pytest.mark.skipif(not os.environ.get("RNNKIT_SCREENSHOTS"), reason="set RNNKIT_SCREENSHOTS=DIR to take them")
def test_screenshots(browser, lm):
    out = Path(os.environ["RNNKIT_SCREENSHOTS"])
    out.mkdir(parents=True, exist_ok=True)
    models = {TRAINED.name: rnnkit.load(TRAINED)} if TRAINED.is_dir() else {}
    drv = browser
    with serving({**models, "tiny-word": lm}) as url:
        drv.set_window_size(1000, 780)
        drv.get(url)
        wait(drv, lambda d: by(d, "#model-info table", many=True), "the model's configuration")
        text = "Shall I compare thee to a summer's day?" if models else SENTENCE
        type_and_score(drv, text)
        wait(drv, lambda d: len(by(d, "#score-out .tok", many=True)) > 5, "the tokens")
        spans = by(drv, "#score-out .tok", many=True)
        ranks = drv.execute_script("return [...document.querySelectorAll('#score-out .tok')].map(s => s.tok.rank)")
        second = [i for i, r in enumerate(ranks) if r in (2, 3) and i >= len(ranks) // 3]  # a near miss
        hover(drv, spans[second[0] if second else len(spans) // 2])
        drv.save_screenshot(str(out / "serve-score.png"))
        prompt = by(drv, "#gen-prompt")
        prompt.clear()
        prompt.send_keys("ROMEO:" if models else "the")
        set_value(drv, "#temperature", 0.7)
        set_value(drv, "#top-p", 0.95)
        for css, value in (("#seed", 4), ("#max-len", 200 if models else 20)):
            by(drv, css).clear()
            by(drv, css).send_keys(str(value))
        by(drv, "#gen-button").click()
        wait(drv, lambda d: by(d, "#gen-status").get_attribute("data-state") == "done", "the stream", 60)
        drv.set_window_size(1000, 610)
        drv.execute_script("document.getElementById('generate-section').scrollIntoView()")
        drv.save_screenshot(str(out / "serve-generate.png"))
    drv.set_window_size(1100, 900)
