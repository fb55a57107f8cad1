"""WER: hand-computed alignments, the tie rule, empty sides, and corpus WER divided once."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from rnnkit.inference.wer import ErrorCounts, align, corpus_counts


@pytest.mark.parametrize("ref,hyp,counts", [
    ("the cat sat", "the cat sat", (0, 0, 0)),
    ("the cat sat", "the dog sat", (1, 0, 0)),
    ("the cat sat", "the sat", (0, 1, 0)),
    ("the cat sat", "the cat sat down", (0, 0, 1)),
    ("a b c d", "a x c d e", (1, 0, 1)),
    ("a b c d e f", "b c x e f g", (1, 1, 1)),  # a deleted, d -> x, g inserted
    ("a a", "a", (0, 1, 0)),
    ("a b", "a c b", (0, 0, 1)),
    ("The cat", "the cat", (1, 0, 0)),  # case counts
])
def test_hand_computed(ref, hyp, counts):
    c = align(ref, hyp)
    assert (c.substitutions, c.deletions, c.insertions) == counts
    assert c.ref_words == len(ref.split())


def test_ties_prefer_substitutions():
    # "a b" -> "b a": 2 substitutions, or delete a + insert a: both 2 errors; substitutions win
    assert align("a b", "b a") == ErrorCounts(2, 0, 0, 2)
    # "a b c" -> "b c a": 1 del + 1 ins (2 errors) beats 3 substitutions: the minimum comes first
    assert align("a b c", "b c a") == ErrorCounts(0, 1, 1, 3)


def test_empty_sides():
    assert align("a b c", "") == ErrorCounts(0, 3, 0, 3)
    assert align("", "x y") == ErrorCounts(0, 0, 2, 0)
    assert align("", "") == ErrorCounts(0, 0, 0, 0)
    assert ErrorCounts(0, 0, 0, 0).wer == 0.0
    assert math.isinf(ErrorCounts(0, 0, 2, 0).wer)


def test_corpus_wer_is_divided_once():
    pairs = [("a b c d", "a b c d"), ("x", "y z")]  # 0/4 and 2/1: mean of rates would be 1.0
    c = corpus_counts(pairs)
    assert (c.errors, c.ref_words) == (2, 5)
    assert c.wer == pytest.approx(2 / 5)
    assert "40.00% (2 errors / 5 words: 1 sub, 0 del, 1 ins)" == c.describe()


def _brute(r: list[str], h: list[str]) -> tuple[int, int]:
    """(errors, substitutions) of the best alignment found by trying every one (small inputs)."""
    if not r:
        return len(h), 0
    if not h:
        return len(r), 0
    best = []
    e, s = _brute(r[1:], h[1:])
    best.append((e + (r[0] != h[0]), s + (r[0] != h[0])))
    e, s = _brute(r[1:], h)
    best.append((e + 1, s))
    e, s = _brute(r, h[1:])
    best.append((e + 1, s))
    return min(best, key=lambda t: (t[0], -t[1]))


def test_against_exhaustive_alignments():
    rng = random.Random(3)
    words = ["a", "b", "c"]
    for n, m in itertools.product(range(5), range(5)):
        for _ in range(4):
            r = [rng.choice(words) for _ in range(n)]
            h = [rng.choice(words) for _ in range(m)]
            c = align(r, h)
            assert (c.errors, c.substitutions) == _brute(r, h), (r, h)
            assert c.deletions - c.insertions == n - m
