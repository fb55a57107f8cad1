"""Training-step time of the adaptive softmax against the full softmax, at 10k to 267k words.

    PYTHONPATH=src python benchmarks/softmax_speed.py [--quick] [--reps N] [--vocabs 10000,50000,267000]
                                                      [--engines torch,numpy] [--optimizers adam,sgd] [--threads N]

One training step (Trainer.step: forward, BPTT, clip, update) of a 1-layer LSTM, embedding
and hidden 200, batch 20 x 35, for each vocabulary size K, engine and optimizer, with

  full      the full softmax (decoder.weight (K, 200), decoder.bias)
  adaptive  the adaptive softmax, cut-offs [20000, 60000] at K = 267,000 and the same fractions
            of K (7.5%, 22.5%) at smaller K, div_value 4 (tail projections 50 and 12 units)

Token ids are drawn from a Zipf distribution over the ranks (p(k) ~ 1 / (k + 1), ids ordered by
frequency as rnnkit's vocabularies are), so the targets fall into the head and the clusters as
words of running text do (at K = 267,000: 80% head, 9% first cluster, 11% second); a uniform
draw would send almost every target to the largest cluster. SGD (no weight decay) takes the
sparse step (only the embedding rows of the batch); Adam is dense in both.

The full and the adaptive model of one (K, engine, optimizer) take turns step by step (in a
rotating order, so load from other processes on a shared machine hits both alike) after a
warm-up step each; the table gives the median seconds per step of each and the speed-up
full / adaptive. `--threads N` sets torch's intra-op threads (numpy's BLAS threads follow
OPENBLAS_NUM_THREADS); the machine's load average before and after is recorded, since other
processes on a shared machine slow both sides (the ratio less than the absolute times).
Results go to benchmarks/results/softmax_speed.json. Never part of the test run.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from common import write_results

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rnnkit import engines
from rnnkit.config import ModelConfig, TrainConfig

H, B, T = 200, 20, 35
CUTOFF_FRACTIONS = (20_000 / 267_000, 60_000 / 267_000)  # [20000, 60000] at 267k, scaled below
LR = {"adam": 0.001, "sgd": 1.0}


def cutoffs_for(K: int) -> list[int]:
    return [round(K * f) for f in CUTOFF_FRACTIONS]


def config(K: int, softmax: str) -> ModelConfig:
    extra = {"softmax": "adaptive", "cutoffs": cutoffs_for(K), "div_value": 4.0} if softmax == "adaptive" else {}
    return ModelConfig(vocab_size=K, cell="lstm", embed_dim=H, hidden_dim=H, num_layers=1, **extra)


def zipf_windows(K: int, n: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """n (x, y) windows (T, B) of a stream of ids with p(k) ~ 1 / (k + 1)."""
    p = 1.0 / np.arange(1, K + 1)
    ids = np.random.default_rng(seed).choice(K, size=n * T * B + B, p=p / p.sum())
    cols = ids.reshape(B, -1).T  # (L, B)
    return [(np.ascontiguousarray(cols[i * T:(i + 1) * T]), np.ascontiguousarray(cols[i * T + 1:(i + 1) * T + 1]))
            for i in range(n)]


def stepper(engine: str, K: int, softmax: str, optimizer: str):
    """One training step of a fresh model, the hidden state carried between calls."""
    eng = engines.get_engine(engine)
    model = engines.build_model(engine, config(K, softmax), seed=0, device="cpu")
    trainer = eng.Trainer(model, TrainConfig(engine=engine, optimizer=optimizer, lr=LR[optimizer], clip=5.0))
    state = {"hidden": None}

    def step(x, y):
        _, _, state["hidden"] = trainer.step(x, y, None, state["hidden"])
    return step


def time_pair(engine: str, K: int, optimizer: str, reps: int) -> dict[str, list[float]]:
    """Seconds per step of full and adaptive, `reps` each, interleaved in a rotating order."""
    steps = {s: stepper(engine, K, s, optimizer) for s in ("full", "adaptive")}
    wins = zipf_windows(K, reps + 1, seed=K)
    for step in steps.values():
        step(*wins[0])  # warm-up: allocations, caches
    times: dict[str, list[float]] = {s: [] for s in steps}
    order = list(steps)
    for rep in range(reps):
        for name in order[rep % 2:] + order[:rep % 2]:
            t0 = time.perf_counter()
            steps[name](*wins[rep + 1])
            times[name].append(time.perf_counter() - t0)
    return times


def head_share(K: int) -> list[float]:
    """Fraction of Zipf targets in the head and in each cluster."""
    p = 1.0 / np.arange(1, K + 1)
    p /= p.sum()
    edges = [0, *cutoffs_for(K), K]
    return [float(p[a:b].sum()) for a, b in itertools.pairwise(edges)]


def table(rows: list[dict]) -> str:
    head = f"{'K':>8s} {'engine':>6s} {'optim':>5s} {'full s/step':>12s} {'adaptive s/step':>16s} {'speed-up':>9s}"
    lines = [head + "   (median seconds per training step, B x T = 20 x 35, 1x200 LSTM)", "-" * len(head)]
    for r in rows:
        lines.append(f"{r['vocab']:8,d} {r['engine']:>6s} {r['optimizer']:>5s} {r['full_s']:12.3f} "
                     f"{r['adaptive_s']:16.3f} {r['speedup']:8.1f}x")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 repetitions, the torch engine and 267k only")
    ap.add_argument("--reps", type=int, default=0, help="timed steps of each model (default 7, --quick 3)")
    ap.add_argument("--vocabs", default="", help="comma-separated vocabulary sizes (default 10000,50000,267000)")
    ap.add_argument("--engines", default="", help="comma-separated engines (default torch,numpy)")
    ap.add_argument("--optimizers", default="adam,sgd", help="comma-separated optimizers")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (default: torch's choice)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "softmax_speed.json"))
    args = ap.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    reps = args.reps or (3 if args.quick else 7)
    vocabs = [int(v) for v in (args.vocabs or ("267000" if args.quick else "10000,50000,267000")).split(",")]
    names = (args.engines or ("torch" if args.quick else "torch,numpy")).split(",")
    rows = []
    for K in vocabs:
        for engine in names:
            for optimizer in args.optimizers.split(","):
                times = time_pair(engine, K, optimizer, reps)
                full, adaptive = statistics.median(times["full"]), statistics.median(times["adaptive"])
                rows.append({"vocab": K, "engine": engine, "optimizer": optimizer, "cutoffs": cutoffs_for(K),
                             "full_s": full, "adaptive_s": adaptive, "ratio_adaptive_full": adaptive / full,
                             "speedup": full / adaptive, "times": times, "target_shares": head_share(K)})
                print(f"done K={K} {engine} {optimizer}: {full:.3f} s vs {adaptive:.3f} s", file=sys.stderr)
    print(table(rows))
    write_results(args.out, {
        "command": " ".join(["python", "benchmarks/softmax_speed.py"] + sys.argv[1:]),
        "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version(),
        "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "reps": reps,
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "model": {"cell": "lstm", "embed_dim": H, "hidden_dim": H, "num_layers": 1, "batch": B, "seq": T,
                  "div_value": 4.0, "clip": 5.0, "lr": LR}, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
