"""A small n-gram counter of the tests' own (not rnnkit's): counts a tokenized corpus, writes an
interpolated Witten-Bell model as ARPA, and computes the same model's probabilities directly from
the counts, the independent reference the ARPA reader is checked against.

Model (order N, sentences as <s> w1 .. wn </s>, words outside the vocabulary as <unk>):
    p(w) = (c(w) + 1) / (T + V)                         add-one unigram over the V predictable words
    p(w | h) = (c(h w) + d(h) p(w | h')) / (c(h) + d(h))  where h is seen as a context, else p(w | h')
with c(h) = the count of h as a context (of k-grams that start with it), d(h) = how many distinct
words follow it, h' = h minus its first word. As ARPA: each seen n-gram gets its own p(w | h) and
each seen context its back-off weight d(h) / (c(h) + d(h)), which makes the back-off rule give the
same numbers for unseen ones.

    python tests/ngram_build.py TRAIN.txt OUT.arpa [--order 3]
"""

from __future__ import annotations

import argparse
import math
from collections import Counter

BOS, EOS, UNK = "<s>", "</s>", "<unk>"


class WittenBell:
    def __init__(self, sentences, order: int = 3) -> None:
        self.order = order
        self.counts = [Counter() for _ in range(order + 1)]  # counts[k][k-gram tuple]
        for words in sentences:
            seq = [BOS, *words, EOS]
            for k in range(1, order + 1):
                self.counts[k].update(zip(*(seq[i:] for i in range(k))))
        self.counts[1].pop((BOS,), None)  # <s> is never predicted
        self.vocab = sorted({w for (w,) in self.counts[1]} | {UNK, EOS})
        self.total = sum(self.counts[1].values())
        self.stats: dict[tuple, list[int]] = {}  # context -> [c(h), d(h)]
        for k in range(2, order + 1):
            for gram, c in self.counts[k].items():
                s = self.stats.setdefault(gram[:-1], [0, 0])
                s[0] += c
                s[1] += 1

    def word(self, w: str) -> str:
        return w if (w,) in self.counts[1] or w in (UNK, EOS, BOS) else UNK

    def prob(self, w: str, h: tuple) -> float:
        """p(w | h) straight from the counts (h: up to order-1 words, most recent last)."""
        h = h[len(h) - (self.order - 1):] if len(h) >= self.order else h
        if not h:
            return (self.counts[1].get((w,), 0) + 1) / (self.total + len(self.vocab))
        lower = self.prob(w, h[1:])
        s = self.stats.get(h)
        if s is None:
            return lower
        c = self.counts[len(h) + 1].get(h + (w,), 0)
        return (c + s[1] * lower) / (s[0] + s[1])

    def sentence_log10(self, words: list[str]) -> list[float]:
        seq = [BOS] + [self.word(w) for w in words] + [EOS]
        return [math.log10(self.prob(seq[i], tuple(seq[max(0, i - self.order + 1):i])))
                for i in range(1, len(seq))]

    def bow(self, h: tuple) -> float | None:
        s = self.stats.get(h)
        return None if s is None else math.log10(s[1] / (s[0] + s[1]))

    def write_arpa(self, path: str) -> None:
        probs: dict[tuple, float] = {}
        sizes = [len(self.vocab) + 1] + [len(self.counts[k]) for k in range(2, self.order + 1)]
        with open(path, "w", encoding="utf-8") as f:
            f.write("\\data\\\n" + "".join(f"ngram {k}={n}\n" for k, n in enumerate(sizes, 1)) + "\n")
            f.write("\\1-grams:\n")
            for w in [BOS, *self.vocab]:
                p = -99.0 if w == BOS else math.log10(self.prob(w, ()))
                probs[(w,)] = p
                f.write(_line(p, (w,), self.bow((w,))))
            for k in range(2, self.order + 1):
                f.write(f"\n\\{k}-grams:\n")
                for gram in sorted(self.counts[k]):
                    h, w = gram[:-1], gram[-1]
                    s = self.stats[h]
                    p = (self.counts[k][gram] + s[1] * 10 ** probs[gram[1:]]) / (s[0] + s[1])
                    probs[gram] = math.log10(p)
                    f.write(_line(probs[gram], gram, self.bow(gram) if k < self.order else None))
                for gram in [g for g in probs if len(g) == k - 1]:
                    del probs[gram]
            f.write("\n\\end\\\n")


def _line(p: float, gram: tuple, bow: float | None) -> str:
    tail = "" if bow is None else f"\t{bow:.8f}"
    return f"{p:.8f}\t{' '.join(gram)}{tail}\n"


def read_sentences(path: str) -> list[list[str]]:
    with open(path, encoding="utf-8") as f:
        return [line.split() for line in f if line.strip()]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("train")
    ap.add_argument("out")
    ap.add_argument("--order", type=int, default=3)
    a = ap.parse_args(argv)
    WittenBell(read_sentences(a.train), a.order).write_arpa(a.out)


if __name__ == "__main__":
    main()
