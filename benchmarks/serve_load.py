"""A bounded load test of `rnnkit serve` on this machine (loopback only).

Starts `python -m rnnkit serve` in a subprocess on 127.0.0.1 and a free port with a 1x64 LSTM
over PTB's vocabulary (random weights, seeded: speed does not depend on them), waits for
/health, then for each scenario sends a fixed number of requests (--requests) from
--concurrency client threads (one httpx connection each), stopping early past --max-seconds:

  score-1    POST /v1/score, 1 PTB valid sentence per request
  score-32   POST /v1/score, 32 sentences per request
  generate   POST /v1/generate, 20 new tokens (min_len = max_len = 20), a seed per request
  stream     the same with "stream": true, read to the `done` event

Per scenario: requests/s, p50 / p95 / p99 latency, 2xx / 4xx / 5xx / connection errors. Then
the same requests through the Python API in this process, one after another (the server runs
one request at a time per model, so that is the work it can do), for the overhead: direct
requests/s over server requests/s ("thru x"; the JSON also has server p50 over direct p50,
which with more than one client includes the wait for the model). --blas-threads N sets
OPENBLAS/OMP/MKL_NUM_THREADS for both (the script runs itself again with them set). Results go to
benchmarks/results/serve_load.json.

    python benchmarks/serve_load.py [--requests 200] [--concurrency 4] [--max-seconds 60] [--blas-threads N]
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from common import write_results

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import rnnkit
from rnnkit import checkpoint
from rnnkit.config import ModelConfig, TokenizerConfig
from rnnkit.data import read_sentences
from rnnkit.errors import RnnkitError
from rnnkit.params import init_params
from rnnkit.text import Vocab, WordTokenizer

GEN_TOKENS = 20


def corpus() -> tuple[list[str], list[str], str]:
    """(training sentences for the vocabulary, sentences to score, source)."""
    try:
        return read_sentences("ptb", level="word"), read_sentences("ptb:valid", level="word"), "PTB valid"
    except RnnkitError as e:
        print(f"(PTB not found: {e}; using synthetic sentences)")
        rng = np.random.default_rng(0)
        words = [f"w{i}" for i in range(9997)]
        train = [" ".join(rng.choice(words, 20)) for _ in range(2000)]
        return train, [" ".join(rng.choice(words, int(rng.integers(1, 40)))) for _ in range(3370)], "synthetic"


def make_model(path: Path, train: list[str]) -> Path:
    tok = WordTokenizer(split="whitespace")
    vocab = Vocab.build([tok.tokenize(s) for s in train], max_size=10003)
    cfg = ModelConfig(vocab_size=len(vocab), cell="lstm", embed_dim=64, hidden_dim=64, num_layers=1)
    return checkpoint.save(path, cfg, TokenizerConfig(level="word", word_split="whitespace"), vocab,
                           init_params(cfg, seed=0))


def blas_env(n: int) -> dict[str, str]:
    return {k: str(n) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: Path, port: int, log, blas_threads: int | None) -> subprocess.Popen:
    env = {**os.environ, **(blas_env(blas_threads) if blas_threads else {})}
    proc = subprocess.Popen([sys.executable, "-m", "rnnkit", "serve", str(model), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env)
    for _ in range(600):  # up to ~60 s
        if proc.poll() is not None:
            raise SystemExit(f"the server exited ({proc.returncode}); see {log.name}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not answer /health")


def scenarios(sentences: list[str], n: int) -> dict[str, list[dict]]:
    """Each scenario's request bodies, the same for the server and the direct calls."""
    return {
        "score-1": [{"sentences": [sentences[i % len(sentences)]]} for i in range(n)],
        "score-32": [{"sentences": [sentences[(32 * i + j) % len(sentences)] for j in range(32)]} for i in range(n)],
        "generate": [{"seed": i, "max_len": GEN_TOKENS, "min_len": GEN_TOKENS} for i in range(n)],
        "stream": [{"seed": i, "max_len": GEN_TOKENS, "min_len": GEN_TOKENS, "stream": True} for i in range(n)],
    }


def one(c: httpx.Client, name: str, body: dict) -> int:
    """Send one request; its status (a stream that ends without `done` counts as 599)."""
    path = "/v1/score" if name.startswith("score") else "/v1/generate"
    if not body.get("stream"):
        return c.post(path, json=body).status_code
    with c.stream("POST", path, json=body) as r:
        text = r.read().decode()
    return r.status_code if r.status_code != 200 or "event: done" in text else 599


def load(base: str, name: str, bodies: list[dict], concurrency: int, max_seconds: float) -> dict:
    lat: list[float] = []
    codes: dict[str, int] = {"2xx": 0, "4xx": 0, "5xx": 0, "conn_errors": 0}
    lock, nxt = threading.Lock(), iter(range(len(bodies)))
    stop_at = time.perf_counter() + max_seconds

    def worker() -> None:
        with httpx.Client(base_url=base, timeout=60) as c:
            while time.perf_counter() < stop_at:
                with lock:
                    i = next(nxt, None)
                if i is None:
                    return
                t = time.perf_counter()
                try:
                    status = one(c, name, bodies[i])
                except httpx.HTTPError:
                    status = 0
                dt = time.perf_counter() - t
                key = "conn_errors" if status == 0 else f"{status // 100}xx"
                with lock:
                    lat.append(dt)
                    codes[key] = codes.get(key, 0) + 1

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    q = np.percentile(lat, [50, 95, 99]) * 1e3
    return {"requests": len(lat), "seconds": wall, "requests_per_s": len(lat) / wall, "p50_ms": q[0], "p95_ms": q[1],
            "p99_ms": q[2], **codes}


def direct(lm, name: str, bodies: list[dict], max_seconds: float) -> dict:
    lat: list[float] = []
    stop_at = time.perf_counter() + max_seconds
    t0 = time.perf_counter()
    for body in bodies:
        if time.perf_counter() >= stop_at:
            break
        t = time.perf_counter()
        if name.startswith("score"):
            lm.score_sentences(body["sentences"])
        else:
            lm.generate("", **{k: v for k, v in body.items() if k != "stream"})
        lat.append(time.perf_counter() - t)
    wall = time.perf_counter() - t0
    return {"requests": len(lat), "requests_per_s": len(lat) / wall, "p50_ms": statistics.median(lat) * 1e3}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=200, help="requests per scenario (default 200)")
    ap.add_argument("--concurrency", type=int, default=4, help="client threads (default 4)")
    ap.add_argument("--max-seconds", type=float, default=60, help="stop a scenario's requests after this (default 60)")
    ap.add_argument("--blas-threads", type=int, default=None,
                    help="OPENBLAS/OMP/MKL_NUM_THREADS for the server and the direct calls (default: not set)")
    args = ap.parse_args(argv)
    if args.blas_threads and os.environ.get("OPENBLAS_NUM_THREADS") != str(args.blas_threads):
        env = {**os.environ, **blas_env(args.blas_threads)}  # numpy is loaded: run again with them set
        os.execve(sys.executable, [sys.executable, __file__, *(sys.argv[1:] if argv is None else argv)], env)
    train, sentences, source = corpus()
    work = Path(tempfile.mkdtemp(prefix="serve_load_"))
    model = make_model(work / "ptb-1x64", train)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    results = {"machine": platform.processor() or platform.machine(), "python": platform.python_version(),
               "source": source, "model": "1x64 LSTM, random weights", "requests": args.requests,
               "concurrency": args.concurrency, "max_seconds": args.max_seconds,
               "blas_threads": args.blas_threads, "scenarios": []}
    with open(work / "server.log", "w") as log:
        proc = start_server(model, port, log, args.blas_threads)
        try:
            plans = scenarios(sentences, args.requests)
            with httpx.Client(base_url=base, timeout=60) as c:  # warm-up, not counted
                for name, bodies in plans.items():
                    for body in bodies[:3]:
                        one(c, name, body)
                vocab_size = c.get("/v1/models").json()["models"][0]["vocab_size"]
            results["vocab_size"] = vocab_size
            served = {name: load(base, name, bodies, args.concurrency, args.max_seconds)
                      for name, bodies in plans.items()}
        finally:
            proc.terminate()
            proc.wait(30)
    lm = rnnkit.load(model)
    plans = scenarios(sentences, args.requests)
    for name, bodies in plans.items():
        for body in bodies[:3]:
            direct(lm, name, [body], args.max_seconds)  # warm-up
    print(f"{args.requests} requests per scenario, {args.concurrency} clients, 1x64 LSTM (vocab {vocab_size:,}), "
          f"{source}; BLAS threads {args.blas_threads or 'not set'}; direct = the Python API in this "
          f"process, one call after another; thru x = direct req/s over server req/s")
    head = (f"{'scenario':<10}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'2xx':>6}{'4xx':>5}{'5xx':>5}"
            f"{'conn':>5}{'direct req/s':>14}{'direct p50':>12}{'thru x':>8}")
    print(head)
    for name, bodies in plans.items():
        s = served[name]
        d = direct(lm, name, bodies[: s["requests"]], args.max_seconds)
        row = {"scenario": name, **s, "direct_requests_per_s": d["requests_per_s"], "direct_p50_ms": d["p50_ms"],
               "p50_over_direct": s["p50_ms"] / d["p50_ms"],
               "direct_over_server_throughput": d["requests_per_s"] / s["requests_per_s"]}
        results["scenarios"].append(row)
        print(f"{name:<10}{s['requests_per_s']:>8.1f}{s['p50_ms']:>9.2f}{s['p95_ms']:>9.2f}{s['p99_ms']:>9.2f}"
              f"{s['2xx']:>6}{s['4xx']:>5}{s['5xx']:>5}{s['conn_errors']:>5}{d['requests_per_s']:>14.1f}"
              f"{d['p50_ms']:>12.2f}{row['direct_over_server_throughput']:>8.1f}")
    results["total_5xx"] = sum(r["5xx"] for r in results["scenarios"])
    print(f"5xx over all scenarios: {results['total_5xx']}")
    write_results(ROOT / "benchmarks" / "results" / "serve_load.json", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
