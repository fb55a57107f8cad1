"""Training speed of the two engines against a plain hand-written PyTorch loop.

    PYTHONPATH=src python benchmarks/engines.py [--quick] [--device cpu|cuda|auto] [--reps N]

For each model, on the same random token stream and the same batch, it times one training
step (forward, BPTT, clip, update) of

  numpy   rnnkit.numpy_engine Trainer.step (CPU)
  torch   rnnkit.torch_engine Trainer.step (CPU, and CUDA when available)
  plain   nn.Embedding + nn.RNN/LSTM + nn.Linear, CrossEntropyLoss, the same optimizer,
          clip_grad_norm_, hidden state detached between windows: the yardstick

and reports training tokens/s (median over repetitions, after warm-up), the ratios
torch/plain and numpy/torch(CPU), and achieved TFLOP/s counting matmul FLOPs only:
per token 2*G*H*(D_in + H) per layer plus 2*H*K for the decoder, x3 for forward + backward.

On CUDA it also compares PTB-medium (2x650 LSTM) as PyTorch's word_language_model example
runs it (batch 20, seq 35, fp32, SGD) with the torch engine at a larger batch and bf16.
Results go to benchmarks/results/engines.json. Never part of the test run.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from common import write_results
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rnnkit import numpy_engine, torch_engine
from rnnkit.config import ModelConfig, TrainConfig

# name, model config kwargs, batch, seq, optimizer, lr
MODELS = [
    ("tutorial-rnn", {"vocab_size": 8000, "cell": "rnn", "embed_dim": 100, "hidden_dim": 100,
                          "num_layers": 1}, 32, 35, "sgd", 0.05),
    ("ptb-small-lstm", {"vocab_size": 10000, "cell": "lstm", "embed_dim": 200, "hidden_dim": 200,
                            "num_layers": 2}, 20, 35, "adam", 0.002),
    ("ptb-medium-lstm", {"vocab_size": 10000, "cell": "lstm", "embed_dim": 650, "hidden_dim": 650,
                             "num_layers": 2}, 20, 35, "adam", 0.002),
]


def flops_per_token(c: ModelConfig) -> float:
    G, H, D, K = c.gates, c.hidden_dim, c.embed_dim, c.vocab_size
    per = sum(2 * G * H * ((D if n == 0 else H) + H) for n in range(c.num_layers))
    return 3.0 * (per + 2 * H * K)


def windows(K: int, B: int, T: int, n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, K, (n * T + 1) * B)
    cols = ids.reshape(B, -1).T  # (L, B)
    return [(np.ascontiguousarray(cols[i * T:(i + 1) * T]),
             np.ascontiguousarray(cols[i * T + 1:(i + 1) * T + 1])) for i in range(n)]


class PlainLM(nn.Module):
    def __init__(self, c: ModelConfig):
        super().__init__()
        self.embedding = nn.Embedding(c.vocab_size, c.embed_dim)
        rnn = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[c.cell]
        self.rnn = rnn(c.embed_dim, c.hidden_dim, c.num_layers)
        self.decoder = nn.Linear(c.hidden_dim, c.vocab_size)

    def forward(self, x, h):
        out, h = self.rnn(self.embedding(x), h)
        return self.decoder(out), h


def detach(h):
    return tuple(t.detach() for t in h) if isinstance(h, tuple) else h.detach()


def plain_stepper(c: ModelConfig, opt: str, lr: float, device: str, B: int, sgd_manual=False):
    model = PlainLM(c).to(device)
    params = list(model.parameters())
    optim = None if sgd_manual else (torch.optim.SGD(params, lr=lr) if opt == "sgd"
                                     else torch.optim.Adam(params, lr=lr))
    crit = nn.CrossEntropyLoss()
    state = {"h": None}

    def step(x, y):
        xt = torch.as_tensor(x, device=device)
        yt = torch.as_tensor(y, device=device)
        model.zero_grad(set_to_none=True)
        logits, h = model(xt, state["h"])
        loss = crit(logits.view(-1, c.vocab_size), yt.view(-1))
        loss.backward()
        nn.utils.clip_grad_norm_(params, 0.25 if sgd_manual else 5.0)
        if sgd_manual:  # word_language_model's update
            for p in params:
                p.data.add_(p.grad, alpha=-lr)
        else:
            optim.step()
        state["h"] = detach(h)
        return loss.item()
    return step


def engine_stepper(engine: str, c: ModelConfig, opt: str, lr: float, device: str = "cpu",
                   amp: str = "off"):
    tc = TrainConfig(optimizer=opt, lr=lr, clip=5.0, amp=amp, device=device)
    if engine == "numpy":
        tr = numpy_engine.Trainer(numpy_engine.RNNLM(c, seed=0), tc)
    else:
        tr = torch_engine.Trainer(torch_engine.RNNLM(c, seed=0, device=device), tc)
    state = {"s": None}

    def step(x, y):
        loss, _, state["s"] = tr.step(x, y, None, state["s"])
        return loss
    return step


def time_many(steppers: dict, wins, reps: int, warmup: int, device: str) -> dict[str, float]:
    """Median training tokens/s of each stepper over `reps` passes of the windows. The
    steppers take turns within each repetition, in a rotating order, so load from other
    processes on a shared machine and after-effects of the previous stepper (freed memory,
    caches) hit them alike; each first runs `warmup` steps (allocator, caches)."""
    T, B = wins[0][0].shape
    for step in steppers.values():
        for x, y in wins[:warmup]:
            step(x, y)
    rates: dict[str, list[float]] = {k: [] for k in steppers}
    names = list(steppers)
    for rep in range(reps):
        for name in names[rep % len(names):] + names[:rep % len(names)]:  # rotate the order
            step = steppers[name]
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for x, y in wins:
                step(x, y)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            rates[name].append(len(wins) * T * B / (time.perf_counter() - t0))
    return {k: statistics.median(v) for k, v in rates.items()}


def run_model(name, kw, B, T, opt, lr, args, devices):
    c = ModelConfig(**kw)
    fpt = flops_per_token(c)
    row = {"model": name, "config": kw, "batch": B, "seq": T, "optimizer": opt,
           "flops_per_token": fpt, "tokens_per_s": {}, "notes": []}
    nsteps = 3 if args.quick else 6
    wins = windows(c.vocab_size, B, T, nsteps)
    skip_numpy = args.quick and c.hidden_dim >= 650
    for dev in devices:
        steppers = {}
        if dev == "cpu" and not skip_numpy:
            steppers["numpy"] = engine_stepper("numpy", c, opt, lr)
        steppers[f"torch-{dev}"] = engine_stepper("torch", c, opt, lr, dev)
        steppers[f"plain-{dev}"] = plain_stepper(c, opt, lr, dev, B)
        n = wins if dev == "cpu" else windows(c.vocab_size, B, T, 30)
        row["tokens_per_s"].update(time_many(steppers, n, args.reps, 3, dev))
    if skip_numpy:
        row["notes"].append("numpy skipped for 2x650 with --quick (too slow on this CPU)")
    r = row["tokens_per_s"]
    row["ratios"] = {f"torch/plain-{d}": r[f"torch-{d}"] / r[f"plain-{d}"] for d in devices}
    if "numpy" in r and "torch-cpu" in r:
        row["ratios"]["numpy/torch-cpu"] = r["numpy"] / r["torch-cpu"]
    row["tflops"] = {k: v * fpt / 1e12 for k, v in r.items()}
    return row


def gpu_compare(args):
    """PTB-medium: word_language_model defaults (batch 20, seq 35, fp32, SGD) vs ours."""
    kw = {"vocab_size": 10000, "cell": "lstm", "embed_dim": 650, "hidden_dim": 650, "num_layers": 2}
    c = ModelConfig(**kw)
    base = time_many({"x": plain_stepper(c, "sgd", 20.0, "cuda", 20, sgd_manual=True)},
                     windows(c.vocab_size, 20, 35, 40), args.reps, 3, "cuda")["x"]
    B = args.gpu_batch
    ours = time_many({"x": engine_stepper("torch", c, "sgd", 1.0, "cuda", amp="bf16")},
                     windows(c.vocab_size, B, 35, 20), args.reps, 3, "cuda")["x"]
    return {"model": "ptb-medium-lstm", "example_batch": 20, "ours_batch": B, "ours_amp": "bf16",
            "example_tokens_per_s": base, "ours_tokens_per_s": ours, "speedup": ours / base,
            "target": 5.0, "tflops_ours": ours * flops_per_token(c) / 1e12}


def table(rows, devices) -> str:
    cols = ["numpy"] + [f"{e}-{d}" for d in devices for e in ("torch", "plain")]
    head = f"{'model':16s} {'B x T':>8s} " + " ".join(f"{c:>12s}" for c in cols)
    head += "".join(f" {'t/p ' + d:>9s}" for d in devices) + f" {'numpy/torch':>11s}"
    lines = [head + "   (training tokens/s, median; t/p = torch engine / plain loop)",
             "-" * len(head)]
    for r in rows:
        t = r["tokens_per_s"]
        cells = " ".join(f"{t[c]:12,.0f}" if c in t else f"{'skipped':>12s}" for c in cols)
        ratios = "".join(f" {r['ratios'][f'torch/plain-{d}']:9.2f}" for d in devices)
        nt = r["ratios"].get("numpy/torch-cpu")
        lines.append(f"{r['model']:16s} {r['batch']:>3d} x {r['seq']:<3d} {cells}{ratios} "
                     + (f"{nt:11.2f}" if nt is not None else f"{'-':>11s}"))
        if "torch-cuda" in t:
            lines.append(f"{'':16s} TFLOP/s torch-cuda {r['tflops']['torch-cuda']:.2f}, "
                         f"plain-cuda {r['tflops']['plain-cuda']:.2f}")
        lines += [f"{'':16s} note: {n}" for n in r["notes"]]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps and reps; numpy skips 650")
    ap.add_argument("--device", default="auto", choices=["cpu", "cuda", "auto"])
    ap.add_argument("--reps", type=int, default=0, help="repetitions (default 6, --quick 3)")
    ap.add_argument("--models", default="", help="comma-separated subset of model names")
    ap.add_argument("--gpu-batch", type=int, default=256, help="our batch in the GPU comparison")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "engines.json"))
    args = ap.parse_args(argv)
    args.reps = args.reps or (3 if args.quick else 6)
    cuda = torch.cuda.is_available() and args.device in ("cuda", "auto")
    devices = (["cpu"] if args.device != "cuda" else []) + (["cuda"] if cuda else [])
    if args.device == "cuda" and not cuda:
        print("engines.py: error: --device cuda but CUDA is not available", file=sys.stderr)
        return 1
    torch.manual_seed(0)
    rows = []
    for name, kw, B, T, opt, lr in MODELS:
        if args.models and name not in args.models.split(","):
            continue
        rows.append(run_model(name, kw, B, T, opt, lr, args, devices))
        print(f"done {name}", file=sys.stderr)
    print(table(rows, devices))
    result = {"command": " ".join(["python", "benchmarks/engines.py"] + sys.argv[1:]),
              "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version(),
              "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
              "gpu": torch.cuda.get_device_name() if cuda else None, "quick": args.quick,
              "reps": args.reps, "rows": rows}
    if cuda:
        cmp = gpu_compare(args)
        result["gpu_compare"] = cmp
        print(f"\nGPU PTB-medium: word_language_model defaults (B=20, fp32) "
              f"{cmp['example_tokens_per_s']:,.0f} tok/s; ours (B={cmp['ours_batch']}, bf16) "
              f"{cmp['ours_tokens_per_s']:,.0f} tok/s = {cmp['speedup']:.1f}x (target >= 5x), "
              f"{cmp['tflops_ours']:.1f} TFLOP/s")
    write_results(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
