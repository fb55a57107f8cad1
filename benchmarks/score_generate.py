"""Scoring and generation speed.

1. Scoring: sentences per second scoring the PTB test set (3,761 sentences, 82,430 predicted
   tokens) with a 2x200 LSTM over PTB's 10k vocabulary, on the numpy engine, the torch engine
   on CPU, and CUDA when present. Issue target: under 5 s on 2 CPU cores with the torch engine.
2. Generation: tokens per second generating 200 new tokens after prompts of 10, 100 and 1000
   tokens (one sample, numpy and torch CPU). Generation carries the hidden state, so the cost
   per new token must not grow with the prompt: target ratio time/token at 1000 vs 10 <= 1.5.

Speed does not depend on the weights, so the model is randomly initialised (seeded). Each
measurement is repeated (--reps) and the median reported; results go to
benchmarks/results/score_generate.json.

    python benchmarks/score_generate.py [--quick] [--reps 5]
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

from rnnkit.api import LanguageModel
from rnnkit.checkpoint import Checkpoint
from rnnkit.config import ModelConfig, SampleConfig, TokenizerConfig
from rnnkit.data import read_sentences
from rnnkit.errors import RnnkitError
from rnnkit.inference.generate import continue_from, prime
from rnnkit.params import init_params
from rnnkit.text import Vocab, WordTokenizer


def engines() -> list[tuple[str, str]]:
    out = [("numpy", "cpu")]
    try:
        import torch

        torch.set_num_threads(max(1, torch.get_num_threads()))
        out.append(("torch", "cpu"))
        if torch.cuda.is_available():
            out.append(("torch", "cuda"))
    except ImportError:
        pass
    return out


def build(engine: str, device: str, vocab: Vocab) -> LanguageModel:
    cfg = ModelConfig(vocab_size=len(vocab), cell="lstm", embed_dim=200, hidden_dim=200, num_layers=2)
    ck = Checkpoint(cfg, TokenizerConfig(level="word", word_split="whitespace"), vocab, init_params(cfg, seed=0))
    return LanguageModel(ck, engine=engine, device=device)


def median_time(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer sentences and repetitions")
    ap.add_argument("--reps", type=int, default=5, help="repetitions per measurement (median; this machine is noisy)")
    args = ap.parse_args(argv)
    try:
        train = read_sentences("ptb", level="word")
        test = read_sentences("ptb:test", level="word")
        source = "PTB test"
    except RnnkitError as e:  # no shared data: synthetic sentences of PTB-like lengths
        print(f"(PTB not found: {e}; using synthetic sentences)")
        rng = np.random.default_rng(0)
        words = [f"w{i}" for i in range(9997)]
        train = [" ".join(rng.choice(words, 20)) for _ in range(2000)]
        test = [" ".join(rng.choice(words, int(rng.integers(1, 40)))) for _ in range(3761)]
        source = "synthetic"
    tok = WordTokenizer(split="whitespace")
    vocab = Vocab.build([tok.tokenize(s) for s in train], max_size=10003)
    if args.quick:
        test = test[:500]
    reps = 1 if args.quick else args.reps
    results = {"machine": platform.processor() or platform.machine(), "python": platform.python_version(),
               "source": source, "sentences": len(test), "scoring": [], "generation": []}

    print(f"Scoring {len(test):,} {source} sentences with a 2x200 LSTM (vocab {len(vocab):,}), median of {reps}")
    print(f"{'engine':<12}{'seconds':>10}{'sent/s':>12}{'tokens/s':>12}")
    for engine, device in engines():
        lm = build(engine, device, vocab)
        lm.score_sentences(test[:64], batch_size=128)  # warm-up
        scores = []
        t = median_time(lambda lm=lm, scores=scores: scores.append(lm.score_sentences(test, batch_size=128)), reps)
        ntok = sum(s.num_scored for s in scores[0])
        name = f"{engine}-{device}"
        print(f"{name:<12}{t:>10.2f}{len(test) / t:>12,.0f}{ntok / t:>12,.0f}")
        results["scoring"].append({"engine": name, "seconds": t, "sentences_per_s": len(test) / t, "tokens_per_s": ntok / t})

    new = 50 if args.quick else 200
    print(f"\nGeneration: {new} new tokens after a prompt of L tokens (time per new token, median of {reps})")
    print(f"{'engine':<12}{'L=10 ms':>10}{'L=100 ms':>10}{'L=1000 ms':>11}{'1000/10':>9}")
    prompt_all = [i for s in test for i in vocab.encode(tok.tokenize(s))][:1000]
    cfg = SampleConfig(max_len=new, min_len=new, seed=0)
    for engine, device in engines():
        lm = build(engine, device, vocab)
        per_tok = {}
        for L in (10, 100, 1000):
            state, cur = prime(lm.model, [vocab.bos_id] + prompt_all[:L], 1)  # the prompt, run once
            per_tok[L] = median_time(lambda m=lm.model, s=state, c=cur: continue_from(m, vocab, s, c, cfg), reps) / new
        name = f"{engine}-{device}"
        ratio = per_tok[1000] / per_tok[10]
        print(f"{name:<12}{per_tok[10] * 1e3:>10.3f}{per_tok[100] * 1e3:>10.3f}{per_tok[1000] * 1e3:>11.3f}{ratio:>9.2f}")
        results["generation"].append({"engine": name, "ms_per_token": {str(k): v * 1e3 for k, v in per_tok.items()},
                                      "tokens_per_s": {str(k): 1 / v for k, v in per_tok.items()}, "ratio_1000_10": ratio})
    write_results(ROOT / "benchmarks" / "results" / "score_generate.json", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
