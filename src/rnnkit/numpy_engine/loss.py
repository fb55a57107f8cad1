"""Softmax cross-entropy over the vocabulary, summed in nats over unmasked targets.

    o_t = softmax(V s_t + b)                 (the tutorial's output layer)
    L   = - sum_t mask_t * ln o_t[y_t]        (a SUM of nats; callers divide once)
    dL/d logits_t = mask_t * (o_t - onehot(y_t))

Log-softmax is the stable one (subtract the row maximum before exp). Scoring,
`target_logprobs`, forms the logits of a few hundred rows at a time. The training path,
`decoder_loss_backward`, runs decoder + softmax + their gradients over blocks of at most a
few hundred rows, in place in one reused (R, K) buffer, so memory does not grow with T*B and
a vocabulary of tens of thousands never needs a second block of that size.
"""

from __future__ import annotations

import numpy as np


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """ln softmax over the last axis (new array, same dtype as `logits`)."""
    z = logits - logits.max(axis=-1, keepdims=True)
    z -= np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return z


def block_rows(rows: int, K: int) -> int:
    """Rows of logits per block: ~4M entries (16 MB in float32, cache-friendly at K ~ 10k), at
    most 512, and at least 64 so that a very large K (267k words: 15 rows) does not turn the
    dW accumulation into one pass over the whole (K, H) matrix per handful of rows."""
    return max(1, min(rows, 512, max(64, (1 << 22) // K)))


def target_logprobs(Hs: np.ndarray, W: np.ndarray, b: np.ndarray, y: np.ndarray) -> np.ndarray:
    """ln softmax(Hs W^T + b)[y] per row, float64 (N,), block_rows rows of logits at a time.

        ln p(y) = z_y - max(z) - ln sum exp(z - max(z)),   z = W h + b
    """
    out = np.empty(Hs.shape[0], dtype=np.float64)
    block = block_rows(Hs.shape[0], W.shape[0])
    for r0 in range(0, Hs.shape[0], block):
        z = Hs[r0 : r0 + block] @ W.T
        z += b
        yb = y[r0 : r0 + block]
        target = z[np.arange(len(z)), yb]
        zmax = z.max(axis=1)
        z -= zmax[:, None]
        np.exp(z, out=z)
        out[r0 : r0 + len(z)] = target - zmax - np.log(z.sum(axis=1, dtype=np.float64))
    return out


def nll(logprobs: np.ndarray, y: np.ndarray, mask: np.ndarray) -> float:
    """Summed masked negative log-likelihood of (N, K) log-probabilities: - sum_n mask_n logprobs_n[y_n]."""
    picked = logprobs[np.arange(len(y)), y].astype(np.float64)
    return float(-np.dot(picked, mask.astype(np.float64)))


def cross_entropy(logits: np.ndarray, y: np.ndarray, mask: np.ndarray) -> float:
    """Summed masked cross-entropy of (N, K) logits against targets y (N,), weights mask (N,)."""
    if logits.shape[0] == 0:
        return 0.0
    m = logits.max(axis=1)
    lse = np.log(np.exp(logits - m[:, None]).sum(axis=1)) + m  # (N,)
    nll = lse - logits[np.arange(len(y)), y]
    return float(np.dot(nll.astype(np.float64), mask.astype(np.float64)))


def cross_entropy_backward_(logits: np.ndarray, y: np.ndarray, mask: np.ndarray, shift: bool = True) -> float:
    """Summed masked cross-entropy, and OVERWRITE `logits` (N, K) with d loss / d logits.

    Passes over the block: [max, subtract,] exp, sum, scale by mask / sum. The loss is
    ln(sum) - (logit_y - max), so the log-probabilities themselves are never formed.
    ``shift=False`` skips the max subtraction; only for logits known to be small enough
    that exp can neither overflow nor underflow (see `decoder_loss_backward`).
    """
    N = logits.shape[0]
    if N == 0:
        return 0.0
    rows = np.arange(N)
    if shift:
        logits -= logits.max(axis=1, keepdims=True)
    zy = logits[rows, y].astype(np.float64)  # logit of the target (minus the max)
    np.exp(logits, out=logits)
    s = logits.sum(axis=1).astype(np.float64)  # (N,)
    mask64 = mask.astype(np.float64)
    loss = float(np.dot(np.log(s) - zy, mask64))
    logits *= (mask64 / s).astype(logits.dtype)[:, None]  # p * mask
    logits[rows, y] -= mask.astype(logits.dtype)  # (p - onehot) * mask
    return loss


# exp(z) for |z| <= this, summed over up to ~1e6 classes, stays finite and non-zero
_UNSHIFTED_LIMIT = {np.dtype(np.float32): 50.0, np.dtype(np.float64): 600.0}


def decoder_loss_backward(Hs: np.ndarray, W: np.ndarray, b: np.ndarray, y: np.ndarray, mask: np.ndarray,
                          workspace: np.ndarray | None = None):
    """Output layer, loss and their backward, over row blocks of `workspace` (R, K).

        logits = Hs W^T + b          Hs (N, H), W (K, H)
        loss   = sum_n mask_n * (logsumexp(logits_n) - logits_n[y_n])
        dlogits = (softmax(logits) - onehot(y)) * mask        (formed R rows at a time)
        dHs = dlogits W,   dW = dlogits^T Hs,   db = sum_n dlogits_n

    Returns (loss, dHs (N, H), dW (K, H), db (K,)). The (N, K) block is never held whole, so
    memory does not grow with T*B and the softmax passes run on a block that stays in cache.
    The bias rides in the matmuls as an extra column of ones (so db comes out of dW's last
    column), and when |logits| <= max_k(|W_k|_1 max|Hs| + |b_k|) is provably small the
    softmax skips the max subtraction (softmax is shift-invariant; nothing can overflow).
    """
    N, H = Hs.shape
    K = W.shape[0]
    if workspace is None:
        workspace = np.empty((block_rows(N, K), K), dtype=Hs.dtype)
    R = workspace.shape[0]
    Ha = np.empty((N, H + 1), dtype=Hs.dtype)  # [Hs, 1]
    Ha[:, :H], Ha[:, H] = Hs, 1.0
    Wa = np.concatenate([W, b[:, None]], axis=1)  # (K, H+1) = [W, b]
    bound = float((np.abs(W).sum(axis=1) * (np.abs(Hs).max() if N else 0.0) + np.abs(b)).max())
    shift = not bound <= _UNSHIFTED_LIMIT.get(np.dtype(Hs.dtype), 0.0)
    dHs = np.empty_like(Hs)
    dWa = np.zeros_like(Wa)
    tmp = np.empty_like(Wa) if N > R else None
    loss = 0.0
    for s in range(0, N, R):
        e = min(N, s + R)
        blk, Hb = workspace[: e - s], Ha[s:e]
        np.matmul(Hb, Wa.T, out=blk)  # (R, K) logits = Hs W^T + b
        loss += cross_entropy_backward_(blk, y[s:e], mask[s:e], shift)  # blk is now dlogits
        if tmp is None:
            np.matmul(blk.T, Hb, out=dWa)
        else:
            np.matmul(blk.T, Hb, out=tmp)
            dWa += tmp
        np.matmul(blk, W, out=dHs[s:e])
    return loss, dHs, np.ascontiguousarray(dWa[:, :H]), dWa[:, H].copy()
