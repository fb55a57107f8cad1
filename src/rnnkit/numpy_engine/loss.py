"""Softmax cross-entropy over the vocabulary, summed in nats over unmasked targets.

    o_t = softmax(V s_t + b)                 (the tutorial's output layer)
    L   = - sum_t mask_t * ln o_t[y_t]        (a SUM of nats; callers divide once)
    dL/d logits_t = mask_t * (o_t - onehot(y_t))

Log-softmax is the stable one (subtract the row maximum before exp). The training path
works in place on the (N, K) logits block so a vocabulary of tens of thousands never needs
a second block of that size.
"""

from __future__ import annotations

import numpy as np


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """ln softmax over the last axis (new array, same dtype as `logits`)."""
    z = logits - logits.max(axis=-1, keepdims=True)
    z -= np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return z


def cross_entropy(logits: np.ndarray, y: np.ndarray, mask: np.ndarray) -> float:
    """Summed masked cross-entropy of (N, K) logits against targets y (N,), weights mask (N,)."""
    if logits.shape[0] == 0:
        return 0.0
    m = logits.max(axis=1)
    lse = np.log(np.exp(logits - m[:, None]).sum(axis=1)) + m  # (N,)
    nll = lse - logits[np.arange(len(y)), y]
    return float(np.dot(nll.astype(np.float64), mask.astype(np.float64)))


def cross_entropy_backward_(logits: np.ndarray, y: np.ndarray, mask: np.ndarray) -> float:
    """Summed masked cross-entropy, and OVERWRITE `logits` (N, K) with d loss / d logits.

    Passes over the block: max, subtract, exp, sum, scale by mask / sum. The loss is
    ln(sum) - (logit_y - max), so the log-probabilities themselves are never formed.
    """
    N = logits.shape[0]
    if N == 0:
        return 0.0
    rows = np.arange(N)
    m = logits.max(axis=1, keepdims=True)  # (N, 1)
    logits -= m
    zy = logits[rows, y].astype(np.float64)  # logit of the target minus the max
    np.exp(logits, out=logits)
    s = logits.sum(axis=1, dtype=np.float64)  # (N,)
    mask64 = mask.astype(np.float64)
    loss = float(np.dot(np.log(s) - zy, mask64))
    logits *= (mask64 / s).astype(logits.dtype)[:, None]  # p * mask
    logits[rows, y] -= mask.astype(logits.dtype)  # (p - onehot) * mask
    return loss
