"""Fused linear + cross-entropy on the CPU: the (N, K) logits are never stored whole.

    z = W h + b          ln p(y | h) = z_y - lse(z),   lse(z) = ln sum_k exp z_k
    loss = sum_i mask_i * (lse(z_i) - z_i[y_i])
    d loss / d z_i = mask_i * (softmax(z_i) - onehot(y_i))

Both functions walk the N rows in chunks and reuse one (chunk, K) block per thread, its rows
padded to a multiple of 16 floats (an odd K such as PTB's 10,001 makes the logits GEMM ~40%
slower). Per chunk: the logits GEMM, one exp pass, one
row-sum pass -- no max-subtraction pass: exp(z) is summed as it is, exact to rounding while
the sum stays inside the float range (|logits| below ~80 in float32, true of any trained
LM); a chunk with a row outside it is recomputed with the max subtracted.

`fused_linear_cross_entropy` (training) turns the block into the gradient of the logits
right away and folds it into dh, dW and db; backward only scales those by the incoming
gradient. Rows with mask 0 are dropped before the GEMMs. `target_logprobs` (scoring)
returns ln p(y) per row. On CUDA both keep torch's plain path (memory is not the bound there).
"""

from __future__ import annotations

import threading

import torch
import torch.nn.functional as F

CHUNK = 512  # rows per chunk: 512 x 10k float32 logits = 20 MB
_local = threading.local()


def _block(rows: int, like: torch.Tensor, K: int) -> torch.Tensor:
    """A reused (rows, K) scratch block with row stride padded to 16: a view of this thread's
    one flat buffer, grown as needed, so output layers of several widths (the adaptive
    softmax's head and tails) share it instead of each allocating afresh."""
    Kp = -(-K // 16) * 16
    buf = getattr(_local, "block", None)
    if buf is None or buf.dtype != like.dtype or buf.device != like.device or buf.numel() < rows * Kp:
        with torch.inference_mode(False):  # usable both by scoring and inside autograd
            buf = _local.block = like.new_empty(rows * Kp)
    return buf[: rows * Kp].view(rows, Kp)[:, :K]


def _exp_rows_(z: torch.Tensor, logits) -> tuple[torch.Tensor, torch.Tensor]:
    """Overwrite the logits block z (c, K) with exp(z - shift) and return (lse (c,), rowsum (c,)),
    rowsum = sum_k exp(z_k - shift), lse = shift + ln rowsum. shift is 0 unless a row's sum
    leaves the float range; then `logits(z)` rewrites the block and the row max is used."""
    s = z.exp_().sum(1)
    tiny, huge = (1e-30, 1e30) if z.dtype == torch.float32 else (1e-300, 1e300)
    if bool(((s > tiny) & (s < huge)).all()):
        return s.log(), s
    logits(z)
    m = z.amax(1)
    s = z.sub_(m[:, None]).exp_().sum(1)
    return m + s.log(), s


class FusedLinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, weight, bias, y, mask, chunk):  # h (N, H), weight (K, H), bias (K,), y (N,), mask (N,)
        dh = torch.zeros_like(h)
        dW = torch.zeros_like(weight)
        db = torch.zeros_like(bias)
        loss = h.new_zeros(())
        rows = torch.nonzero(mask).flatten()  # masked rows cost nothing
        hs, ys, ms = h.index_select(0, rows), y.index_select(0, rows), mask.index_select(0, rows)
        dhs = torch.empty_like(hs)
        block = _block(min(chunk, max(1, hs.shape[0])), h, weight.shape[0])
        for r0 in range(0, hs.shape[0], chunk):
            hc, yc, mc = hs[r0:r0 + chunk], ys[r0:r0 + chunk, None], ms[r0:r0 + chunk]
            def logits(out, hc=hc):
                return torch.addmm(bias, hc, weight.t(), out=out)
            z = logits(block[:hc.shape[0]])  # (c, K)
            zy = z.gather(1, yc)[:, 0]
            lse, s = _exp_rows_(z, logits)
            loss += ((lse - zy) * mc).sum()
            z.mul_((mc / s)[:, None])  # softmax * mask
            z.scatter_add_(1, yc, -mc[:, None])  # - onehot(y) * mask  -> d loss / d logits
            torch.mm(z, weight, out=dhs[r0:r0 + chunk])
            dW.addmm_(z.t(), hc)
            db.add_(z.sum(0))
        dh.index_copy_(0, rows, dhs)
        ctx.save_for_backward(dh, dW, db)
        return loss

    @staticmethod
    def backward(ctx, g):
        dh, dW, db = ctx.saved_tensors
        return dh * g, dW * g, db * g, None, None, None


def target_logprobs(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, y: torch.Tensor,
                    chunk: int = CHUNK) -> torch.Tensor:
    """ln softmax(h @ weight.T + bias)[y] per row (N,), without storing the (N, K) logits whole."""
    N = h.shape[0]
    out = torch.empty(N, dtype=h.dtype, device=h.device)
    if h.is_cuda:
        for r0 in range(0, N, chunk):
            z = torch.addmm(bias, h[r0:r0 + chunk], weight.t())
            out[r0:r0 + chunk] = z.gather(1, y[r0:r0 + chunk, None])[:, 0] - torch.logsumexp(z, 1)
        return out
    block = _block(min(chunk, max(1, N)), h, weight.shape[0])
    for r0 in range(0, N, chunk):
        hc = h[r0:r0 + chunk]
        def logits(o, hc=hc):
            return torch.addmm(bias, hc, weight.t(), out=o)
        z = logits(block[:hc.shape[0]])  # (c, K)
        zy = z.gather(1, y[r0:r0 + chunk, None])[:, 0]
        out[r0:r0 + hc.shape[0]] = zy - _exp_rows_(z, logits)[0]
    return out


def fused_linear_cross_entropy(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, y: torch.Tensor,
                               mask: torch.Tensor, chunk: int = CHUNK) -> torch.Tensor:
    """Summed masked cross-entropy of the logits h @ weight.T + bias against y (a 0-dim tensor)."""
    mask = mask.to(h.dtype)
    if h.is_cuda:
        return (F.cross_entropy(F.linear(h, weight, bias), y, reduction="none") * mask).sum()
    return FusedLinearCrossEntropy.apply(h, weight, bias, y, mask, chunk)
