"""Next-token predictions: the distribution over the vocabulary after each prefix.

Ids in, log-probabilities out. Each prefix is read once, one recurrent step per token: the
prefixes of a batch are sorted longest first, the context tokens run through the recurrence
with the decoder skipped (`token_logprobs` with an all-false mask), and at each prefix's last
token a row leaves the batch through one `step_logprobs`, whose (K,) log-probabilities are its
answer; the rows still reading carry on from their hidden (`reorder_hidden`). Nothing is
padded and nothing is read twice. Everything is natural log, over the whole vocabulary
(`<unk>`, `<s>` and `</s>` included), so each row's probabilities sum to 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ConfigError


def next_logprobs(model, prefixes: Sequence[Sequence[int]], *, batch_size: int = 64,
                  seq_len: int = 256) -> np.ndarray:
    """ln p(next token | prefix) for each prefix of ids: float64 (N, K), rows in input order.
    A prefix must hold at least one id (callers start it with <s>)."""
    if batch_size < 1 or seq_len < 1:
        raise ConfigError("--batch-size must be >= 1")
    seqs = [np.asarray(p, dtype=np.int64).reshape(-1) for p in prefixes]
    if any(len(s) == 0 for s in seqs):
        raise ConfigError("predict: an empty prefix has nothing to condition on (start it with <s>)")
    out = np.empty((len(seqs), model.config.vocab_size), dtype=np.float64)
    order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))  # longest first, stable
    for b0 in range(0, len(order), batch_size):
        rows = order[b0:b0 + batch_size]
        out[rows] = _batch(model, [seqs[i] for i in rows], seq_len)
    return out


def _batch(model, seqs: list[np.ndarray], seq_len: int) -> np.ndarray:
    """The (B, K) answers of one batch of prefixes sorted longest first."""
    lengths = np.array([len(s) for s in seqs])
    out = np.empty((len(seqs), model.config.vocab_size), dtype=np.float64)
    hidden, pos, alive = model.init_hidden(len(seqs)), 0, len(seqs)  # rows 0..alive-1 still reading
    for length in sorted(set(lengths.tolist())):
        x = np.stack([s[pos:length - 1] for s in seqs[:alive]], axis=1)  # (length-1-pos, alive)
        hidden = _advance(model, x, hidden, seq_len)
        pos = length - 1
        done = np.flatnonzero(lengths[:alive] == length)  # the tail of the rows still reading
        last = np.array([seqs[i][pos] for i in done], dtype=np.int64)
        out[done], _ = model.step_logprobs(last, model.reorder_hidden(hidden, done))
        alive = int(done[0])
        if alive:
            hidden = model.reorder_hidden(hidden, np.arange(alive))
    return out


def _advance(model, x: np.ndarray, hidden, seq_len: int):
    """The hidden after reading x (T, B) from `hidden`: the recurrence only, no decoder."""
    for t0 in range(0, x.shape[0], seq_len):
        w = x[t0:t0 + seq_len]
        _, hidden = model.token_logprobs(w, w, hidden, mask=np.zeros(w.shape, dtype=bool))
    return hidden


def top_k(logp: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k most likely ids of each row of (N, K) log-probabilities and their log-probabilities,
    (N, k) each, most likely first; ties by the smaller id. k = 0 or k > K: every id."""
    check_top_k(k)
    logp = np.asarray(logp, dtype=np.float64).reshape(-1, np.shape(logp)[-1])
    k = logp.shape[1] if k == 0 else min(k, logp.shape[1])
    ids = np.argsort(-logp, axis=1, kind="stable")[:, :k]
    return ids, np.take_along_axis(logp, ids, axis=1)


def check_top_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise ConfigError(f"--top-k must be a whole number >= 0 (0: every token), got {k!r}")
