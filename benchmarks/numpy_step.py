"""Training-step speed of the numpy engine vs the tutorial's naive unbatched loop.

Both train a vanilla tanh RNN language model, vocabulary 8000, hidden 100 (our engine with
embed_dim = hidden_dim = 100, the same size as the tutorial's U (H, K)), on sentences of 25
tokens, BPTT truncated at 4 steps, plain SGD, everything float32 (``--naive-dtype float64``
gives the tutorial's own default precision).

- naive: the tutorial's RNNNumpy, one sentence at a time: per-timestep Python loop,
  s_t = tanh(U[:, x_t] + W s_{t-1}), softmax over the vocabulary each step, the nested
  truncated-BPTT loop with np.outer, then U, V, W -= lr * grads.
- engine: rnnkit.numpy_engine.Trainer.step on a batch of B sentences (``--batch``, default 64),
  optimizer sgd, loss_reduction sentence, clip off, bptt_truncate 4.

Tokens per second = 25 * sentences / seconds. Each repetition times a fixed amount of work
for both, interleaved; the table reports medians and their ratio and the results go to
benchmarks/results/numpy_step.json.

    python benchmarks/numpy_step.py [--quick] [--batch 64] [--reps 5] [--threads 1]

``--threads`` (default 1) sets the BLAS thread count for both sides before numpy loads: one
thread is the like-for-like and reproducible setting on a shared machine (multi-threaded
OpenBLAS collapses when other processes hold the cores); ``--threads 0`` leaves BLAS alone.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from common import write_results


def _threads_from_argv(argv: list[str]) -> int:
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            return int(argv[i + 1])
        if a.startswith("--threads="):
            return int(a.split("=", 1)[1])
    return 1


THREADS = _threads_from_argv(sys.argv[1:])
if THREADS > 0:  # must happen before numpy is imported
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = str(THREADS)

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rnnkit.config import ModelConfig, TrainConfig
from rnnkit.numpy_engine import RNNLM, Trainer

K, H, T, TRUNC = 8000, 100, 25, 4


class TutorialRNN:
    """The tutorial's from-scratch RNN (no biases), written as it teaches it."""

    def __init__(self, word_dim, hidden_dim=100, bptt_truncate=4, dtype=np.float32, seed=0):
        rng = np.random.default_rng(seed)
        self.word_dim, self.hidden_dim, self.bptt_truncate = word_dim, hidden_dim, bptt_truncate
        self.U = rng.uniform(-np.sqrt(1.0 / word_dim), np.sqrt(1.0 / word_dim), (hidden_dim, word_dim)).astype(dtype)
        self.V = rng.uniform(-np.sqrt(1.0 / hidden_dim), np.sqrt(1.0 / hidden_dim), (word_dim, hidden_dim)).astype(dtype)
        self.W = rng.uniform(-np.sqrt(1.0 / hidden_dim), np.sqrt(1.0 / hidden_dim), (hidden_dim, hidden_dim)).astype(dtype)
        self.dtype = dtype

    @staticmethod
    def softmax(x):
        xt = np.exp(x - np.max(x))
        return xt / np.sum(xt)

    def forward_propagation(self, x):
        T = len(x)
        s = np.zeros((T + 1, self.hidden_dim), dtype=self.dtype)  # s[-1] is the initial state
        o = np.zeros((T, self.word_dim), dtype=self.dtype)
        for t in np.arange(T):
            s[t] = np.tanh(self.U[:, x[t]] + self.W.dot(s[t - 1]))
            o[t] = self.softmax(self.V.dot(s[t]))
        return o, s

    def bptt(self, x, y):
        T = len(y)
        o, s = self.forward_propagation(x)
        dLdU, dLdV, dLdW = np.zeros_like(self.U), np.zeros_like(self.V), np.zeros_like(self.W)
        delta_o = o
        delta_o[np.arange(len(y)), y] -= 1.0
        for t in np.arange(T)[::-1]:
            dLdV += np.outer(delta_o[t], s[t].T)
            delta_t = self.V.T.dot(delta_o[t]) * (1 - (s[t] ** 2))
            for bptt_step in np.arange(max(0, t - self.bptt_truncate), t + 1)[::-1]:
                dLdW += np.outer(delta_t, s[bptt_step - 1])
                dLdU[:, x[bptt_step]] += delta_t
                delta_t = self.W.T.dot(delta_t) * (1 - s[bptt_step - 1] ** 2)
        return dLdU, dLdV, dLdW

    def sgd_step(self, x, y, learning_rate):
        dLdU, dLdV, dLdW = self.bptt(x, y)
        self.U -= learning_rate * dLdU
        self.V -= learning_rate * dLdV
        self.W -= learning_rate * dLdW


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="short run (fewer sentences and repetitions)")
    ap.add_argument("--batch", type=int, default=64, help="sentences per engine step")
    ap.add_argument("--reps", type=int, default=0, help="repetitions (default 5, quick 3)")
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads for both sides (0 = BLAS default)")
    ap.add_argument("--naive-dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "numpy_step.json"))
    args = ap.parse_args(argv)
    reps = args.reps or (3 if args.quick else 5)
    naive_sentences = 8 if args.quick else 32  # per repetition
    engine_steps = 2 if args.quick else 6  # per repetition
    B = args.batch

    rng = np.random.default_rng(0)
    data = rng.integers(0, K, size=(T + 1, max(B, naive_sentences)))  # random ids, one column per sentence
    naive = TutorialRNN(K, H, TRUNC, dtype=np.dtype(args.naive_dtype).type)
    cfg = ModelConfig(vocab_size=K, cell="rnn", nonlinearity="tanh", embed_dim=H, hidden_dim=H, num_layers=1)
    model = RNNLM(cfg, dtype=np.float32, seed=0)
    trainer = Trainer(model, TrainConfig(optimizer="sgd", lr=0.005, clip=0.0, bptt_truncate=TRUNC,
                                         loss_reduction="sentence", batch_size=B, seq_len=T))
    x, y = data[:-1, :B], data[1:, :B]

    def run_naive():
        for i in range(naive_sentences):
            naive.sgd_step(data[:-1, i], data[1:, i], 0.005)

    def run_engine():
        for _ in range(engine_steps):
            trainer.step(x, y)

    run_naive(), run_engine()  # warm-up
    naive_tps, engine_tps = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        run_naive()
        naive_tps.append(naive_sentences * T / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        run_engine()
        engine_tps.append(engine_steps * B * T / (time.perf_counter() - t0))
    n_med, e_med = statistics.median(naive_tps), statistics.median(engine_tps)
    paired = statistics.median(e / n for e, n in zip(engine_tps, naive_tps))  # robust to load drift
    result = {
        "benchmark": "numpy_step", "vocab_size": K, "hidden_dim": H, "embed_dim": H, "seq_len": T,
        "bptt_truncate": TRUNC, "batch_size": B, "cell": "rnn tanh", "optimizer": "sgd",
        "engine_dtype": "float32", "naive_dtype": args.naive_dtype, "repetitions": reps, "quick": args.quick,
        "naive_tokens_per_s": naive_tps, "engine_tokens_per_s": engine_tps,
        "naive_median": n_med, "engine_median": e_med, "ratio": e_med / n_med,
        "paired_ratio_median": paired,
        "numpy": np.__version__, "python": platform.python_version(), "machine": platform.machine(),
        "cpu_count": os.cpu_count(), "blas_threads": args.threads or "default",
    }
    print(f"{'implementation':<34}{'tokens/s (median)':>20}{'min':>10}{'max':>10}")
    print(f"{'naive tutorial loop (1 sentence)':<34}{n_med:>20.0f}{min(naive_tps):>10.0f}{max(naive_tps):>10.0f}")
    print(f"{f'numpy engine (batch {B})':<34}{e_med:>20.0f}{min(engine_tps):>10.0f}{max(engine_tps):>10.0f}")
    print(f"ratio engine / naive: {e_med / n_med:.1f}x of medians, {paired:.1f}x median of paired repetitions")
    print(f"(K={K}, H={H}, T={T}, truncate={TRUNC}, "
          f"naive {args.naive_dtype}, engine float32, {reps} reps, BLAS threads {args.threads or 'default'})")
    write_results(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
