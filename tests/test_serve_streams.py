"""A slow client or a dropped connection in the middle of a server-sent-event stream does not
stop `rnnkit serve` from answering others, and a dropped stream gives its generation slot back.

A real uvicorn server (create_app over a tiny random model) runs in a thread on a loopback
socket of the test's own. A stream is opened with a raw socket whose receive buffer is small,
one event is read, then the client stops reading (the server's writes back up: a slow
client); meanwhile /health, /v1/score, a whole streamed generation and a plain one are
answered, equal to the Python API. Then the stalled connection is reset (SO_LINGER 0, a
dropped client) and the slot it held must come back: with --max-generations 2 and another
stalled stream holding the other slot, a new generation is 429 before the drop and accepted
after it (polled a bounded number of attempts, no durations asserted). Skipped without
FastAPI, uvicorn or httpx."""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time

import pytest

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

import serve_kit
from rnnkit.serve import Limits, create_app
from serve_kit import sse

ATTEMPTS = 400  # polls of the server's state, each after a short pause: a bound in attempts
LONG = {"seed": 1, "max_len": 1_000_000, "min_len": 1_000_000, "stream": True}  # never ends by itself


lm = serve_kit.lm  # the shared model fixture (tests/serve_kit.py)


@pytest.fixture
def server(lm):
    """(base url, app) of a uvicorn server in a thread; shut down after the test."""
    with serving(lm, Limits(max_generations=2, max_new_tokens=1_000_000)) as served:
        yield served


@contextlib.contextmanager
def serving(lm, limits: Limits):
    app = create_app({"word": lm}, limits)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)  # accepted sockets inherit it: a stalled
    # reader backs the server's writes up after some kilobytes instead of the megabytes of autotuning
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, log_level="critical", timeout_graceful_shutdown=5))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(ATTEMPTS):
        if srv.started or not thread.is_alive():
            break
        time.sleep(0.025)
    assert srv.started, "the server did not start"
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        srv.should_exit = True
        thread.join(30)
        sock.close()


def open_stream(base: str, body: dict) -> tuple[socket.socket, bytes]:
    """A raw connection with a small receive buffer posting a streamed generation; reads until
    the first token event has come and returns the socket (not read further) and what came."""
    host, port = base.removeprefix("http://").split(":")
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    s.settimeout(30)
    s.connect((host, int(port)))
    data = json.dumps(body).encode()
    s.sendall(b"POST /v1/generate HTTP/1.1\r\nHost: " + host.encode() + b"\r\nContent-Type: application/json\r\n"
              b"Content-Length: " + str(len(data)).encode() + b"\r\n\r\n" + data)
    got = b""
    while b"event: token" not in got:
        chunk = s.recv(1024)
        assert chunk, got
        got += chunk
    assert got.startswith(b"HTTP/1.1 200") and b"text/event-stream" in got
    return s, got


def drop(s: socket.socket) -> None:
    """Close with a reset (SO_LINGER on, 0 s): the connection dies, as when a client vanishes."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def answers_others(base: str, lm) -> None:
    """/health, /v1/score, a streamed and a plain generation answered, as the Python API."""
    sentences = ["the cat sat on the mat .", "a dog ran ."]
    with httpx.Client(base_url=base, timeout=30) as c:
        assert c.get("/health").json() == {"status": "ok", "models": 1}
        got = c.post("/v1/score", json={"sentences": sentences}).json()["sentences"]
        want = lm.score_sentences(sentences)
        assert [g["logprob"] for g in got] == pytest.approx([w.logprob for w in want], rel=1e-12)
        opts = {"prompt": "the", "seed": 7, "max_len": 12}
        with c.stream("POST", "/v1/generate", json={**opts, "stream": True}) as r:
            assert r.status_code == 200
            events = sse(r.read().decode())
        want_text = lm.generate("the", seed=7, max_len=12)
        assert events[-1] == ("done", {"text": want_text})
        assert "".join(d["text"] for e, d in events[:-1]) == want_text
        assert c.post("/v1/generate", json=opts).json()["text"] == want_text


def wait_slots(app, used: int) -> None:
    slots = app.state.slots
    for _ in range(ATTEMPTS):
        if slots.used == used:
            return
        time.sleep(0.025)
    assert slots.used == used, f"{slots.used} generation slots in use, expected {used}"


def test_slow_client_does_not_block_others(server, lm):
    base, app = server
    slow, _ = open_stream(base, LONG)
    try:
        wait_slots(app, 1)
        answers_others(base, lm)  # while the slow stream's writes are backed up
        answers_others(base, lm)
        assert app.state.slots.used == 1  # the slow stream still holds its slot, the others gave theirs back
    finally:
        drop(slow)
    wait_slots(app, 0)


def test_dropped_stream_releases_its_slot(server, lm):
    base, app = server
    a, _ = open_stream(base, LONG)
    b, _ = open_stream(base, {**LONG, "seed": 2})
    try:
        wait_slots(app, 2)
        with httpx.Client(base_url=base, timeout=30) as c:
            r = c.post("/v1/generate", json={"seed": 3, "max_len": 4})
            assert r.status_code == 429  # both slots held by the stalled streams
            assert c.get("/health").status_code == 200
            drop(a)  # in the middle of its stream
            wait_slots(app, 1)
            r = c.post("/v1/generate", json={"seed": 3, "max_len": 4})  # max_generations - 1 in use: accepted
            assert r.status_code == 200 and r.json()["text"] == lm.generate(seed=3, max_len=4)
        answers_others(base, lm)
    finally:
        drop(b)
    wait_slots(app, 0)


def test_a_client_that_stops_reading_loses_its_slot_at_the_time_limit(lm):
    """A stream whose client stops reading ends when --timeout passes (its connection dropped),
    so clients that stall cannot hold every generation slot: a new generation is then accepted."""
    with serving(lm, Limits(max_generations=2, max_new_tokens=1_000_000, timeout=3.0)) as (base, app):
        a, _ = open_stream(base, LONG)
        b, _ = open_stream(base, {**LONG, "seed": 2})
        try:
            for _ in range(ATTEMPTS * 8):  # the limit is 3 s (+ a grace; the writes back up well before): attempts, not a duration, bound the wait
                if app.state.slots.used == 0:
                    break
                time.sleep(0.025)
            assert app.state.slots.used == 0, "stalled streams still hold their slots after the time limit"
            with httpx.Client(base_url=base, timeout=30) as c:
                r = c.post("/v1/generate", json={"seed": 3, "max_len": 4})
                assert r.status_code == 200 and r.json()["text"] == lm.generate(seed=3, max_len=4)
        finally:
            drop(a)
            drop(b)
