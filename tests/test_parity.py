"""Parity between the numpy reference engine and the PyTorch engine.

The same parameters loaded into both engines give the same logits, loss, token
log-probabilities, gradients, carried state and (without dropout) the same weights after a
few Trainer steps with each optimizer; the same for the adaptive softmax (one and two tail
clusters), whose logits are log-probabilities. Tolerances: float64 to 1e-10 relative (the engines
sum in different orders, so bitwise equality is not expected, but rounding stays near
1e-15), float32 to 1e-5 relative.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
numpy_engine = pytest.importorskip("rnnkit.numpy_engine")

from rnnkit import torch_engine
from rnnkit.config import ModelConfig, TrainConfig
from rnnkit.params import init_params

K, D, H = 17, 8, 8
CASES = [(cell, nl, tie) for cell, nl in [("rnn", "tanh"), ("rnn", "relu"), ("gru", "tanh"),
                                          ("lstm", "tanh")] for tie in (False, True)]
IDS = [f"{c}-{n}-{'tied' if t else 'untied'}" for c, n, t in CASES]
TOL = {np.float64: {"rtol": 1e-10, "atol": 1e-12}, np.float32: {"rtol": 1e-5, "atol": 1e-6}}


def cfg(cell, nl, tie, **kw) -> ModelConfig:
    return ModelConfig(vocab_size=K, cell=cell, nonlinearity=nl, embed_dim=D, hidden_dim=H,
                       num_layers=2, tie_weights=tie, **kw)


def data(T=6, B=4, seed=0):
    rng = np.random.default_rng(seed)
    x, y = rng.integers(0, K, (T, B)), rng.integers(0, K, (T, B))
    mask = (rng.random((T, B)) > 0.25).astype(np.float32)
    return x, y, mask


def pair(c, dtype, seed=0):
    params = init_params(c, seed, dtype)
    return numpy_engine.RNNLM(c, params, dtype=dtype), torch_engine.RNNLM(c, params, dtype=dtype)


def to_np(state):
    return [tuple(np.asarray(a) for a in s) if isinstance(s, tuple) else np.asarray(s)
            for s in state]


def assert_state_close(a, b, tol):
    for sa, sb in zip(to_np(a), to_np(b)):
        for u, v in zip(sa if isinstance(sa, tuple) else (sa,), sb if isinstance(sb, tuple) else (sb,)):
            np.testing.assert_allclose(u, v, **tol)


def assert_grads_close(ga, gb, rtol):
    assert list(ga) == list(gb)
    for k in ga:
        scale = max(np.abs(ga[k]).max(), 1e-3)  # relative to the largest entry
        np.testing.assert_allclose(ga[k] / scale, gb[k] / scale, rtol=rtol, atol=rtol, err_msg=k)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cell,nl,tie", CASES, ids=IDS)
def test_forward_logprobs_and_gradients(cell, nl, tie, dtype):
    c = cfg(cell, nl, tie)
    npm, tm = pair(c, dtype)
    tol = TOL[dtype]
    x, y, mask = data()
    la, lossa, na, sa = npm.forward(x, y, mask)
    lb, lossb, nb, sb = tm.forward(x, y, mask)
    np.testing.assert_allclose(la, lb, **tol)
    assert na == nb and lossa == pytest.approx(lossb, rel=tol["rtol"])
    assert_state_close(sa, sb, tol)
    pa, _ = npm.token_logprobs(x, y)
    pb, _ = tm.token_logprobs(x, y)
    np.testing.assert_allclose(pa, pb, **tol)
    # gradients of the summed loss, starting from a non-zero state given as numpy arrays
    state = npm.init_hidden(4)
    state = [tuple(a + 0.1 for a in s) if cell == "lstm" else s + 0.1 for s in state]
    lossa, na, ga, sa = npm.forward_backward(x, y, mask, state)
    lossb, nb, gb, sb = tm.forward_backward(x, y, mask, state)
    assert na == nb and lossa == pytest.approx(lossb, rel=tol["rtol"])
    assert_grads_close(ga, gb, tol["rtol"])
    assert_state_close(sa, sb, tol)


@pytest.mark.parametrize("cell,nl,tie", CASES[::2] + CASES[7:], ids=IDS[::2] + IDS[7:])
def test_carried_state_and_step_logprobs(cell, nl, tie):
    c = cfg(cell, nl, tie)
    npm, tm = pair(c, np.float64)
    tol = TOL[np.float64]
    x, y, _ = data(T=10, seed=3)
    sa = sb = None
    for w in (slice(0, 5), slice(5, 10)):  # two windows, state carried by each engine
        pa, sa = npm.token_logprobs(x[w], y[w], sa)
        pb, sb = tm.token_logprobs(x[w], y[w], sb)
        np.testing.assert_allclose(pa, pb, **tol)
        assert_state_close(sa, sb, tol)
    # a numpy engine state fed to the torch engine, and back
    pa, _ = npm.token_logprobs(x[:3], y[:3], to_np(sb))
    pb, _ = tm.token_logprobs(x[:3], y[:3], sa)
    np.testing.assert_allclose(pa, pb, **tol)
    qa, sa = npm.step_logprobs(x[0], sa)
    qb, sb = tm.step_logprobs(x[0], sb)
    np.testing.assert_allclose(qa, qb, **tol)
    assert_state_close(npm.reorder_hidden(sa, [3, 0]), tm.reorder_hidden(sb, [3, 0]), tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_state_dict_crosses_engines(cell, dtype):
    c = cfg(cell, "tanh", cell == "lstm")
    a = numpy_engine.RNNLM(c, dtype=dtype, seed=5)
    b = torch_engine.RNNLM(c, dtype=dtype, seed=5)
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    assert all(sa[k].dtype == sb[k].dtype == dtype and np.array_equal(sa[k], sb[k]) for k in sa)
    # train the torch one a little, export, load into a fresh numpy engine, and back
    x, y, mask = data()
    b.load_state_dict({k: v * 1.5 for k, v in sb.items()})
    a.load_state_dict(b.state_dict())
    np.testing.assert_allclose(a.forward(x, y, mask)[0], b.forward(x, y, mask)[0], **TOL[dtype])
    c2 = torch_engine.RNNLM(c, a.state_dict(), dtype=dtype)
    assert all(np.array_equal(v, a.state_dict()[k]) for k, v in c2.state_dict().items())


@pytest.mark.parametrize("opt,lr,wd,clip,red", [
    ("sgd", 0.5, 0.0, 5.0, "token"),
    ("sgd", 0.3, 0.01, 0.05, "sentence"),
    ("rmsprop", 0.01, 0.0, 5.0, "token"),
    ("rmsprop", 0.005, 0.001, 0.1, "token"),
    ("adam", 0.01, 0.0, 5.0, "token"),
    ("adam", 0.02, 0.01, 0.1, "sentence"),
])
@pytest.mark.parametrize("cell,tie", [("lstm", True), ("gru", False), ("rnn", False)])
def test_trainer_steps_match(opt, lr, wd, clip, red, cell, tie):
    c = cfg(cell, "tanh", tie)
    npm, tm = pair(c, np.float64, seed=2)
    tc = TrainConfig(optimizer=opt, lr=lr, weight_decay=wd, clip=clip, loss_reduction=red)
    ta, tb = numpy_engine.Trainer(npm, tc), torch_engine.Trainer(tm, tc)
    sa = sb = None
    for i in range(4):
        x, y, mask = data(T=5, B=3, seed=10 + i)
        if i == 2:
            ta.lr = tb.lr = lr / 2
        la, na, sa = ta.step(x, y, mask, sa)
        lb, nb, sb = tb.step(x, y, mask, sb)
        assert na == nb and la == pytest.approx(lb, rel=1e-10)
    wa, wb = npm.state_dict(), tm.state_dict()
    for k in wa:
        np.testing.assert_allclose(wa[k], wb[k], rtol=1e-9, atol=1e-12, err_msg=k)
    assert_state_close(sa, sb, TOL[np.float64])


def without_rng(trainer_state: dict) -> set[str]:
    """The keys of a trainer state but its RNG states (rng.numpy, rng.torch_cpu: one per engine)."""
    return {k for k in trainer_state if not k.startswith("rng.")}


def resume_in_the_other_engine(first: str, opt: str) -> None:
    """Two steps in engine `first`, its model and Trainer.state_dict() loaded into the other
    engine, two more steps in both: the same weights (one key scheme; the RNG keys differ)."""
    c = cfg("gru", "tanh", False)
    npm, tm = pair(c, np.float64, seed=4)
    tc = TrainConfig(optimizer=opt, lr=0.01, clip=1.0)
    engines = {"numpy": (npm, numpy_engine.Trainer), "torch": (tm, torch_engine.Trainer)}
    second = "torch" if first == "numpy" else "numpy"
    (model_a, Trainer_a), (model_b, Trainer_b) = engines[first], engines[second]
    ta = Trainer_a(model_a, tc)
    s = None
    for i in range(2):
        _, _, s = ta.step(*data(T=5, B=3, seed=20 + i), s)
    model_b.load_state_dict(model_a.state_dict())
    tb = Trainer_b(model_b, tc)
    tb.load_state_dict(ta.state_dict())
    assert tb.steps == 2
    assert without_rng(tb.state_dict()) == without_rng(ta.state_dict())
    sa, sb = s, to_np(s)
    for i in range(2, 4):
        _, _, sa = ta.step(*data(T=5, B=3, seed=20 + i), sa)
        _, _, sb = tb.step(*data(T=5, B=3, seed=20 + i), sb)
    wa, wb = npm.state_dict(), tm.state_dict()
    for k in wa:
        np.testing.assert_allclose(wa[k], wb[k], rtol=1e-9, atol=1e-12, err_msg=k)


@pytest.mark.parametrize("opt", ["sgd", "rmsprop", "adam"])
def test_resume_numpy_trainer_state_in_torch_engine(opt):
    resume_in_the_other_engine("numpy", opt)


@pytest.mark.parametrize("opt", ["sgd", "rmsprop", "adam"])
def test_resume_torch_trainer_state_in_numpy_engine(opt):
    resume_in_the_other_engine("torch", opt)


@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_masked_token_logprobs_skip_only_masked_positions(engine):
    c = cfg("lstm", "tanh", False)
    m = pair(c, np.float64)[0 if engine == "numpy" else 1]
    x, y, mask = data(T=7, B=5, seed=3)
    full, s_full = m.token_logprobs(x, y)
    part, s_part = m.token_logprobs(x, y, mask=mask.astype(bool))
    keep = mask.astype(bool)
    np.testing.assert_allclose(part[keep], full[keep], rtol=1e-12)
    assert (part[~keep] == 0.0).all() and (full[~keep] < 0).all()
    assert_state_close(s_part, s_full, {"rtol": 0, "atol": 0})  # the recurrence still sees every step
    none, _ = m.token_logprobs(x, y, mask=np.zeros_like(keep))
    assert (none == 0.0).all()


# ---------------------------------------------------------------------------- the adaptive softmax

ADAPTIVE = [(cell, cutoffs) for cell in ("rnn", "gru", "lstm") for cutoffs in ([6], [5, 11])]
ADAPTIVE_IDS = [f"{c}-{len(k)}cluster" for c, k in ADAPTIVE]


def adaptive_cfg(cell, cutoffs) -> ModelConfig:
    return cfg(cell, "tanh", False, softmax="adaptive", cutoffs=cutoffs, div_value=2.0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cell,cutoffs", ADAPTIVE, ids=ADAPTIVE_IDS)
def test_adaptive_forward_logprobs_and_gradients(cell, cutoffs, dtype):
    npm, tm = pair(adaptive_cfg(cell, cutoffs), dtype)
    tol = TOL[dtype]
    x, y, mask = data()
    la, lossa, na, sa = npm.forward(x, y, mask)
    lb, lossb, nb, sb = tm.forward(x, y, mask)
    np.testing.assert_allclose(la, lb, **tol)  # log-probabilities (T, B, K)
    assert na == nb and lossa == pytest.approx(lossb, rel=tol["rtol"])
    pa, _ = npm.token_logprobs(x, y, mask=mask > 0)
    pb, _ = tm.token_logprobs(x, y, mask=mask > 0)
    np.testing.assert_allclose(pa, pb, **tol)
    np.testing.assert_allclose(pa, np.take_along_axis(la, y[..., None], -1)[..., 0] * (mask > 0), **tol)
    qa, _ = npm.step_logprobs(x[0], sa)
    qb, _ = tm.step_logprobs(x[0], sb)
    np.testing.assert_allclose(qa, qb, **tol)
    state = [tuple(a + 0.1 for a in s) if cell == "lstm" else s + 0.1 for s in npm.init_hidden(4)]
    lossa, na, ga, sa = npm.forward_backward(x, y, mask, state)
    lossb, nb, gb, sb = tm.forward_backward(x, y, mask, state)
    assert na == nb and lossa == pytest.approx(lossb, rel=tol["rtol"])
    assert_grads_close(ga, gb, tol["rtol"])
    assert_state_close(sa, sb, tol)


@pytest.mark.parametrize("opt,lr,wd", [("sgd", 0.5, 0.0), ("sgd", 0.3, 0.01), ("rmsprop", 0.01, 0.0),
                                       ("adam", 0.01, 0.0), ("adam", 0.02, 0.01)])
@pytest.mark.parametrize("cell,cutoffs", ADAPTIVE[1::2], ids=ADAPTIVE_IDS[1::2])
def test_adaptive_trainer_steps_match(opt, lr, wd, cell, cutoffs):
    npm, tm = pair(adaptive_cfg(cell, cutoffs), np.float64, seed=2)
    tc = TrainConfig(optimizer=opt, lr=lr, weight_decay=wd, clip=0.5)
    ta, tb = numpy_engine.Trainer(npm, tc), torch_engine.Trainer(tm, tc)
    sa = sb = None
    for i in range(4):
        x, y, mask = data(T=5, B=3, seed=10 + i)
        if i == 1:
            y = y % cutoffs[-1]  # no target in the last cluster: its tensors get no gradient this step
        la, na, sa = ta.step(x, y, mask, sa)
        lb, nb, sb = tb.step(x, y, mask, sb)
        assert na == nb and la == pytest.approx(lb, rel=1e-10)
    wa, wb = npm.state_dict(), tm.state_dict()
    for k in wa:
        np.testing.assert_allclose(wa[k], wb[k], rtol=1e-9, atol=1e-12, err_msg=k)
    assert_state_close(sa, sb, TOL[np.float64])
