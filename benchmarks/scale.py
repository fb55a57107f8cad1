"""Scale: memory and start-up time of training, scoring and evaluation as the corpus grows.

Builds synthetic corpora of any size reproducibly from PTB train (copies of it, each with its
lines shuffled by a fixed seed, 5% of words given a Zipf-distributed suffix such as
`bank_17` so that the vocabulary keeps growing, as in a real crawl), then measures, each in a
fresh process:

- `rnnkit train CORPUS --engine torch --max-steps 20 --hidden-dim 64 --max-vocab 50000
  --word-split whitespace --valid ptb.valid.txt`: peak RSS, seconds to the first training step,
  training tokens per second over the 20 steps;
- the same preparation written the PyTorch word_language_model way (examples/word_language_model
  data.py: a Dictionary filled word by word over `line.split() + ['<eos>']`, then a second pass
  making a tensor per line and one torch.cat), side by side in the same run: its seconds and
  peak RSS;
- `rnnkit score` and `rnnkit eval` of inputs of given sizes with a small model: peak RSS,
  seconds and tokens per second.

    python benchmarks/scale.py --sizes 52 208 519 --score-sizes 20 200 [--work /tmp/rnnkit-scale]

Peak RSS is the process's own ru_maxrss, read at its exit. Results go to
benchmarks/results/scale.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
from common import write_results

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "ptb"
MB = 1 << 20

# --------------------------------------------------------------------------- corpora


def build_corpus(path: Path, megabytes: float, seed: int = 0) -> Path:
    """A corpus of about `megabytes` MB from PTB train (cached by path: delete it to rebuild)."""
    if path.is_file() and abs(path.stat().st_size - megabytes * MB) < 6 * MB:
        return path
    lines = (SHARED / "ptb.train.txt").read_text(encoding="utf-8").splitlines()
    rng = np.random.default_rng(seed)
    tmp = path.with_suffix(".tmp")
    written = 0
    with open(tmp, "w", encoding="utf-8") as f:
        while written < megabytes * MB:
            for i in rng.permutation(len(lines)):
                text = _suffixed(lines[i], rng) + "\n"
                f.write(text)
                written += len(text)
                if written >= megabytes * MB:
                    break
    tmp.replace(path)
    return path


def _suffixed(line: str, rng: np.random.Generator) -> str:
    """5% of the words get `_N` with N Zipf-distributed (most small, a long tail of rare ones)."""
    words = line.split()
    hit = rng.random(len(words)) < 0.05
    if not hit.any():
        return " ".join(words)
    n = rng.zipf(1.3, size=int(hit.sum()))
    it = iter(n)
    return " ".join(f"{w}_{next(it)}" if h else w for w, h in zip(words, hit))


# --------------------------------------------------------------------------- measuring a process

# Runs `rnnkit` in-process and reports its peak RSS and the time of the first training step.
RUNNER = textwrap.dedent("""
    import json, resource, sys, time
    t0 = time.perf_counter()
    first = {}
    from rnnkit import engines
    for name in ("numpy", "torch"):
        try:
            trainer = engines.get_engine(name).Trainer
        except Exception:
            continue
        real = trainer.step
        def step(self, *a, _real=real, **kw):
            first.setdefault("t", time.perf_counter())
            return _real(self, *a, **kw)
        trainer.step = step
    from rnnkit.cli import main
    rc = main(sys.argv[1:])
    out = {"rc": rc, "seconds": time.perf_counter() - t0,
           "first_step": first["t"] - t0 if "t" in first else None,
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    print("RESULT " + json.dumps(out), file=sys.stderr)
""")

WLM = textwrap.dedent("""
    import json, resource, sys, time
    import torch
    t0 = time.perf_counter()
    word2idx, idx2word = {}, []
    def add_word(word):
        if word not in word2idx:
            idx2word.append(word)
            word2idx[word] = len(idx2word) - 1
        return word2idx[word]
    path = sys.argv[1]
    with open(path, "r", encoding="utf8") as f:
        for line in f:
            for word in line.split() + ["<eos>"]:
                add_word(word)
    with open(path, "r", encoding="utf8") as f:
        idss = []
        for line in f:
            ids = [word2idx[word] for word in line.split() + ["<eos>"]]
            idss.append(torch.tensor(ids).type(torch.int64))
        ids = torch.cat(idss)
    out = {"seconds": time.perf_counter() - t0, "tokens": int(ids.numel()), "vocab": len(idx2word),
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    print("RESULT " + json.dumps(out), file=sys.stderr)
""")


SRC = ROOT / "src"  # the rnnkit under test (--src: another checkout's, to compare)


def measure(code: str, args: list[str], log: Path, cache: Path | None = None) -> dict:
    """Run `code` with `args` in a fresh interpreter (its id cache in `cache`); its RESULT line,
    and its stderr in `log`."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    if cache is not None:
        env["RNNKIT_CACHE"] = str(cache)
    proc = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, check=False)
    log.write_text(proc.stdout + proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("RESULT ")]
    if not lines:
        raise SystemExit(f"no result from {args}: see {log}")
    return json.loads(lines[-1][len("RESULT "):])


# --------------------------------------------------------------------------- the runs


def train_row(corpus: Path, work: Path) -> dict:
    """A training run with an empty id cache (the corpus read and encoded), then a second one
    that finds the corpus in the cache (`warm`: its peak RSS and first step)."""
    out = work / f"model-{corpus.stem}"
    args = ["train", str(corpus), "--out", str(out), "--engine", "torch", "--max-steps", "20", "--hidden-dim", "64",
            "--embed-dim", "64", "--max-vocab", "50000", "--word-split", "whitespace", "--quiet",
            "--valid", str(SHARED / "ptb.valid.txt")]
    cache = work / "id-cache"
    shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    r = measure(RUNNER, args, work / f"train-{corpus.stem}.log", cache)
    shutil.rmtree(out, ignore_errors=True)
    warm = measure(RUNNER, args, work / f"train-{corpus.stem}-warm.log", cache)
    r["warm"] = {k: warm[k] for k in ("first_step", "peak_rss_mb")}
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    last = max((x for x in rows if "tokens" in x), key=lambda x: x["step"], default=None)
    r["train_tok_s"] = None
    if last and r["first_step"] is not None:
        r["train_tok_s"] = last["tokens"] / max(r["seconds"] - r["first_step"], 1e-9)
    return r


def score_rows(megabytes: float, work: Path, commands: list[str]) -> dict:
    """score and eval of a PTB-derived input with a small model (vocabulary 2,000, hidden 32)."""
    model = work / "small-model"
    if not (model / "config.json").is_file():
        measure(RUNNER, ["train", str(SHARED / "ptb.valid.txt"), "--out", str(model), "--max-steps", "5",
                         "--hidden-dim", "32", "--embed-dim", "32", "--max-vocab", "2000", "--word-split",
                         "whitespace", "--quiet"], work / "small-model.log")
    src = build_corpus(work / f"score-{megabytes:g}mb.txt", megabytes, seed=1)
    tokens = _count_tokens(src)
    res = {}
    for cmd in commands:
        args = [cmd, str(model), str(src)] + (["-o", str(work / "scores.txt")] if cmd == "score" else [])
        cache = work / "id-cache"
        shutil.rmtree(cache, ignore_errors=True)
        res[cmd] = measure(RUNNER, args, work / f"{cmd}-{megabytes:g}mb.log", cache)
        res[cmd]["tok_s"] = tokens / res[cmd]["seconds"]
    return res


def _count_tokens(path: Path) -> int:
    """Words and one </s> per line (whitespace split: what the model scores, near enough)."""
    n = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            n += len(line.split()) + 1
    return n


def main(argv: list[str] | None = None) -> int:
    global SRC
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=float, nargs="*", default=[52, 208, 519], help="training corpora, MB")
    ap.add_argument("--score-sizes", type=float, nargs="*", default=[20, 200], help="score / eval inputs, MB")
    ap.add_argument("--commands", nargs="*", default=["score", "eval"], choices=["score", "eval"],
                    help="which of score and eval to measure on the --score-sizes inputs (default: both)")
    ap.add_argument("--work", default="/tmp/rnnkit-scale", help="where corpora and models go (default %(default)s)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "scale.json"))
    ap.add_argument("--src", default=str(ROOT / "src"), help="the src/ folder of the rnnkit to measure (default: this checkout's)")
    args = ap.parse_args(argv)
    SRC = Path(args.src)
    if not (SHARED / "ptb.train.txt").is_file():
        raise SystemExit(f"needs PTB at {SHARED}")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "train": {}, "score": {}}
    for mb in args.sizes:
        corpus = build_corpus(work / f"corpus-{mb:g}mb.txt", mb)
        row = {"corpus_mb": round(corpus.stat().st_size / MB, 1), "rnnkit": train_row(corpus, work),
               "word_language_model": measure(WLM, [str(corpus)], work / f"wlm-{mb:g}mb.log")}
        result["train"][f"{mb:g}"] = row
        r, w = row["rnnkit"], row["word_language_model"]
        print(f"{row['corpus_mb']:7.1f} MB  rnnkit: peak {r['peak_rss_mb']:7.0f} MB, first step {r['first_step']:6.1f} s, "
              f"{r['train_tok_s'] or 0:8,.0f} tok/s (cached: peak {r['warm']['peak_rss_mb']:5.0f} MB, first step "
              f"{r['warm']['first_step']:5.1f} s) | word_language_model prep: {w['seconds']:6.1f} s, "
              f"peak {w['peak_rss_mb']:6.0f} MB | first step / wlm prep {r['first_step'] / w['seconds']:.2f}", flush=True)
    for mb in args.score_sizes:
        res = score_rows(mb, work, args.commands)
        result["score"][f"{mb:g}"] = res
        print(f"{mb:7.1f} MB input  " + " | ".join(
            f"{c}: peak {res[c]['peak_rss_mb']:6.0f} MB, {res[c]['seconds']:6.1f} s, {res[c]['tok_s']:9,.0f} tok/s"
            for c in args.commands), flush=True)
    write_results(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
