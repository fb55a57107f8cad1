"""Cost per step of the step API for decoders (`Stepper.advance`, inference/state.py).

Seconds per `advance()` call (one token for each of B states: stack the hidden states, one
recurrent step and the full softmax, split back into states) at batch 1 and 64, on a 2x200
LSTM over a PTB-size vocabulary (10,003 with the specials), random weights (speed does not
depend on them), for the numpy engine, the torch engine on CPU, and CUDA when present. Beside
it, the bare engine call `model.step_logprobs` on the same batch: the API's own overhead is the
difference. Engine by engine (the thread pool one engine leaves spinning slows the
other), each repetition times `--steps` calls of every (batch, call) in turn (interleaved, in an
order that rotates each repetition), and the median over `--reps` repetitions is reported; results go to
benchmarks/results/step_api.json.

    python benchmarks/step_api.py [--reps 7] [--steps 20]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from common import write_results

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from rnnkit.config import ModelConfig
from rnnkit.engines import build_model
from rnnkit.inference.state import Stepper
from rnnkit.params import init_params
from rnnkit.text import Vocab

BATCHES = (1, 64)


def engines() -> list[tuple[str, str]]:
    out = [("numpy", "cpu")]
    try:
        import torch

        out.append(("torch", "cpu"))
        if torch.cuda.is_available():
            out.append(("torch", "cuda"))
    except ImportError:
        pass
    return out


def setups(vocab: Vocab) -> dict:
    """(engine, batch) -> (stepper, states with different 5-token histories, next tokens)."""
    cfg = ModelConfig(vocab_size=len(vocab), cell="lstm", embed_dim=200, hidden_dim=200, num_layers=2)
    params = init_params(cfg, seed=0)
    rng = np.random.default_rng(0)
    out = {}
    for engine, device in engines():
        st = Stepper(build_model(engine, cfg, params, device=device), vocab)
        for B in BATCHES:
            states = [st.begin()] * B
            for _ in range(5):
                states, _ = st.advance(states, rng.integers(3, len(vocab), B).tolist())
            out[f"{engine}-{device}", B] = (st, states, rng.integers(3, len(vocab), B).tolist())
    return out


def timed(fn, steps: int) -> float:
    """Seconds per call of fn, over `steps` calls after one untimed call."""
    fn()
    t = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - t) / steps


def calls(st: Stepper, states: list, tokens: list) -> dict:
    """The two calls compared: the API's advance and the bare engine step on the same batch."""
    hidden = st._to_hidden(np.stack([s.hidden for s in states]))  # engine-shaped, made once
    ids = np.asarray(tokens, dtype=np.int64)
    return {"advance": lambda: st.advance(states, tokens),
            "step_logprobs": lambda: st.model.step_logprobs(ids, hidden)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=7, help="repetitions (median; this machine is noisy)")
    ap.add_argument("--steps", type=int, default=20, help="calls timed per repetition")
    args = ap.parse_args(argv)
    vocab = Vocab.from_list(["<unk>", "<s>", "</s>"] + [f"w{i}" for i in range(10000)])
    runs = {key: calls(*s) for key, s in setups(vocab).items()}
    for fns in runs.values():  # warm-up
        for fn in fns.values():
            fn()
    times = {(key, name): [] for key, fns in runs.items() for name in fns}
    for engine in dict.fromkeys(key[0] for key in runs):  # one engine at a time: another's
        order = [k for k in times if k[0][0] == engine]     # spinning thread pool slows this one
        for r in range(args.reps):  # a rotating order: no measurement always follows the same one
            for key, name in order[r % len(order):] + order[:r % len(order)]:
                times[key, name].append(timed(runs[key][name], args.steps))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"2x200 LSTM, vocab {len(vocab):,}: ms per call, median of {args.reps} x {args.steps} calls")
    print(f"{'engine':<12}{'B':>4}{'advance':>10}{'step_logprobs':>15}{'overhead':>10}{'ms/state':>10}")
    rows = []
    for (name, B) in runs:
        a, s = med[(name, B), "advance"], med[(name, B), "step_logprobs"]
        print(f"{name:<12}{B:>4}{a * 1e3:>10.3f}{s * 1e3:>15.3f}{(a - s) * 1e3:>10.3f}{a * 1e3 / B:>10.4f}")
        rows.append({"engine": name, "batch": B, "advance_s": a, "step_logprobs_s": s,
                     "advance_s_per_state": a / B})
    write_results(ROOT / "benchmarks" / "results" / "step_api.json",
                  {"machine": platform.processor() or platform.machine(), "python": platform.python_version(),
                   "model": "lstm 2x200", "vocab": len(vocab), "reps": args.reps, "steps": args.steps,
                   "results": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
