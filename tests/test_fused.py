"""The torch engine's fused decoder + loss against plain F.linear + cross-entropy / log-softmax."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F

from rnnkit.torch_engine.fused import fused_linear_cross_entropy, target_logprobs


def problem(N=37, H=5, K=23, scale=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(N, H, generator=g, dtype=torch.float64, requires_grad=True)
    W = (torch.randn(K, H, generator=g, dtype=torch.float64) * scale).requires_grad_()
    b = torch.randn(K, generator=g, dtype=torch.float64).requires_grad_()
    y = torch.randint(0, K, (N,), generator=g)
    mask = (torch.rand(N, generator=g) > 0.3).double()
    return h, W, b, y, mask


@pytest.mark.parametrize("scale", [1.0, 60.0])  # 60: logits far outside exp's range, the careful path
@pytest.mark.parametrize("chunk", [4, 7, 512])
def test_fused_loss_and_gradients_match_plain_cross_entropy(scale, chunk):
    h, W, b, y, mask = problem(scale=scale)
    ref = (F.cross_entropy(F.linear(h, W, b), y, reduction="none") * mask).sum()
    gref = torch.autograd.grad(ref * 0.7, (h, W, b))
    got = fused_linear_cross_entropy(h, W, b, y, mask, chunk=chunk)
    ggot = torch.autograd.grad(got * 0.7, (h, W, b))
    got, ref = got.detach(), ref.detach()
    assert torch.isfinite(got) and abs(float(got - ref)) < 1e-9 * max(1.0, abs(float(ref)))
    for a, r in zip(ggot, gref):
        torch.testing.assert_close(a, r, rtol=1e-9, atol=1e-10)
    # masked rows get no gradient at all
    assert float(ggot[0][mask == 0].abs().max()) == 0.0


def test_fused_all_rows_masked_is_zero():
    h, W, b, y, _ = problem()
    loss = fused_linear_cross_entropy(h, W, b, y, torch.zeros(h.shape[0], dtype=torch.float64))
    dh, = torch.autograd.grad(loss, (h,))
    assert float(loss.detach()) == 0.0 and float(dh.abs().max()) == 0.0


@pytest.mark.parametrize("scale", [1.0, 60.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_target_logprobs_match_log_softmax(scale, dtype):
    h, W, b, y, _ = problem(N=41, scale=scale)
    h, W, b = (t.detach().to(dtype) for t in (h, W, b))
    ref = torch.log_softmax(F.linear(h.double(), W.double(), b.double()), 1).gather(1, y[:, None])[:, 0]
    for chunk in (5, 512):
        got = target_logprobs(h, W, b, y, chunk=chunk)
        tol = 1e-10 if dtype == torch.float64 else 1e-4 * max(1.0, scale)
        torch.testing.assert_close(got.double(), ref, rtol=tol, atol=tol)
    assert target_logprobs(h[:0], W, b, y[:0]).shape == (0,)


def test_scratch_block_shared_by_inference_and_training():
    """The per-thread logits block made while scoring (inference mode) is reused by training."""
    h, W, b, y, mask = problem(K=29)
    with torch.inference_mode():
        first = target_logprobs(h.detach(), W.detach(), b.detach(), y)
    loss = fused_linear_cross_entropy(h, W, b, y, mask)
    loss.backward()
    again = target_logprobs(h.detach(), W.detach(), b.detach(), y)
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    assert h.grad is not None and torch.isfinite(h.grad).all()
