"""The fast numpy engine against its readable twin, the tutorial's RNNNumpy (numpy_engine/tutorial.py).

The twin runs one sentence at a time with the tutorial's U (H, K), V, W and biases b, c; the
engine runs a batch of sentences (one per column) with rnnkit's parameters. They must agree to
1e-10 in float64: forward (probabilities), loss, and gradients for bptt_truncate = 1..5 and
untruncated (0, and any k >= T - 1).

How gradients are compared: the twin's gradients are with respect to U = W_ih E^T, the
engine's with respect to W_ih and E. U is linear in each, so the chain rule is exact:
d W_ih = dLdU E and d E = dLdU^T W_ih (+ dLdV when tied) (`tutorial.param_gradients`); the
batch's gradient is the sum of the twin's per-sentence gradients. One test also uses E = the
identity (embed_dim = vocab_size), where U is W_ih itself and dLdU must equal d W_ih directly.

The twin's truncation is checked against the definition itself, independently of any BPTT
code: the gradient with bptt_truncate = k is the exact gradient of sum_t -ln o_t[y_t] where
output t is computed from the state s_{t-k-1} held constant (finite differences).
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import make_model_dir
from rnnkit import checkpoint
from rnnkit.config import ModelConfig
from rnnkit.errors import ConfigError
from rnnkit.numpy_engine import RNNLM
from rnnkit.numpy_engine.tutorial import (
    PARAMETERS,
    RNNNumpy,
    from_model_dir,
    from_params,
    param_gradients,
)
from rnnkit.params import init_params

TOL = 1e-10


def assert_close(a, b, what=""):
    """Agreement to TOL relative to the largest entry of b (entries near zero cannot be relative)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, what
    scale = max(1.0, float(np.abs(b).max()))
    assert float(np.abs(a - b).max()) <= TOL * scale, (what, float(np.abs(a - b).max()))


def engine_and_data(tmp_path, tie=False, T=7, B=3, seed=0):
    """A saved 1-layer tanh rnn directory (random, non-zero biases), the engine on it in float64,
    random ids (T, B) and a random initial state (B, H)."""
    path = make_model_dir(tmp_path / "model", cell="rnn", num_layers=1, tie=tie, seed=seed)
    ckpt = checkpoint.load(path)
    engine = RNNLM(ckpt.model, ckpt.params, dtype=np.float64)
    rng = np.random.default_rng(seed + 5)
    K, H = ckpt.model.vocab_size, ckpt.model.hidden_dim
    x, y = rng.integers(0, K, (T, B)), rng.integers(0, K, (T, B))
    s0 = rng.uniform(-0.5, 0.5, (B, H))
    return path, ckpt, engine, x, y, s0


def twin_gradients(twin, x, y, s0):
    """The twin's gradients for the batch: the sum over its columns, one sentence at a time."""
    per_sentence = [twin.bptt(x[:, b], y[:, b], None if s0 is None else s0[b]) for b in range(x.shape[1])]
    return tuple(sum(g) for g in zip(*per_sentence))


def twin_total_loss(twin, x, y, s0):
    """sum over columns and steps of -ln o_t[y_t], each column from its own initial state."""
    total = 0.0
    for b in range(x.shape[1]):
        o, _ = twin.forward_propagation(x[:, b], None if s0 is None else s0[b])
        total -= np.sum(np.log(o[np.arange(x.shape[0]), y[:, b]]))
    return total


def softmax_rows(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("tie", [False, True])
@pytest.mark.parametrize("carried", [False, True])
def test_forward_and_loss_agree(tmp_path, tie, carried):
    path, _ckpt, engine, x, y, s0 = engine_and_data(tmp_path, tie)
    s0 = s0 if carried else None
    twin = from_model_dir(path)
    T, B = x.shape
    logits, loss_sum, ntok, hidden = engine.forward(x, y, hidden=None if s0 is None else [s0])
    probs = softmax_rows(logits)  # (T, B, K)
    for b in range(B):
        o, s = twin.forward_propagation(x[:, b], None if s0 is None else s0[b])
        assert_close(o, probs[:, b], "o")
        assert_close(s[T - 1], hidden[0][b], "final state")
    assert loss_sum == pytest.approx(twin_total_loss(twin, x, y, s0), rel=TOL)
    if s0 is None:  # the tutorial's own loss functions start from the zero state
        sentences_x, sentences_y = list(x.T), list(y.T)
        assert twin.calculate_total_loss(sentences_x, sentences_y) == pytest.approx(loss_sum, rel=TOL)
        assert twin.calculate_loss(sentences_x, sentences_y) == pytest.approx(loss_sum / ntok, rel=TOL)
        assert list(twin.predict(x[:, 0])) == list(np.argmax(logits[:, 0], axis=1))


@pytest.mark.parametrize("tie", [False, True])
@pytest.mark.parametrize("k", [0, 1, 2, 3, 4, 5, 6, 50])
def test_truncated_bptt_gradients_agree(tmp_path, tie, k):
    """k = 1..5 truncate (T = 7); 0 (rnnkit's and the twin's 'off'), 6 = T-1 and 50 do not."""
    path, ckpt, engine, x, y, s0 = engine_and_data(tmp_path, tie)
    twin = from_model_dir(path, bptt_truncate=k)
    for start in (None, s0):
        loss, _, grads, _ = engine.forward_backward(x, y, hidden=None if start is None else [start],
                                                    bptt_truncate=k)
        assert loss == pytest.approx(twin_total_loss(twin, x, y, start), rel=TOL)
        expected = param_gradients(ckpt.model, ckpt.params, twin_gradients(twin, x, y, start))
        assert sorted(expected) == sorted(grads)
        for name in expected:
            assert_close(grads[name], expected[name], f"{name}, k={k}")


@pytest.mark.parametrize("k", [0, 1, 2, 3, 4, 5])
def test_identity_embedding_makes_dU_the_engines_weight_ih_gradient(k):
    """embed_dim = vocab_size and E = I: U is W_ih itself, so no chain rule is involved."""
    K, H, T, B = 7, 4, 7, 3
    cfg = ModelConfig(vocab_size=K, cell="rnn", nonlinearity="tanh", embed_dim=K, hidden_dim=H, num_layers=1)
    rng = np.random.default_rng(11)
    params = {name: rng.uniform(-0.6, 0.6, w.shape) for name, w in init_params(cfg, 0, np.float64).items()}
    params["embedding.weight"] = np.eye(K)
    engine = RNNLM(cfg, params, dtype=np.float64)
    twin = from_params(cfg, params, bptt_truncate=k)
    np.testing.assert_array_equal(twin.U, params["rnn.weight_ih_l0"])
    x, y = rng.integers(0, K, (T, B)), rng.integers(0, K, (T, B))
    _, _, grads, _ = engine.forward_backward(x, y, bptt_truncate=k)
    dLdU, dLdV, dLdW, dLdb, dLdc = twin_gradients(twin, x, y, None)
    assert_close(grads["rnn.weight_ih_l0"], dLdU, "dU")
    assert_close(grads["embedding.weight"], dLdU.T @ params["rnn.weight_ih_l0"], "dE")
    assert_close(grads["rnn.weight_hh_l0"], dLdW, "dW")
    assert_close(grads["decoder.weight"], dLdV, "dV")
    assert_close(grads["rnn.bias_ih_l0"], dLdb, "db")
    assert_close(grads["rnn.bias_hh_l0"], dLdb, "db")
    assert_close(grads["decoder.bias"], dLdc, "dc")


def small_twin(bptt_truncate=0, seed=3, K=6, H=4):
    """A fresh twin with non-zero biases (the tutorial's have none; these must be checked too)."""
    twin = RNNNumpy(K, H, bptt_truncate, seed=seed)
    rng = np.random.default_rng(seed + 1)
    twin.b, twin.c = rng.uniform(-0.5, 0.5, H), rng.uniform(-0.5, 0.5, K)
    twin.W = rng.uniform(-1.0, 1.0, (H, H))  # larger than the init, so earlier steps matter more
    return twin


def truncated_loss(twin, x, y, frozen, k):
    """sum_t -ln o_t[y_t], output t computed through steps max(0, t-k) .. t only, from the
    state before them taken from `frozen` (states computed once, at the unperturbed weights:
    held constant). No BPTT involved."""
    total = 0.0
    for t in range(len(x)):
        first = max(0, t - k) if k > 0 else 0
        o, _ = twin.forward_propagation(x[first:t + 1], frozen[first - 1])  # frozen[-1] is s0
        total -= np.log(o[-1][y[t]])
    return total


@pytest.mark.parametrize("k", [1, 2, 3, 0])
def test_twin_truncation_is_the_definition(k):
    """bptt with bptt_truncate = k is the gradient of the loss whose output t sees the weights
    only through steps t-k .. t (centred 4-point differences, h = 1e-4, agree to 1e-8)."""
    twin = small_twin(k)
    x, y = np.array([0, 3, 2, 5, 1, 4]), np.array([3, 2, 5, 1, 4, 0])
    s0 = np.array([0.3, -0.2, 0.1, 0.4])
    analytic = dict(zip(PARAMETERS, twin.bptt(x, y, s0)))
    _, frozen = twin.forward_propagation(x, s0)  # (T+1, H), frozen[-1] = s0
    h = 1e-4
    for name in PARAMETERS:
        w = getattr(twin, name)
        for ix in np.ndindex(w.shape):
            w0, vals = w[ix], []
            for d in (2, 1, -1, -2):
                w[ix] = w0 + d * h
                vals.append(truncated_loss(twin, x, y, frozen, k))
            w[ix] = w0
            numeric = (-vals[0] + 8 * vals[1] - 8 * vals[2] + vals[3]) / (12 * h)
            assert abs(numeric - analytic[name][ix]) < 1e-8 * max(1.0, abs(numeric)), (name, ix, k)


def test_each_truncation_gives_different_gradients():
    """For T = 7 the gradients of k = 1..5 all differ from each other and from untruncated
    (so the agreement tests above tell the truncations apart); k >= T-1 is untruncated."""
    x, y = np.array([0, 3, 2, 5, 1, 4, 2]), np.array([3, 2, 5, 1, 4, 2, 0])
    grads = {}
    for k in (0, 1, 2, 3, 4, 5, 6, 9):  # all five gradients in one vector
        grads[k] = np.concatenate([g.ravel() for g in small_twin(k).bptt(x, y)])
    for k in (1, 2, 3, 4, 5):
        for other in (0, 1, 2, 3, 4, 5):
            if other != k:
                assert np.abs(grads[k] - grads[other]).max() > 1e-6, (k, other)
    np.testing.assert_array_equal(grads[6], grads[0])
    np.testing.assert_array_equal(grads[9], grads[0])


def test_gradient_check_passes_and_catches_a_wrong_bptt(monkeypatch):
    twin = small_twin(bptt_truncate=2)
    x, y = [0, 3, 2, 5, 1], [3, 2, 5, 1, 4]
    before = {name: getattr(twin, name).copy() for name in PARAMETERS}
    worst = twin.gradient_check(x, y)  # untruncated inside, so truncation 2 does not matter
    assert set(worst) == set(PARAMETERS) and max(worst.values()) < 1e-3
    assert twin.bptt_truncate == 2
    for name in PARAMETERS:
        np.testing.assert_array_equal(getattr(twin, name), before[name])
    right = RNNNumpy.bptt

    def wrong(self, x, y, s0=None):  # W's gradient transposed: a classic mistake
        dLdU, dLdV, dLdW, dLdb, dLdc = right(self, x, y, s0)
        return dLdU, dLdV, dLdW.T, dLdb, dLdc

    monkeypatch.setattr(RNNNumpy, "bptt", wrong)
    with pytest.raises(ValueError, match="gradient check failed for W"):
        twin.gradient_check(x, y)


def test_sgd_step_moves_against_the_gradient_and_lowers_the_loss():
    twin = small_twin(bptt_truncate=0)
    x, y = [0, 3, 2, 5, 1], [3, 2, 5, 1, 4]
    grads = twin.bptt(x, y)
    before = {name: getattr(twin, name).copy() for name in PARAMETERS}
    loss = twin.calculate_total_loss([x], [y])
    twin.sgd_step(x, y, 0.01)
    for name, g in zip(PARAMETERS, grads):
        np.testing.assert_allclose(getattr(twin, name), before[name] - 0.01 * g, rtol=0, atol=1e-15)
    assert twin.calculate_total_loss([x], [y]) < loss


def test_fresh_twin_is_the_tutorials_model():
    """Zero biases, weights within +-1/sqrt(fan-in), and an untrained loss near ln(K)."""
    K, H = 2000, 20
    twin = RNNNumpy(K, H)
    assert twin.bptt_truncate == 4  # the tutorial's default
    assert twin.U.shape == (H, K) and twin.V.shape == (K, H) and twin.W.shape == (H, H)
    assert not twin.b.any() and not twin.c.any()
    assert np.abs(twin.U).max() <= 1 / np.sqrt(K) and np.abs(twin.V).max() <= 1 / np.sqrt(H)
    assert np.abs(twin.W).max() <= 1 / np.sqrt(H)
    rng = np.random.default_rng(0)
    xs = [rng.integers(0, K, 10) for _ in range(20)]
    ys = [rng.integers(0, K, 10) for _ in range(20)]
    assert twin.calculate_loss(xs, ys) == pytest.approx(np.log(K), abs=0.02)
    o, s = twin.forward_propagation(xs[0])
    assert o.shape == (10, K) and s.shape == (11, H) and not s[-1].any()
    np.testing.assert_allclose(o.sum(axis=1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("kw", [{"cell": "lstm"}, {"cell": "gru"}, {"num_layers": 2}])
def test_from_model_dir_refuses_models_the_tutorial_has_not(tmp_path, kw):
    path = make_model_dir(tmp_path / "m", **{"cell": "rnn", "num_layers": 1, **kw})
    with pytest.raises(ConfigError, match="1-layer tanh rnn"):
        from_model_dir(path)


def test_from_params_refuses_relu_and_adaptive():
    for kw in ({"nonlinearity": "relu"}, {"softmax": "adaptive", "cutoffs": [3]}):
        cfg = ModelConfig(vocab_size=7, cell="rnn", embed_dim=4, hidden_dim=4, num_layers=1, **kw)
        with pytest.raises(ConfigError, match="1-layer tanh rnn"):
            from_params(cfg, init_params(cfg, 0, np.float64))
