"""The adaptive softmax in the torch engine: PyTorch's module, rnnkit's computations.

The decoder of an adaptive model is `nn.AdaptiveLogSoftmaxWithLoss(H, K, cutoffs, div_value,
head_bias=True)`, so its parameters are named as the model directory names them
(`decoder.head.weight`, `decoder.head.bias`, `decoder.tail.{i}.0.weight` = P_i,
`decoder.tail.{i}.1.weight` = U_i) and a file loads as it is. The equations are those of
numpy_engine/output.py (the readable reference):

    ln p(k | h) = ln q_k                              k < c_0        q = softmax(W_h h + b_h)
                = ln q_{c_0+i} + ln r_i[k - c_i]      cluster i      r_i = softmax(U_i P_i h)

Here the head runs on every kept row and tail i only on the kept rows whose target lies in
cluster i, each through the fused linear + cross-entropy of fused.py (on the CPU the logits
are never stored whole; on CUDA plain F.linear + cross-entropy); the tails have no bias, so
they get a zero one that takes no gradient. `dec.log_prob(h)` (PyTorch's own) gives the whole
(N, K) distribution, exact in the same way.
"""

from __future__ import annotations

import torch
from torch import nn

from .fused import fused_linear_cross_entropy, target_logprobs


def head_targets(dec: nn.AdaptiveLogSoftmaxWithLoss, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(t, cluster): the head's target per row (y below c_0, else c_0 + i) and the cluster
    index of y (-1 in the shortlist)."""
    starts = torch.as_tensor(dec.cutoffs[:-1], device=y.device)
    cluster = torch.bucketize(y, starts, right=True) - 1
    return torch.where(cluster < 0, y, dec.shortlist_size + cluster), cluster


def _tail_rows(cluster: torch.Tensor, i: int, keep: torch.Tensor | None = None) -> torch.Tensor:
    in_cluster = cluster == i
    return torch.nonzero(in_cluster if keep is None else in_cluster & keep).flatten()


def _zero_bias(weight: torch.Tensor) -> torch.Tensor:
    return weight.new_zeros(weight.shape[0])


def adaptive_loss(h: torch.Tensor, dec: nn.AdaptiveLogSoftmaxWithLoss, y: torch.Tensor,
                  mask: torch.Tensor) -> torch.Tensor:
    """Summed masked nats -ln p(y | h) of rows h (N, H): the head on every row, each tail on its rows."""
    mask = mask.to(h.dtype)
    t, cluster = head_targets(dec, y)
    loss = fused_linear_cross_entropy(h, dec.head.weight, dec.head.bias, t, mask)
    for i, (proj, out) in enumerate(dec.tail):
        rows = _tail_rows(cluster, i, mask != 0)
        if rows.numel():
            u = proj(h.index_select(0, rows))  # u_i = P_i h
            y_i = y.index_select(0, rows) - dec.cutoffs[i]
            loss = loss + fused_linear_cross_entropy(u, out.weight, _zero_bias(out.weight), y_i,
                                                     mask.index_select(0, rows))
    return loss


def adaptive_target_logprobs(h: torch.Tensor, dec: nn.AdaptiveLogSoftmaxWithLoss, y: torch.Tensor) -> torch.Tensor:
    """ln p(y | h) per row (N,): ln q_t, plus ln r_i[y - c_i] on the rows whose target is in cluster i."""
    t, cluster = head_targets(dec, y)
    out = target_logprobs(h, dec.head.weight, dec.head.bias, t)
    for i, (proj, tail_out) in enumerate(dec.tail):
        rows = _tail_rows(cluster, i)
        if rows.numel():
            u = proj(h.index_select(0, rows))
            y_i = y.index_select(0, rows) - dec.cutoffs[i]
            out.index_add_(0, rows, target_logprobs(u, tail_out.weight, _zero_bias(tail_out.weight), y_i))
    return out
