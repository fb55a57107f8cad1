"""What merging paths by their last n words costs in lattice rescoring (docs/lattices.md).

Builds random word lattices around PTB test sentences (at each position the reference word and
one or two other words with noisy acoustic scores, some deletions and two-position skips),
rescores each with --ngram-merge n for several n and exactly (n larger than the longest path:
no two histories merge, which tests/test_lattice.py checks equals scoring every path), and
reports per n: how many 1-bests differ from the exact one, the exact total-score loss of the
approximate 1-best (its words scored by the RNN from <s>), the WER of both against the
reference sentences, and the expanded states and RNN steps.

    python benchmarks/lattice_merge.py                     # trains a small PTB model first (~20 s)
    python benchmarks/lattice_merge.py --model DIR --lattices 50 --seed 0
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

import rnnkit
from rnnkit.inference.lattice import Arc, Lattice, Weights, best_path, check, word_kind, words_of
from rnnkit.inference.lattice_rescore import rescore_lattice

PTB = Path(__file__).resolve().parents[2] / "shared" / "data" / "ptb"


def train_model(out: Path) -> Path:
    """A small LSTM on the first 20,000 PTB training sentences (vocabulary 2,000; ~20 s on CPU)."""
    corpus = out / "ptb20k.txt"
    with open(PTB / "ptb.train.txt") as f:
        corpus.write_text("".join(line for _, line in zip(range(20_000), f)))
    cmd = ["rnnkit", "train", str(corpus), "--out", str(out / "model"), "--engine", "torch", "--device", "cpu",
           "--cell", "lstm", "--hidden-dim", "64", "--embed-dim", "64", "--max-vocab", "2000", "--max-steps", "600",
           "--batch-size", "32", "--seq-len", "20", "--quiet", "--seed", "1"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return out / "model"


def make_lattice(rng: np.random.Generator, ref: list[str], vocab: list[str], name: str) -> Lattice:
    """A lattice around `ref`: per position the word and 1-2 alternatives, deletions, skips."""
    arcs: list[Arc] = []
    m = len(ref)

    def add(i: int, j: int, word: str | None, am: float) -> None:
        arcs.append(Arc(i, j, word, am, float(-rng.uniform(2, 8)) if word else 0.0))

    for i, word in enumerate(ref):
        true_am = float(rng.normal(-10, 1))
        add(i, i + 1, word, true_am)
        for _ in range(int(rng.integers(1, 3))):
            add(i, i + 1, str(rng.choice(vocab)), true_am + float(rng.normal(-0.5, 1.5)))
        if rng.random() < 0.1:
            add(i, i + 1, None, true_am - float(rng.uniform(1, 4)))
        if i + 2 <= m and rng.random() < 0.15:
            add(i, i + 2, str(rng.choice(vocab)), 2 * true_am + float(rng.normal(0, 2)))
    lat = Lattice(name, 0, {m: (0.0, 0.0)}, arcs, dict.fromkeys(range(m + 1), 0))
    check(lat)
    return lat


def exact_path_score(lm, lat: Lattice, arcs: list[Arc], w: Weights) -> float:
    """A path's exact total: its words scored by the RNN from <s> (LanguageModel.score)."""
    words = words_of(arcs)
    end = arcs[-1].dst if arcs else lat.start
    eps_lm = sum(a.lm for a in arcs if word_kind(a.word) == "eps")
    am = sum(a.am for a in arcs) + lat.finals[end][1]
    return w.acoustic_scale * am + w.lm_weight * (lm.score(" ".join(words)) + eps_lm) + w.word_penalty * len(words)


def edits(ref: list[str], hyp: list[str]) -> int:
    """Word-level Levenshtein distance."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def sentences(lm, count: int, rng: np.random.Generator) -> list[list[str]]:
    """PTB test sentences of 6-10 words, all in the model's vocabulary."""
    vocab = set(lm.vocab.to_list())
    pool = [s.split() for s in (PTB / "ptb.test.txt").read_text().splitlines()]
    pool = [s for s in pool if 6 <= len(s) <= 10 and all(w in vocab and w != "<unk>" for w in s)]
    return [pool[i] for i in rng.choice(len(pool), size=count, replace=False)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="a word-level model directory (default: train a small one)")
    p.add_argument("--lattices", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--merge", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = p.parse_args()
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or train_model(Path(tmp))
        lm = rnnkit.load(model)
        refs = sentences(lm, args.lattices, rng)
        vocab = [t for t in lm.vocab.to_list()[3:] if t != "<unk>"]
        lats = [make_lattice(rng, ref, vocab, f"utt{i}") for i, ref in enumerate(refs)]
        report(lm, lats, refs, Weights(), args.merge)


def report(lm, lats: list[Lattice], refs: list[list[str]], w: Weights, merges: list[int]) -> None:
    stepper = lm.stepper()
    longest = 1 + max(len(lat.nodes) for lat in lats)
    t0 = time.perf_counter()
    exact = [rescore_lattice(lat, stepper, ngram_merge=longest, weights=w) for lat in lats]
    t_exact = time.perf_counter() - t0
    n_ref = sum(len(r) for r in refs)
    wer_exact = sum(edits(r, e.words) for r, e in zip(refs, exact)) / n_ref
    print(f"{len(lats)} lattices, {sum(len(x.arcs) for x in lats)} arcs, "
          f"{sum(len(r) for r in refs) / len(refs):.1f} reference words each; model {lm!r}")
    print("| n | 1-best differs | score loss mean / max (nats) | WER | states | RNN steps | seconds |")
    print("|---|---|---|---|---|---|---|")
    for n in sorted(set(merges)):
        t0 = time.perf_counter()
        res = [rescore_lattice(lat, stepper, ngram_merge=n, weights=w) for lat in lats]
        secs = time.perf_counter() - t0
        loss = []
        for lat, r, e in zip(lats, res, exact):
            _, arcs = best_path(r.lattice, w)
            loss.append(e.score - exact_path_score(lm, r.lattice, arcs, w))
        differ = sum(r.words != e.words for r, e in zip(res, exact))
        wer = sum(edits(ref, r.words) for ref, r in zip(refs, res)) / n_ref
        print(f"| {n} | {differ}/{len(lats)} | {round(float(np.mean(loss)), 4) + 0.0:.4f} / {round(max(loss), 4) + 0.0:.4f} | {wer:.2%} | "
              f"{sum(r.states for r in res)} | {sum(r.steps for r in res)} | {secs:.1f} |")
    print(f"| exact (n={longest}) | - | 0 | {wer_exact:.2%} | {sum(e.states for e in exact)} | "
          f"{sum(e.steps for e in exact)} | {t_exact:.1f} |")
    acoustic = sum(edits(r, words_of(best_path(lat, Weights(1, 0, 0))[1])) for r, lat in zip(refs, lats)) / n_ref
    print(f"acoustic scores alone: 1-best WER {acoustic:.2%}")



if __name__ == "__main__":
    main()
