"""The numpy engine against an independent, deliberately naive reference written here.

The tutorial's own model, a 1-layer tanh RNN, is checked against the readable twin
(numpy_engine/tutorial.py, tests/test_tutorial_twin.py). The reference here extends the twin's
loop to what the twin does not have: relu, GRU and LSTM cells, stacks of layers, tied weights
with a separate embedding. It runs one example at a time and one time step at a time on 1-D
vectors, with its own cell equations (logistic written as 1 / (1 + exp(-a)), np.outer for
weight gradients), and back-propagates with the twin's nested loop, the definition of
truncated BPTT: the error of the output at time t flows back through steps t, t-1, ...,
max(0, t-k) and no further (k = 0: all the way to step 0). With several layers the error at
each of those steps goes down the whole stack. On the 1-layer tanh RNN it must give the twin's
numbers (test_naive_reference_is_the_twin_on_the_tutorials_model), so the two references share
one definition of truncation.
"""

import numpy as np
import pytest

from rnnkit.config import ModelConfig
from rnnkit.numpy_engine import RNNLM
from rnnkit.numpy_engine.tutorial import from_params, param_gradients
from rnnkit.params import init_params


def sig(a):
    return 1.0 / (1.0 + np.exp(-a))


def cell_forward(cfg, p, n, x, h, c):
    W_ih, W_hh = p[f"rnn.weight_ih_l{n}"], p[f"rnn.weight_hh_l{n}"]
    b_ih, b_hh = p[f"rnn.bias_ih_l{n}"], p[f"rnn.bias_hh_l{n}"]
    H = cfg.hidden_dim
    gi, gh = W_ih @ x + b_ih, W_hh @ h + b_hh
    if cfg.cell == "rnn":
        a = gi + gh
        h2 = np.tanh(a) if cfg.nonlinearity == "tanh" else np.where(a > 0, a, 0.0)
        return h2, None, {"x": x, "h": h, "a": a, "h2": h2}
    if cfg.cell == "gru":
        r = sig(gi[:H] + gh[:H])
        z = sig(gi[H:2 * H] + gh[H:2 * H])
        nn = np.tanh(gi[2 * H:] + r * gh[2 * H:])
        h2 = (1 - z) * nn + z * h
        return h2, None, {"x": x, "h": h, "r": r, "z": z, "n": nn, "ghn": gh[2 * H:]}
    a = gi + gh
    i, f, g, o = sig(a[:H]), sig(a[H:2 * H]), np.tanh(a[2 * H:3 * H]), sig(a[3 * H:])
    c2 = f * c + i * g
    h2 = o * np.tanh(c2)
    return h2, c2, {"x": x, "h": h, "c": c, "i": i, "f": f, "g": g, "o": o, "c2": c2}


def cell_backward(cfg, p, n, dh, dc, k, grads):
    """Backward of one step from its cache k; adds weight gradients; returns dx, dh_prev, dc_prev."""
    W_ih, W_hh = p[f"rnn.weight_ih_l{n}"], p[f"rnn.weight_hh_l{n}"]
    dc_prev = None
    if cfg.cell == "rnn":
        da = dh * (1 - k["h2"] ** 2) if cfg.nonlinearity == "tanh" else dh * (k["a"] > 0)
        dgi = dgh = da
        dh_direct = 0.0
    elif cfg.cell == "gru":
        r, z, nn = k["r"], k["z"], k["n"]
        dnn = dh * (1 - z) * (1 - nn ** 2)
        dz = dh * (k["h"] - nn) * z * (1 - z)
        dr = dnn * k["ghn"] * r * (1 - r)
        dgi = np.concatenate([dr, dz, dnn])
        dgh = np.concatenate([dr, dz, dnn * r])
        dh_direct = dh * z
    else:
        i, f, g, o, c2 = k["i"], k["f"], k["g"], k["o"], k["c2"]
        tc = np.tanh(c2)
        dc_total = dc + dh * o * (1 - tc ** 2)
        dgi = dgh = np.concatenate([dc_total * g * i * (1 - i), dc_total * k["c"] * f * (1 - f),
                                    dc_total * i * (1 - g ** 2), dh * tc * o * (1 - o)])
        dc_prev = dc_total * f
        dh_direct = 0.0
    grads[f"rnn.weight_ih_l{n}"] += np.outer(dgi, k["x"])
    grads[f"rnn.bias_ih_l{n}"] += dgi
    grads[f"rnn.weight_hh_l{n}"] += np.outer(dgh, k["h"])
    grads[f"rnn.bias_hh_l{n}"] += dgh
    return W_ih.T @ dgi, W_hh.T @ dgh + dh_direct, dc_prev


def naive_forward_backward(cfg, p, x, y, mask, state, k=0):
    T, B = x.shape
    L, H, K = cfg.num_layers, cfg.hidden_dim, cfg.vocab_size
    E = p["embedding.weight"]
    Wd = p.get("decoder.weight", E)
    grads = {name: np.zeros_like(v) for name, v in p.items()}
    dWd = np.zeros_like(Wd)
    logits = np.zeros((T, B, K))
    loss = 0.0
    lstm = cfg.cell == "lstm"
    for b in range(B):
        h = [(state[n][0][b] if lstm else state[n][b]) for n in range(L)]
        c = [(state[n][1][b] if lstm else None) for n in range(L)]
        caches = [[None] * T for _ in range(L)]
        tops, deltas = [], []
        for t in range(T):  # forward, one step at a time
            inp = E[x[t, b]]
            for n in range(L):
                h[n], c[n], caches[n][t] = cell_forward(cfg, p, n, inp, h[n], c[n])
                inp = h[n]
            o = Wd @ inp + p["decoder.bias"]
            logits[t, b] = o
            prob = np.exp(o - o.max())
            prob /= prob.sum()
            loss -= mask[t, b] * np.log(prob[y[t, b]])
            delta = prob.copy()
            delta[y[t, b]] -= 1
            tops.append(inp)
            deltas.append(mask[t, b] * delta)
        for t in reversed(range(T)):  # the tutorial's BPTT: each output's error separately
            dWd += np.outer(deltas[t], tops[t])
            grads["decoder.bias"] += deltas[t]
            d_top = Wd.T @ deltas[t]
            carry_h = [np.zeros(H) for _ in range(L)]
            carry_c = [np.zeros(H) for _ in range(L)]
            lo = max(0, t - k) if k > 0 else 0
            for s in reversed(range(lo, t + 1)):
                d_above = d_top if s == t else np.zeros(H)
                for n in reversed(range(L)):
                    d_above, carry_h[n], carry_c[n] = cell_backward(
                        cfg, p, n, d_above + carry_h[n], carry_c[n], caches[n][s], grads)
                grads["embedding.weight"][x[s, b]] += d_above
    if "decoder.weight" in p:
        grads["decoder.weight"] += dWd
    else:
        grads["embedding.weight"] += dWd
    return logits, loss, grads


def problem(cell, layers=1, nonlinearity="tanh", tie=False, T=5, B=3, seed=0):
    cfg = ModelConfig(vocab_size=7, cell=cell, nonlinearity=nonlinearity, embed_dim=4 if tie else 5,
                      hidden_dim=4, num_layers=layers, tie_weights=tie)
    p = init_params(cfg, seed, np.float64)
    rng = np.random.default_rng(seed + 10)
    p["decoder.bias"] = rng.uniform(-0.1, 0.1, 7)
    x, y = rng.integers(0, 7, (T, B)), rng.integers(0, 7, (T, B))
    mask = (rng.random((T, B)) > 0.3).astype(float)
    mask[-1, 0] = 0.0
    model = RNNLM(cfg, p, dtype=np.float64)
    st = model.init_hidden(B)
    if cell == "lstm":
        st = [(rng.uniform(-0.5, 0.5, (B, 4)), rng.uniform(-0.5, 0.5, (B, 4))) for _ in st]
    else:
        st = [rng.uniform(-0.5, 0.5, (B, 4)) for _ in st]
    return cfg, p, model, x, y, mask, st


def assert_grads_close(g, ref, rtol=1e-10):
    assert list(g) == list(ref)
    for name in ref:
        np.testing.assert_allclose(g[name], ref[name], rtol=rtol, atol=1e-13, err_msg=name)


# the 1-layer tanh rnn (untied) is test_tutorial_twin.py's
CASES = [("rnn", 1, "relu", False), ("rnn", 2, "relu", False), ("gru", 1, "tanh", True),
         ("gru", 2, "tanh", False), ("lstm", 1, "tanh", False), ("lstm", 2, "tanh", True)]


@pytest.mark.parametrize("cell,layers,nl,tie", CASES)
def test_batched_equals_naive_loop(cell, layers, nl, tie):
    cfg, p, model, x, y, mask, st = problem(cell, layers, nl, tie)
    ref_logits, ref_loss, ref_grads = naive_forward_backward(cfg, p, x, y, mask, st)
    logits, loss, ntok, _ = model.forward(x, y, mask, st)
    np.testing.assert_allclose(logits, ref_logits, rtol=1e-10, atol=1e-14)
    assert loss == pytest.approx(ref_loss, rel=1e-10)
    assert ntok == int(mask.sum())
    loss2, ntok2, grads, _ = model.forward_backward(x, y, mask, st)
    assert loss2 == pytest.approx(ref_loss, rel=1e-10) and ntok2 == ntok
    assert_grads_close(grads, ref_grads)


@pytest.mark.parametrize("cell,layers", [("rnn", 2), ("gru", 1), ("lstm", 1), ("lstm", 2)])
@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_truncated_bptt_equals_tutorial_loop(cell, layers, k):
    cfg, p, model, x, y, mask, st = problem(cell, layers, T=7)
    _, ref_loss, ref_grads = naive_forward_backward(cfg, p, x, y, mask, st, k=k)
    loss, _, grads, _ = model.forward_backward(x, y, mask, st, bptt_truncate=k)
    assert loss == pytest.approx(ref_loss, rel=1e-10)
    assert_grads_close(grads, ref_grads)
    # and truncation really changes something for these sizes
    _, _, full, _ = model.forward_backward(x, y, mask, st)
    assert not np.allclose(full["rnn.weight_hh_l0"], grads["rnn.weight_hh_l0"])


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_truncation_reaching_the_start_is_full_bptt(cell):
    _cfg, _p, model, x, y, mask, st = problem(cell, 2, T=5)
    _, _, full, _ = model.forward_backward(x, y, mask, st)
    for k in (4, 5, 50):  # k >= T - 1: every output reaches step 0
        _, _, g, _ = model.forward_backward(x, y, mask, st, bptt_truncate=k)
        assert_grads_close(g, full, rtol=1e-12)


@pytest.mark.parametrize("k", [0, 1, 2, 3, 5])
def test_naive_reference_is_the_twin_on_the_tutorials_model(k):
    """Where both apply (1 layer, tanh, untied) the naive reference and the tutorial's twin give
    the same loss and gradients, truncated or not (the twin's per sentence, summed; all-ones mask)."""
    cfg, p, _model, x, y, _mask, st = problem("rnn", 1, T=7)
    ones = np.ones(x.shape)
    _, ref_loss, ref_grads = naive_forward_backward(cfg, p, x, y, ones, st, k=k)
    twin = from_params(cfg, p, bptt_truncate=k)
    per_sentence = [twin.bptt(x[:, b], y[:, b], st[0][b]) for b in range(x.shape[1])]
    twin_grads = param_gradients(cfg, p, tuple(sum(g) for g in zip(*per_sentence)))
    twin_loss = 0.0
    for b in range(x.shape[1]):
        o, _ = twin.forward_propagation(x[:, b], st[0][b])
        twin_loss -= np.log(o[np.arange(x.shape[0]), y[:, b]]).sum()
    assert twin_loss == pytest.approx(ref_loss, rel=1e-10)
    assert sorted(twin_grads) == sorted(ref_grads)
    for name in ref_grads:
        np.testing.assert_allclose(twin_grads[name], ref_grads[name], rtol=1e-10, atol=1e-12, err_msg=name)
