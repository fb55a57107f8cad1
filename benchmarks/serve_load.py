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

--compare-batching measures the micro-batching of /v1/score instead, side by side in one run:
one server per --batch-windows setting ("off": each request alone; a number: the window in
ms), score-1 and score-32 at each --clients count, the settings in turn per cell and then in
the reverse order (A B B A: drift in the machine's speed falls on all), --rounds times,
--requests per turn. Per cell and setting: requests/s, p50 / p95 / p99 over all its turns,
5xx and connection errors, and requests/s over the first setting's ("x base"). Results go to
benchmarks/results/serve_batching.json.

    python benchmarks/serve_load.py [--requests 200] [--concurrency 4] [--max-seconds 60] [--blas-threads N]
    python benchmarks/serve_load.py --compare-batching [--requests 200] [--clients 4,16] [--batch-windows off,0]
        [--rounds 1]
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


def start_server(model: Path, port: int, log, blas_threads: int | None, *extra: str) -> subprocess.Popen:
    env = {**os.environ, **(blas_env(blas_threads) if blas_threads else {})}
    proc = subprocess.Popen([sys.executable, "-m", "rnnkit", "serve", str(model), "--host", "127.0.0.1",
                             "--port", str(port), *extra], stdout=log, stderr=subprocess.STDOUT, env=env)
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


def timed(base: str, name: str, bodies: list[dict], concurrency: int, max_seconds: float
          ) -> tuple[list[float], dict[str, int], float]:
    """Send `bodies` from `concurrency` client threads: (latencies in s, status counts, wall s)."""
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
    return lat, codes, time.perf_counter() - t0


def summary(lat: list[float], codes: dict[str, int], wall: float) -> dict:
    q = np.percentile(lat, [50, 95, 99]) * 1e3
    return {"requests": len(lat), "seconds": wall, "requests_per_s": len(lat) / wall, "p50_ms": q[0], "p95_ms": q[1],
            "p99_ms": q[2], **codes}


def load(base: str, name: str, bodies: list[dict], concurrency: int, max_seconds: float) -> dict:
    return summary(*timed(base, name, bodies, concurrency, max_seconds))


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
    ap.add_argument("--requests", type=int, default=200, help="requests per scenario (default 200; "
                    "--compare-batching: per setting and turn)")
    ap.add_argument("--concurrency", type=int, default=4, help="client threads (default 4)")
    ap.add_argument("--max-seconds", type=float, default=60, help="stop a scenario's requests after this (default 60)")
    ap.add_argument("--blas-threads", type=int, default=None,
                    help="OPENBLAS/OMP/MKL_NUM_THREADS for the server and the direct calls (default: not set)")
    ap.add_argument("--compare-batching", action="store_true",
                    help="measure /v1/score micro-batching (settings side by side) instead (default: off)")
    ap.add_argument("--clients", default="4,16", help="--compare-batching: client counts (default 4,16)")
    ap.add_argument("--batch-windows", default="off,0",
                    help="--compare-batching: rnnkit serve --batch-window-ms settings, the first the baseline "
                         "(default off,0)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="--compare-batching: how many times the A B, B A turns are repeated (default 1)")
    args = ap.parse_args(argv)
    if args.blas_threads and os.environ.get("OPENBLAS_NUM_THREADS") != str(args.blas_threads):
        env = {**os.environ, **blas_env(args.blas_threads)}  # numpy is loaded: run again with them set
        os.execve(sys.executable, [sys.executable, __file__, *(sys.argv[1:] if argv is None else argv)], env)
    train, sentences, source = corpus()
    work = Path(tempfile.mkdtemp(prefix="serve_load_"))
    model = make_model(work / "ptb-1x64", train)
    results = {"machine": platform.processor() or platform.machine(), "python": platform.python_version(),
               "cpus": os.cpu_count(), "source": source, "model": "1x64 LSTM, random weights",
               "requests": args.requests, "max_seconds": args.max_seconds, "blas_threads": args.blas_threads}
    if args.compare_batching:
        return compare_batching(args, model, sentences, work, results)
    return overhead(args, model, sentences, work, results)


def through_server(args: argparse.Namespace, model: Path, sentences: list[str], work: Path, results: dict) -> dict:
    """Every scenario through a server started for them: {scenario: load's figures}."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with open(work / "server.log", "w") as log:
        proc = start_server(model, port, log, args.blas_threads)
        try:
            plans = scenarios(sentences, args.requests)
            with httpx.Client(base_url=base, timeout=60) as c:  # warm-up, not counted
                for name, bodies in plans.items():
                    for body in bodies[:3]:
                        one(c, name, body)
                results["vocab_size"] = c.get("/v1/models").json()["models"][0]["vocab_size"]
            return {name: load(base, name, bodies, args.concurrency, args.max_seconds) for name, bodies in plans.items()}
        finally:
            proc.terminate()
            proc.wait(30)


def overhead(args: argparse.Namespace, model: Path, sentences: list[str], work: Path, results: dict) -> int:
    """Every scenario through the server, then through the Python API directly."""
    source = results["source"]
    results.update(concurrency=args.concurrency, scenarios=[])
    served = through_server(args, model, sentences, work, results)
    vocab_size = results["vocab_size"]
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


def compare_batching(args: argparse.Namespace, model: Path, sentences: list[str], work: Path, results: dict) -> int:
    """score-1 and score-32 at each client count against one server per --batch-windows setting."""
    settings = [w.strip() for w in args.batch_windows.split(",")]
    clients = [int(n) for n in args.clients.split(",")]
    plans = {name: bodies for name, bodies in scenarios(sentences, args.requests).items() if name.startswith("score")}
    results.update(settings=settings, clients=clients, rounds=args.rounds, cells=[])
    servers: dict[str, tuple[subprocess.Popen, str]] = {}
    try:
        for setting in settings:
            port = free_port()
            with open(work / f"server-{setting}.log", "w") as log:
                servers[setting] = (start_server(model, port, log, args.blas_threads, "--batch-window-ms", setting),
                                    f"http://127.0.0.1:{port}")
            with httpx.Client(base_url=servers[setting][1], timeout=60) as c:  # warm-up, not counted
                for name, bodies in plans.items():
                    for body in bodies[:3]:
                        one(c, name, body)
        for name, bodies in plans.items():
            for n in clients:
                results["cells"] += cell({s: base for s, (_, base) in servers.items()}, name, bodies, n,
                                         args.max_seconds, args.rounds)
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(30)
    print_cells(args, results)
    write_results(ROOT / "benchmarks" / "results" / "serve_batching.json", results)
    return 0


def cell(bases: dict[str, str], name: str, bodies: list[dict], n: int, max_seconds: float, rounds: int
         ) -> list[dict]:
    """One scenario at n clients against each server, in turn and then in the reverse order,
    `rounds` times; each setting's latencies and times over all its turns together."""
    runs: dict[str, tuple[list[float], dict[str, int], float]] = {s: ([], {}, 0.0) for s in bases}
    for order in [list(bases), list(bases)[::-1]] * rounds:
        for setting in order:
            lat, codes, wall = timed(bases[setting], name, bodies, n, max_seconds)
            old_lat, old_codes, old_wall = runs[setting]
            runs[setting] = (old_lat + lat, {k: old_codes.get(k, 0) + v for k, v in codes.items()}, old_wall + wall)
    rows = [{"scenario": name, "clients": n, "batch_window_ms": s, **summary(*runs[s])} for s in bases]
    for row in rows:
        row["throughput_over_baseline"] = row["requests_per_s"] / rows[0]["requests_per_s"]
    return rows


def print_cells(args: argparse.Namespace, results: dict) -> None:
    print(f"/v1/score micro-batching: {args.requests} requests per setting and turn, {2 * args.rounds} turns "
          f"(A B, B A, ...); "
          f"1x64 LSTM, {results['source']}; BLAS threads {args.blas_threads or 'not set'}; "
          f"x base = req/s over --batch-window-ms {results['settings'][0]}'s")
    print(f"{'scenario':<10}{'clients':>8}{'window':>8}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
          f"{'5xx':>5}{'conn':>5}{'x base':>8}")
    for r in results["cells"]:
        print(f"{r['scenario']:<10}{r['clients']:>8}{r['batch_window_ms']:>8}{r['requests_per_s']:>9.1f}"
              f"{r['p50_ms']:>9.2f}{r['p95_ms']:>9.2f}{r['p99_ms']:>9.2f}{r.get('5xx', 0):>5}"
              f"{r.get('conn_errors', 0):>5}{r['throughput_over_baseline']:>8.2f}")
    results["total_5xx"] = sum(r.get("5xx", 0) for r in results["cells"])
    print(f"5xx over all cells: {results['total_5xx']}")


if __name__ == "__main__":
    sys.exit(main())
