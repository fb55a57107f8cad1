"""Turning the rows read from an ARPA file into an `ArpaModel`'s sorted tables.

Order 1 is indexed by word id. Order n >= 2 gets one int64 key per n-gram, `index of its
(n-1)-word prefix in order n-1 * V + id of its last word`, sorted, with log10 probability and
back-off weight in the same order (float32, as KenLM stores them). A prefix the file does not list
is added to order n-1 as a placeholder (probability NaN: not an n-gram; back-off weight 0), its own
prefix likewise, so every stored n-gram's prefix is found. Duplicates are refused.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .backoff import ArpaModel

Rows = tuple[np.ndarray, np.ndarray, np.ndarray]  # words (N, n) int32, log10 prob, log10 bow (N,) float32


def build_tables(path: str, vocab: list[str], rows: list[Rows], lines: list[int]) -> ArpaModel:
    """The model from each order's rows in file order (rows[0] is order 1)."""
    v = len(vocab)
    rows = [None, *rows]
    order = len(rows) - 1
    for n in range(2, order + 1):
        if (rows[n - 1][0].shape[0] + 1) * v >= 2**63:
            raise InputError(f"{path}:{lines[n - 1]}: too many {n - 1}-grams for a {v}-word vocabulary")
    keys: list[np.ndarray | None] = [None] * (order + 1)
    logp = [np.zeros(0, np.float32)] + [None] * order
    bow = [np.zeros(0, np.float32)] + [None] * order
    logp[1], bow[1] = rows[1][1].astype(np.float32), rows[1][2].astype(np.float32)
    for n in range(2, order + 1):
        _build(n, rows, keys, logp, bow, v, path, lines)
    return ArpaModel(vocab, logp, bow, keys)


def _prefix_index(n: int, words: np.ndarray, keys: list, v: int) -> np.ndarray:
    """Index in order n-1 of each row's (n-1)-word prefix, -1 where not stored."""
    idx = words[:, 0].astype(np.int64)
    for j in range(2, n):
        k = idx * v + words[:, j - 1]
        at = np.minimum(np.searchsorted(keys[j], k), max(len(keys[j]) - 1, 0))
        found = (idx >= 0) & (keys[j][at] == k) if len(keys[j]) else np.zeros(len(k), bool)
        idx = np.where(found, at, -1)
    return idx


def _build(n: int, rows: list, keys: list, logp: list, bow: list, v: int, path: str, lines: list[int]) -> None:
    """Sort order n by key, first adding placeholders for prefixes not stored (rebuilding below)."""
    words, lp, bw = rows[n]
    ctx = _prefix_index(n, words, keys, v)
    if (ctx < 0).any():
        missing = np.unique(words[ctx < 0, :n - 1], axis=0)
        w1, lp1, bw1 = rows[n - 1]
        rows[n - 1] = (np.concatenate([w1, missing]), np.concatenate([lp1, np.full(len(missing), np.nan, np.float32)]),
                       np.concatenate([bw1, np.zeros(len(missing), np.float32)]))
        if n - 1 >= 2:
            _build(n - 1, rows, keys, logp, bow, v, path, lines)
        ctx = _prefix_index(n, words, keys, v)
    k = ctx * v + words[:, n - 1].astype(np.int64)
    perm = np.argsort(k, kind="stable")
    k = k[perm]
    dup = np.flatnonzero(k[1:] == k[:-1])
    if len(dup):
        i = int(perm[dup[0] + 1])
        raise InputError(f"{path}:{lines[n - 1] + i + 1}: duplicate {n}-gram (listed earlier in the section)")
    keys[n] = k
    logp[n] = lp[perm].astype(np.float32)
    bow[n] = bw[perm].astype(np.float32)
