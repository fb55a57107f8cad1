"""A loaded ARPA back-off model and its scoring by the standard back-off rule.

Storage, one table per order n (no Python object per n-gram):

- order 1 is indexed by word id: `logp[1][id]`, `bow[1][id]` (log10);
- order n >= 2 holds `keys[n]`, sorted int64, with `logp[n]` and `bow[n]` in the same order.
  The key of w1..wn is `index(w1..wn-1 in order n-1) * V + id(wn)` (V the vocabulary size), so an
  n-gram is found by one `np.searchsorted` per order once its prefix is found: exact, no hashing.
  A prefix that the file lacks is stored as a placeholder (logp NaN: not an n-gram, back-off 0).

Back-off rule: p(w | h) = p(w | h) when the n-gram h w is listed, else bow(h) * p(w | h minus its
first word); a context that is not listed has bow 1 (log 0). `<s>` is context only. Scoring is
vectorised over every position of every sentence at once: for each order j, the index of the j-gram
ending at each position is found from the (j-1)-gram ending one position earlier.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BOS, EOS, UNK = "<s>", "</s>", "<unk>"


class ArpaModel:
    """An n-gram back-off model; build it with `rnnkit.ngram.arpa.read_arpa`."""

    def __init__(self, vocab: list[str], logp: list[np.ndarray], bow: list[np.ndarray],
                 keys: list[np.ndarray]) -> None:
        # logp[n], bow[n], keys[n] for n = 1..order (index 0 unused); keys[1] is None
        self.vocab = vocab
        self.order = len(logp) - 1
        self._logp, self._bow, self._keys = logp, bow, keys
        self._ids = {w: i for i, w in enumerate(vocab)}
        self.has_unk = UNK in self._ids
        self._unk = self._ids[UNK] if self.has_unk else -1

    def __repr__(self) -> str:
        counts = ", ".join(f"{n}-grams {self.count(n)}" for n in range(1, self.order + 1))
        return f"ArpaModel(order={self.order}, {counts})"

    def count(self, n: int) -> int:
        """Entries stored for order n (placeholders for missing prefixes included)."""
        return len(self._logp[n])

    def word_id(self, word: str) -> int:
        """The word's id; an unknown word: the <unk> id, or -1 without <unk>."""
        return self._ids.get(word, self._unk)

    def ids(self, words: Sequence[str]) -> np.ndarray:
        get, unk = self._ids.get, self._unk
        return np.fromiter((get(w, unk) for w in words), dtype=np.int64, count=len(words))

    def sentence_log10(self, words: Sequence[str], bos: bool = True, eos: bool = True) -> np.ndarray:
        """log10 p(word | context) for each word (and </s> when eos); bos=False: the first word
        is scored with no context (its unigram, as KenLM does). Unknown without <unk>: -inf."""
        return self.log10_after([BOS] if bos else [], list(words) + ([EOS] if eos else []))

    def log10_after(self, context: Sequence[str], words: Sequence[str]) -> np.ndarray:
        """log10 p of each of `words`, each conditioned on `context` and the words before it."""
        return self.batch_log10_after([(context, words)])[0]

    def batch_log10(self, sentences: Sequence[Sequence[str]], bos: bool = True,
                    eos: bool = True) -> list[np.ndarray]:
        """sentence_log10 for many sentences in one vectorised pass."""
        ctx = [BOS] if bos else []
        end = [EOS] if eos else []
        return self.batch_log10_after([(ctx, list(s) + end) for s in sentences])

    def batch_log10_after(self, items: Sequence[tuple[Sequence[str], Sequence[str]]]) -> list[np.ndarray]:
        """log10_after for many (context, words) pairs in one vectorised pass."""
        if not items:
            return []
        seqs = [list(c) + list(w) for c, w in items]
        lens = np.array([len(s) for s in seqs], dtype=np.int64)
        starts = np.cumsum(lens) - lens
        ids = self.ids([t for s in seqs for t in s])
        pos = np.arange(len(ids), dtype=np.int64) - np.repeat(starts, lens)
        logp = self._score_positions(ids, pos)
        return [logp[a + len(c):a + n] for (c, _), a, n in zip(items, starts.tolist(), lens.tolist())]

    def _lookup(self, n: int, prefix: np.ndarray, word: np.ndarray) -> np.ndarray:
        """Index in order n of (n-1)-gram `prefix` + `word` (-1 where absent or an input is -1)."""
        out = np.full(len(word), -1, dtype=np.int64)
        ok = (prefix >= 0) & (word >= 0)
        keys = self._keys[n]
        if not ok.any() or len(keys) == 0:
            return out
        k = prefix[ok] * len(self.vocab) + word[ok]
        at = np.minimum(np.searchsorted(keys, k), len(keys) - 1)
        out[ok] = np.where(keys[at] == k, at, -1)
        return out

    def _gram_index(self, ids: np.ndarray, pos: np.ndarray) -> list[np.ndarray]:
        """grams[j][t]: index in order j of the j-gram ending at position t, or -1 (grams[0] unused)."""
        grams = [None, ids.copy()]
        for j in range(2, self.order + 1):
            prev = np.full(len(ids), -1, dtype=np.int64)
            prev[1:] = grams[j - 1][:-1]
            prev[pos < j - 1] = -1  # the j-gram would start before the sentence
            grams.append(self._lookup(j, prev, ids))
        return grams

    def _score_positions(self, ids: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """log10 p of every position given the positions before it in its sentence."""
        grams = self._gram_index(ids, pos)
        best = np.full(len(ids), -np.inf)
        longest = np.zeros(len(ids), dtype=np.int64)
        for j in range(1, self.order + 1):
            g = grams[j]
            lp = np.full(len(ids), np.nan)
            lp[g >= 0] = self._logp[j][g[g >= 0]]
            hit = ~np.isnan(lp)
            best[hit], longest[hit] = lp[hit], j
        for j in range(1, self.order):  # back-off weights of the contexts longer than the hit
            ctx = np.full(len(ids), -1, dtype=np.int64)
            ctx[1:] = grams[j][:-1]
            use = (pos >= j) & (ctx >= 0) & (longest <= j) & (longest > 0)
            best[use] += self._bow[j][ctx[use]]
        return best
