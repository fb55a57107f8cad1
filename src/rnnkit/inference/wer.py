"""Word error rate: word-level Levenshtein alignment counts and corpus WER.

`align(ref, hyp)` counts the substitutions, deletions and insertions of a minimal word-level
edit (each costs 1). Several alignments can reach the same minimum (ref "a b", hyp "b a": two
substitutions, or a deletion and an insertion); the one with the MOST substitutions is
counted (the fewest deletions and insertions), so the split is deterministic; the total is
the edit distance either way. Words are whitespace-separated and compared exactly (case
included). Corpus WER is the errors summed over utterances divided once by the reference
words summed (not a mean of per-utterance rates). An empty reference has 0 words: every
hypothesis word is an insertion; a corpus of only empty references has WER 0 when the
hypotheses are empty too, else infinite (there is nothing to divide by).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorCounts:
    """Alignment counts of one utterance, or summed over a corpus (`+`)."""

    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    ref_words: int = 0  # reference words (the denominator)

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def wer(self) -> float:
        """errors / reference words; 0.0 for no errors over no words, inf for errors over none."""
        if self.ref_words == 0:
            return 0.0 if self.errors == 0 else math.inf
        return self.errors / self.ref_words

    def __add__(self, other: ErrorCounts) -> ErrorCounts:
        return ErrorCounts(self.substitutions + other.substitutions, self.deletions + other.deletions,
                           self.insertions + other.insertions, self.ref_words + other.ref_words)

    def describe(self) -> str:
        """'12.50% (5 errors / 40 words: 3 sub, 1 del, 1 ins)'."""
        rate = "inf" if math.isinf(self.wer) else f"{100 * self.wer:.2f}%"
        return (f"{rate} ({self.errors} errors / {self.ref_words} words: {self.substitutions} sub, "
                f"{self.deletions} del, {self.insertions} ins)")


def _words(text: str | Sequence[str]) -> list[str]:
    return text.split() if isinstance(text, str) else list(text)


def align(ref: str | Sequence[str], hyp: str | Sequence[str]) -> ErrorCounts:
    """Counts of a minimal edit turning `ref` into `hyp` (strings are split on whitespace);
    ties between minimal edits: the most substitutions (module docstring)."""
    r, h = _words(ref), _words(hyp)
    R, H = len(r), len(h)
    # One integer per cell ranks (errors, -substitutions) lexicographically: errors * K - subs.
    K = max(R, H) + 1
    prev = [j * K for j in range(H + 1)]  # the empty reference: j insertions
    for i in range(1, R + 1):
        cur = [i * K] + [0] * H  # i deletions
        ri = r[i - 1]
        for j in range(1, H + 1):
            diag = prev[j - 1] + (0 if ri == h[j - 1] else K - 1)
            cur[j] = min(diag, prev[j] + K, cur[j - 1] + K)
        prev = cur
    cost = prev[H]
    errors = -(-cost // K)
    subs = errors * K - cost
    # deletions - insertions = R - H, and errors = subs + deletions + insertions
    dels = (errors - subs + R - H) // 2
    return ErrorCounts(subs, dels, errors - subs - dels, R)


def corpus_counts(pairs: Sequence[tuple[str | Sequence[str], str | Sequence[str]]]) -> ErrorCounts:
    """The counts of (reference, hypothesis) pairs summed (their .wer is the corpus WER)."""
    total = ErrorCounts()
    for ref, hyp in pairs:
        total = total + align(ref, hyp)
    return total
