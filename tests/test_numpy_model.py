"""numpy engine RNNLM: the contract's API, stream mode, scoring paths, loading, stability."""

import numpy as np
import pytest

from rnnkit.config import ModelConfig
from rnnkit.errors import CheckpointError
from rnnkit.numpy_engine import RNNLM
from rnnkit.params import init_params, param_shapes


def cfg_for(cell, **kw):
    base = {"vocab_size": 11, "cell": cell, "embed_dim": 6, "hidden_dim": 5, "num_layers": 2}
    base.update(kw)
    return ModelConfig(**base)


def data(T=6, B=3, K=11, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, K, (T, B)), rng.integers(0, K, (T, B))


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_stream_two_windows_equal_one_double_window(cell):
    model = RNNLM(cfg_for(cell), dtype=np.float64, seed=1)
    x, y = data(T=8)
    logits, loss, n, st = model.forward(x, y)
    l1, a, n1, s1 = model.forward(x[:4], y[:4])
    l2, b, n2, s2 = model.forward(x[4:], y[4:], hidden=s1)
    np.testing.assert_allclose(np.concatenate([l1, l2]), logits, rtol=1e-12, atol=1e-14)
    assert a + b == pytest.approx(loss, rel=1e-12) and n1 + n2 == n == 24
    for u, v in zip(st, s2):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=1e-12)
    # forward_backward carries the same state and loss
    fa, _, _, t1 = model.forward_backward(x[:4], y[:4])
    fb, _, _, _ = model.forward_backward(x[4:], y[4:], hidden=t1)
    assert fa + fb == pytest.approx(loss, rel=1e-12)


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_state_shapes_and_reorder(cell):
    model = RNNLM(cfg_for(cell))
    st = model.init_hidden(4)
    assert len(st) == 2
    if cell == "lstm":
        assert all(h.shape == c.shape == (4, 5) for h, c in st)
    else:
        assert all(h.shape == (4, 5) and h.dtype == np.float32 for h in st)
    x, _ = data(T=3, B=4)
    _, _, _, st = model.forward(x)
    r = model.reorder_hidden(st, [2, 2, 0])
    first = (lambda s: s[0]) if cell == "lstm" else (lambda s: s)
    np.testing.assert_array_equal(first(r[1]), first(st[1])[[2, 2, 0]])


def test_forward_mask_and_no_targets():
    model = RNNLM(cfg_for("gru"), dtype=np.float64)
    x, y = data()
    mask = np.ones(y.shape)
    mask[3:, 1] = 0
    _, full, n_full, _ = model.forward(x, y)
    lp, _ = model.token_logprobs(x, y)
    _, loss, n, _ = model.forward(x, y, mask)
    assert n == n_full - 3
    assert loss == pytest.approx(-(lp * mask).sum(), rel=1e-12)
    assert full == pytest.approx(-lp.sum(), rel=1e-12)
    logits, loss0, n0, _ = model.forward(x)
    assert logits.shape == (6, 3, 11) and loss0 == 0.0 and n0 == 0


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_token_and_step_logprobs_agree_with_forward(cell):
    model = RNNLM(cfg_for(cell, tie_weights=True, embed_dim=5), seed=3)
    x, y = data()
    logits, _, _, _ = model.forward(x, y)
    lp, _ = model.token_logprobs(x, y)
    assert lp.dtype == np.float64 and lp.shape == (6, 3)
    ref = logits.astype(np.float64)
    ref = ref - ref.max(-1, keepdims=True)
    ref = ref - np.log(np.exp(ref).sum(-1, keepdims=True))
    np.testing.assert_allclose(lp, np.take_along_axis(ref, y[..., None], -1)[..., 0], rtol=1e-5, atol=1e-6)
    st = model.init_hidden(3)
    for t in range(x.shape[0]):
        step, st = model.step_logprobs(x[t], st)
        assert step.shape == (3, 11) and step.dtype == np.float64
        np.testing.assert_allclose(step[np.arange(3), y[t]], lp[t], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(np.exp(step).sum(1), 1.0, rtol=1e-9)


def test_large_logits_stay_finite_and_exact():
    """Big decoder weights force the max-shifted softmax path; compare with float64 by hand."""
    cfg = cfg_for("lstm", num_layers=1)
    p = init_params(cfg, 0, np.float64)
    p["decoder.weight"] *= 2000.0  # |logits| up to ~hundreds
    x, y = data()
    for dtype in (np.float32, np.float64):
        model = RNNLM(cfg, p, dtype=dtype)
        logits, loss, _, _ = model.forward(x, y)
        fb_loss, _, grads, _ = model.forward_backward(x, y)
        z = logits.astype(np.float64)
        m = z.max(-1, keepdims=True)
        ref = -(np.take_along_axis(z, y[..., None], -1)[..., 0] - m[..., 0]
                - np.log(np.exp(z - m).sum(-1))).sum()
        assert np.isfinite(fb_loss) and all(np.isfinite(g).all() for g in grads.values())
        assert loss == pytest.approx(ref, rel=1e-5) and fb_loss == pytest.approx(ref, rel=1e-5)


def test_params_validation_and_state_dict_copies():
    cfg = cfg_for("gru")
    model = RNNLM(cfg, dtype=np.float64)
    assert model.num_parameters() == sum(int(np.prod(s)) for s in param_shapes(cfg).values())
    sd = model.state_dict()
    assert set(sd) == set(param_shapes(cfg)) and all(v.dtype == np.float64 for v in sd.values())
    sd["decoder.bias"] += 1.0
    assert not np.array_equal(sd["decoder.bias"], model.params["decoder.bias"])
    held = model.params["decoder.bias"]
    model.load_state_dict(sd)
    assert model.params["decoder.bias"] is held and np.array_equal(held, sd["decoder.bias"])
    bad = dict(sd)
    bad["rnn.weight_hh_l1"] = np.zeros((15, 4))
    with pytest.raises(CheckpointError, match=r"rnn.weight_hh_l1 has shape \(15, 4\).*needs \(15, 5\)"):
        RNNLM(cfg, bad)
    missing = {k: v for k, v in sd.items() if k != "decoder.weight"}
    with pytest.raises(CheckpointError, match="missing.*decoder.weight"):
        model.load_state_dict(missing)
    with pytest.raises(CheckpointError, match="unexpected.*extra"):
        RNNLM(cfg, {**sd, "extra": np.zeros(1)})
    f32 = RNNLM(cfg, sd)  # float64 params cast to the model dtype
    assert f32.params["embedding.weight"].dtype == np.float32


def test_untrained_loss_is_near_uniform():
    cfg = ModelConfig(vocab_size=8000, cell="rnn", embed_dim=100, hidden_dim=100)
    model = RNNLM(cfg, seed=0)
    x, y = data(T=10, B=4, K=8000)
    _, loss, n, _ = model.forward(x, y)
    assert abs(loss / n - np.log(8000)) < 0.05 * np.log(8000)


def test_bad_ids_refused():
    model = RNNLM(cfg_for("rnn"))
    with pytest.raises(ValueError, match="outside 0..10"):
        model.forward(np.array([[11]]))
