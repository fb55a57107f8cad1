"""numpy engine training: optimizers by hand, clipping, reductions, NaN refusal, resume, dropout, learning."""

import numpy as np
import pytest

from rnnkit.config import ModelConfig, TrainConfig
from rnnkit.errors import NonFiniteError
from rnnkit.numpy_engine import (
    RNNLM,
    SGD,
    Adam,
    RMSProp,
    Trainer,
    clip_by_global_norm_,
    global_norm,
)
from rnnkit.numpy_engine.gradcheck import relative_error


def two_grads():
    rng = np.random.default_rng(0)
    p = {"w": rng.normal(size=(3, 2)), "b": rng.normal(size=4)}
    g1 = {k: rng.normal(size=v.shape) for k, v in p.items()}
    g2 = {k: rng.normal(size=v.shape) for k, v in p.items()}
    return p, g1, g2


def test_sgd_update():
    p, g1, _ = two_grads()
    w0 = p["w"].copy()
    SGD(p).update(p, g1, 0.1)
    np.testing.assert_allclose(p["w"], w0 - 0.1 * g1["w"], rtol=1e-15)


def test_rmsprop_two_updates():
    p, g1, g2 = two_grads()
    w = p["w"].copy()
    opt = RMSProp(p)
    opt.update(p, g1, 0.01)
    opt.update(p, g2, 0.02)
    v1 = 0.1 * g1["w"] ** 2
    w1 = w - 0.01 * g1["w"] / (np.sqrt(v1) + 1e-8)
    v2 = 0.9 * v1 + 0.1 * g2["w"] ** 2
    w2 = w1 - 0.02 * g2["w"] / (np.sqrt(v2) + 1e-8)
    np.testing.assert_allclose(p["w"], w2, rtol=1e-13)


def test_adam_bias_correction():
    p, g1, g2 = two_grads()
    w = p["w"].copy()
    opt = Adam(p)
    opt.update(p, g1, 0.001)
    # step 1: m_hat = g, v_hat = g^2, so every weight moves by lr * sign(g) (up to eps)
    np.testing.assert_allclose(p["w"], w - 0.001 * g1["w"] / (np.abs(g1["w"]) + 1e-8), rtol=1e-13)
    opt.update(p, g2, 0.001)
    m = 0.9 * 0.1 * g1["w"] + 0.1 * g2["w"]
    v = 0.999 * 0.001 * g1["w"] ** 2 + 0.001 * g2["w"] ** 2
    w1 = w - 0.001 * g1["w"] / (np.abs(g1["w"]) + 1e-8)
    w2 = w1 - 0.001 * (m / (1 - 0.9**2)) / (np.sqrt(v / (1 - 0.999**2)) + 1e-8)
    np.testing.assert_allclose(p["w"], w2, rtol=1e-12)
    assert opt.t == 2


def test_clip_scales_global_norm_exactly():
    _, g, _ = two_grads()
    g = {k: v * 10 for k, v in g.items()}
    before = global_norm(g)
    ref = np.sqrt(sum((v**2).sum() for v in g.values()))
    assert before == pytest.approx(ref, rel=1e-14)
    direction = {k: v / before for k, v in g.items()}
    assert clip_by_global_norm_(g, 1.5) == pytest.approx(before, rel=1e-14)
    assert global_norm(g) == pytest.approx(1.5, rel=1e-14)
    for k in g:
        np.testing.assert_allclose(g[k], 1.5 * direction[k], rtol=1e-13)
    small = {k: v.copy() for k, v in g.items()}
    clip_by_global_norm_(small, 100.0)
    assert all(np.array_equal(small[k], g[k]) for k in g)


def small_setup(cell="gru", dtype=np.float64, **train_kw):
    cfg = ModelConfig(vocab_size=9, cell=cell, embed_dim=4, hidden_dim=5, num_layers=2, **train_kw.pop("model", {}))
    model = RNNLM(cfg, dtype=dtype, seed=2)
    rng = np.random.default_rng(7)
    x, y = rng.integers(0, 9, (6, 4)), rng.integers(0, 9, (6, 4))
    mask = np.ones((6, 4))
    mask[4:, 2] = 0
    return model, TrainConfig(**train_kw), x, y, mask


@pytest.mark.parametrize("reduction", ["token", "sentence"])
def test_step_reduction_weight_decay_and_clip(reduction):
    model, tc, x, y, mask = small_setup(optimizer="sgd", lr=0.5, clip=0.0, weight_decay=0.01, loss_reduction=reduction)
    p0 = model.state_dict()
    _, n, grads, _ = model.forward_backward(x, y, mask)
    div = n if reduction == "token" else 4
    Trainer(model, tc).step(x, y, mask)
    for k in p0:
        np.testing.assert_allclose(model.params[k], p0[k] - 0.5 * (grads[k] / div + 0.01 * p0[k]), rtol=1e-12, atol=1e-15)
    # with clipping the whole update has norm exactly lr * clip
    model2, tc2, *_ = small_setup(optimizer="sgd", lr=0.5, clip=1e-3, loss_reduction=reduction)
    Trainer(model2, tc2).step(x, y, mask)
    delta = {k: (p0[k] - model2.params[k]) / 0.5 for k in p0}
    assert global_norm(delta) == pytest.approx(1e-3, rel=1e-9)


def test_nan_loss_refused_and_weights_unchanged():
    model, tc, x, y, mask = small_setup(optimizer="adam", dtype=np.float32)
    tr = Trainer(model, tc)
    tr.step(x, y, mask)
    model.params["embedding.weight"][x[0, 0]] = np.nan
    before = {k: v.tobytes() for k, v in model.params.items()}
    opt_before = {k: v.tobytes() for k, v in tr.state_dict().items()}
    with pytest.raises(NonFiniteError, match=r"^step 2: loss is nan$"):
        tr.step(x, y, mask)
    assert {k: v.tobytes() for k, v in model.params.items()} == before
    assert {k: v.tobytes() for k, v in tr.state_dict().items()} == opt_before
    assert tr.steps == 1


def test_inf_gradient_refused_and_weights_unchanged(monkeypatch):
    model, tc, x, y, mask = small_setup(optimizer="rmsprop", dtype=np.float32)
    tr = Trainer(model, tc)
    real = model.forward_backward

    def poisoned(*a, **kw):
        loss, n, grads, st = real(*a, **kw)
        grads["rnn.weight_hh_l0"][1, 2] = np.inf
        return loss, n, grads, st

    monkeypatch.setattr(model, "forward_backward", poisoned)
    before = {k: v.tobytes() for k, v in model.params.items()}
    with pytest.raises(NonFiniteError, match=r"^step 1: gradient of rnn.weight_hh_l0 is inf$"):
        tr.step(x, y, mask)
    assert {k: v.tobytes() for k, v in model.params.items()} == before


def test_resume_is_bitwise_identical():
    kw = {"optimizer": "adam", "lr": 0.01, "bptt_truncate": 2, "clip": 1.0, "model": {"dropout": 0.3, "embed_dropout": 0.2}}
    model, tc, x, y, mask = small_setup("lstm", np.float32, **kw)
    tr = Trainer(model, tc)
    st = None
    for _ in range(3):
        _, _, st = tr.step(x, y, mask, st)
    saved_model, saved_tr = model.state_dict(), tr.state_dict()
    assert all(isinstance(v, np.ndarray) for v in saved_tr.values())
    saved_st = [(h.copy(), c.copy()) for h, c in st]
    losses = []
    for _ in range(3):
        loss, _, st = tr.step(x, y, mask, st)
        losses.append(loss)
    end = model.state_dict()

    model2, tc2, *_ = small_setup("lstm", np.float32, **kw)
    model2.load_state_dict(saved_model)
    tr2 = Trainer(model2, tc2)
    tr2.load_state_dict(saved_tr)
    st2 = saved_st
    losses2 = []
    for _ in range(3):
        loss, _, st2 = tr2.step(x, y, mask, st2)
        losses2.append(loss)
    assert losses2 == losses
    assert all(model2.params[k].tobytes() == end[k].tobytes() for k in end)
    assert tr2.steps == 6


def test_dropout_gradient_matches_finite_differences():
    """With dropout masks fixed (same Generator seed each call), BPTT through the masks is exact."""
    model, _, x, y, mask = small_setup("lstm", np.float64, model={"dropout": 0.4, "embed_dropout": 0.3})

    def f():
        return model.forward_backward(x, y, mask, dropout_rng=np.random.default_rng(5))[0]

    _, _, g, _ = model.forward_backward(x, y, mask, dropout_rng=np.random.default_rng(5))
    _, _, g_plain, _ = model.forward_backward(x, y, mask)
    assert not np.allclose(g["rnn.weight_ih_l1"], g_plain["rnn.weight_ih_l1"])
    h = 1e-3
    for name in ("embedding.weight", "rnn.weight_ih_l0", "rnn.weight_hh_l1", "decoder.weight"):
        w = model.params[name].reshape(-1)
        num = np.empty(w.size)
        for i in range(w.size):
            w0, vals = w[i], []
            for d in (2, 1, -1, -2):
                w[i] = w0 + d * h
                vals.append(f())
            w[i] = w0
            num[i] = (-vals[0] + 8 * vals[1] - 8 * vals[2] + vals[3]) / (12 * h)
        assert relative_error(g[name].reshape(-1), num).max() < 1e-6, name


def pattern_batches(T=10, B=4, K=12, period=5):
    seq = np.tile(np.array([3, 7, 4, 9, 5])[:period], 400)
    cols = np.stack([seq[j * 13 : j * 13 + 1 + T * 60] for j in range(B)], axis=1)  # (T*60+1, B)
    for w in range(60):
        yield cols[w * T : (w + 1) * T], cols[w * T + 1 : (w + 1) * T + 1]


@pytest.mark.parametrize("optimizer,cell,lr", [("sgd", "rnn", 0.5), ("rmsprop", "gru", 0.01), ("adam", "lstm", 0.01)])
def test_training_learns_a_repeating_pattern(optimizer, cell, lr):
    cfg = ModelConfig(vocab_size=12, cell=cell, embed_dim=8, hidden_dim=16)
    model = RNNLM(cfg, seed=0)
    tr = Trainer(model, TrainConfig(optimizer=optimizer, lr=lr, clip=5.0, bptt_truncate=3 if cell == "rnn" else 0))
    first = None
    for epoch in range(4):  # 240 steps, stream mode (state carried)
        st, total, count = None, 0.0, 0
        for x, y in pattern_batches():
            loss, n, st = tr.step(x, y, hidden=st)
            total, count = total + loss, count + n
            first = first if first is not None else loss / n
    assert first == pytest.approx(np.log(12), rel=0.05)  # untrained: about uniform
    assert total / count < 0.1 * first, (first, total / count)  # last epoch's mean
