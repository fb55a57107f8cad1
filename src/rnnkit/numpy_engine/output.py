"""The output layer of the numpy engine: the full softmax and the adaptive softmax.

Both turn the top layer's outputs h (N, H) into next-token distributions over the K ids,
behind one interface that RNNLM uses:

    logits(h)                 (N, K) in the model dtype: what RNNLM.forward returns
    log_probs(h)              (N, K) float64, ln p(k | h): step_logprobs (generation)
    target_logprobs(h, y)     (N,) float64, ln p(y | h) of the targets only: scoring
    loss_backward(h, y, m)    (summed nats, dL/dh, {parameter: gradient}): training

**Full softmax** (`decoder.weight`, or the embedding when tied; `decoder.bias`):

    z = W h + b,    ln p(k | h) = z_k - ln sum_j exp z_j            logits are z

**Adaptive softmax** (Grave et al., 2017), cut-offs c_0 < ... < c_{n-1} and c_n = K, ids
ordered by frequency. The head is a softmax over the shortlist (ids 0 .. c_0-1) and one
entry per tail cluster; tail cluster i is a softmax over its ids c_i .. c_{i+1}-1, computed
from a projection of h to P_i = H // div_value**(i+1) units:

    head:    z = W_h h + b_h            (c_0 + n,)    ln q = log_softmax(z)
    tail i:  u_i = P_i h                (P_i,)        P_i = decoder.tail.{i}.0.weight
             v_i = U_i u_i              (c_{i+1}-c_i,) U_i = decoder.tail.{i}.1.weight
             ln r_i = log_softmax(v_i)
    ln p(k | h) = ln q_k                              k < c_0
                = ln q_{c_0+i} + ln r_i[k - c_i]      c_i <= k < c_{i+1}

q and every r_i are normalised, so sum_k p(k | h) = sum_{k<c_0} q_k + sum_i q_{c_0+i} = 1:
the probabilities are exact, not an approximation. Its `logits` are these log-probabilities
(softmax of them is p again, so sampling code can treat them as logits).

Loss of target y with weight m: -m ln p(y | h) = -m ln q_t - [y >= c_0] m ln r_i[y - c_i], with
the head target t = y for y < c_0, else c_0 + i (i: the cluster of y). Backward:

    dz   = m (q - onehot(t))                      dW_h = dz^T h,   db_h = sum_rows dz,   dh = dz W_h
    rows whose y is in cluster i:
    dv_i = m (r_i - onehot(y - c_i))              dU_i = dv_i^T u_i,   du_i = dv_i U_i
                                                  dP_i = du_i^T h,     dh += du_i P_i

The head (on every row) and each tail (on its own rows, input u_i, no bias) are each a linear
layer + softmax + cross-entropy, so both run through loss.decoder_loss_backward, the same
checked code as the full softmax. A cluster that no target of the batch falls in gets no
gradient: loss_backward leaves its tensors out (RNNLM fills in zeros where the contract wants
dense gradients; the sparse SGD step skips them).
"""

from __future__ import annotations

import numpy as np

from ..config import ModelConfig
from ..params import Cluster, decoder_weight, tail_clusters
from .loss import block_rows, decoder_loss_backward, log_softmax, target_logprobs


class OutputLayer:
    """What both output layers share: the model's parameter dict and a reused logits block."""

    def __init__(self, params: dict[str, np.ndarray]):
        self.params = params  # the model's dict: updated in place by the optimizer
        self._ws: np.ndarray | None = None

    def _workspace(self, rows: int, K: int, dtype) -> np.ndarray:
        """A reused (R, K) block for logits / dlogits (R = loss.block_rows: 16 MB at K = 8000 in float32)."""
        R = block_rows(rows, K)
        if self._ws is None or self._ws.shape[0] < R or self._ws.shape[1] != K or self._ws.dtype != dtype:
            self._ws = np.empty((R, K), dtype=dtype)
        return self._ws[:R]


class FullSoftmax(OutputLayer):
    """z = W h + b over all K ids (W tied to the embedding when the config says so)."""

    def __init__(self, config: ModelConfig, params: dict[str, np.ndarray]):
        super().__init__(params)

    @property
    def weight(self) -> np.ndarray:
        return decoder_weight(self.params)

    def logits(self, h: np.ndarray) -> np.ndarray:
        z = h @ self.weight.T  # (N, K)
        z += self.params["decoder.bias"]
        return z

    def log_probs(self, h: np.ndarray) -> np.ndarray:
        return log_softmax(self.logits(h).astype(np.float64))

    def target_logprobs(self, h: np.ndarray, y: np.ndarray) -> np.ndarray:
        return target_logprobs(h, self.weight, self.params["decoder.bias"], y)

    def loss_backward(self, h: np.ndarray, y: np.ndarray, mask: np.ndarray):
        """(loss, dL/dh, {"decoder.weight": dW, "decoder.bias": db}); the caller adds dW to the
        embedding's gradient when the weights are tied."""
        W, b = self.weight, self.params["decoder.bias"]
        loss, dh, dW, db = decoder_loss_backward(h, W, b, y, mask, self._workspace(len(h), len(b), h.dtype))
        return loss, dh, {"decoder.weight": dW, "decoder.bias": db}


class AdaptiveSoftmax(OutputLayer):
    """The adaptive softmax: a head over the shortlist and the clusters, one softmax per cluster."""

    def __init__(self, config: ModelConfig, params: dict[str, np.ndarray]):
        super().__init__(params)
        self.clusters: list[Cluster] = tail_clusters(config)
        self.shortlist = config.cutoffs[0]
        self.K = config.vocab_size

    def _head(self) -> tuple[np.ndarray, np.ndarray]:
        return self.params["decoder.head.weight"], self.params["decoder.head.bias"]

    def _tail(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(P_i (proj, H), U_i (cluster size, proj)) of cluster i."""
        return self.params[f"decoder.tail.{i}.0.weight"], self.params[f"decoder.tail.{i}.1.weight"]

    def head_targets(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(t, cluster): the head's target per row (y below c_0, else c_0 + i) and the
        cluster index of y (-1 for the shortlist)."""
        starts = np.array([cl.start for cl in self.clusters])
        cluster = np.searchsorted(starts, y, side="right") - 1  # -1 below c_0
        return np.where(cluster < 0, y, self.shortlist + cluster), cluster

    def _full(self, h: np.ndarray, dtype) -> np.ndarray:
        """ln p(k | h) for every id (N, K): ln q on the shortlist, ln q_{c_0+i} + ln r_i on cluster i."""
        W, b = self._head()
        out = np.empty((h.shape[0], self.K), dtype=dtype)
        lq = log_softmax((h @ W.T + b).astype(dtype))  # (N, c_0 + n)
        out[:, : self.shortlist] = lq[:, : self.shortlist]
        for i, cl in enumerate(self.clusters):
            P, U = self._tail(i)
            out[:, cl.start : cl.stop] = log_softmax(((h @ P.T) @ U.T).astype(dtype)) + lq[:, self.shortlist + i, None]
        return out

    def logits(self, h: np.ndarray) -> np.ndarray:
        return self._full(h, h.dtype)

    def log_probs(self, h: np.ndarray) -> np.ndarray:
        return self._full(h, np.float64)

    def target_logprobs(self, h: np.ndarray, y: np.ndarray) -> np.ndarray:
        """ln q_t for every row, plus ln r_i[y - c_i] on the rows whose target is in cluster i."""
        W, b = self._head()
        t, cluster = self.head_targets(y)
        out = target_logprobs(h, W, b, t)
        for i, cl in enumerate(self.clusters):
            rows = np.flatnonzero(cluster == i)
            if len(rows):
                P, U = self._tail(i)
                out[rows] += target_logprobs(h[rows] @ P.T, U, np.zeros(cl.size, h.dtype), y[rows] - cl.start)
        return out

    def loss_backward(self, h: np.ndarray, y: np.ndarray, mask: np.ndarray):
        """(loss, dL/dh, gradients): the head on every row, each visited cluster on its rows."""
        W, b = self._head()
        t, cluster = self.head_targets(y)
        ws = self._workspace(len(h), len(b), h.dtype)
        loss, dh, dW, db = decoder_loss_backward(h, W, b, t, mask, ws)
        grads = {"decoder.head.weight": dW, "decoder.head.bias": db}
        for i, cl in enumerate(self.clusters):
            rows = np.flatnonzero((cluster == i) & (mask != 0))
            if len(rows):
                tail_loss, grads[f"decoder.tail.{i}.0.weight"], grads[f"decoder.tail.{i}.1.weight"] = \
                    self._tail_backward(i, cl, h, y, mask, rows, dh)
                loss += tail_loss
        return loss, dh, grads

    def _tail_backward(self, i: int, cl: Cluster, h, y, mask, rows, dh):
        """Cluster i on its rows: u = P h, v = U u, softmax cross-entropy; adds du P to dh[rows].
        Returns (loss, dP, dU)."""
        P, U = self._tail(i)
        hr = h[rows]
        u = hr @ P.T  # (n_i, proj)
        loss, du, dU, _ = decoder_loss_backward(u, U, np.zeros(cl.size, h.dtype), y[rows] - cl.start, mask[rows])
        dh[rows] += du @ P
        return loss, du.T @ hr, dU


def make_output(config: ModelConfig, params: dict[str, np.ndarray]) -> FullSoftmax | AdaptiveSoftmax:
    """The output layer a config asks for, over the model's parameter dict."""
    return AdaptiveSoftmax(config, params) if config.adaptive else FullSoftmax(config, params)
