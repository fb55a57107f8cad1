"""Tests of rnnkit.torch_engine on its own: names, forward contract, gradients, Trainer.

Parity with the numpy engine lives in test_parity.py, distributed training in test_ddp.py.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rnnkit.config import ModelConfig, TrainConfig
from rnnkit.errors import ConfigError, NonFiniteError
from rnnkit.params import init_params, param_shapes
from rnnkit.torch_engine import RNNLM, LMModule, Trainer

CELLS = [("rnn", "tanh"), ("rnn", "relu"), ("gru", "tanh"), ("lstm", "tanh")]
K, H = 13, 6


def cfg(cell="lstm", nl="tanh", tie=False, layers=2, **kw) -> ModelConfig:
    return ModelConfig(vocab_size=K, cell=cell, nonlinearity=nl, embed_dim=H, hidden_dim=H,
                       num_layers=layers, tie_weights=tie, **kw)


def batch(T=5, B=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, K, (T, B))
    y = rng.integers(0, K, (T, B))
    mask = (rng.random((T, B)) > 0.3).astype(np.float32)
    return x, y, mask


@pytest.mark.parametrize("cell,nl", CELLS)
@pytest.mark.parametrize("tie", [False, True])
def test_names_and_shapes_match_params(cell, nl, tie):
    c = cfg(cell, nl, tie)
    m = RNNLM(c)
    shapes = param_shapes(c)
    sd = m.state_dict()
    assert list(sd) == list(shapes)
    assert {k: v.shape for k, v in sd.items()} == shapes
    assert all(v.dtype == np.float32 for v in sd.values())
    assert ("decoder.weight" in sd) == (not tie)
    if tie:
        assert m.module.decoder.weight is m.module.embedding.weight
    assert m.num_parameters() == sum(int(np.prod(s)) for s in shapes.values())
    # same seed -> the shared initial weights
    ref = init_params(c, 3, np.float32)
    m3 = RNNLM(c, seed=3).state_dict()
    assert all(np.array_equal(m3[k], ref[k]) for k in ref)
    assert isinstance(m.module, LMModule)
    assert isinstance(m.module.embedding, torch.nn.Embedding)
    assert isinstance(m.module.decoder, torch.nn.Linear)


def test_float64_export_keeps_dtype():
    m = RNNLM(cfg(), dtype=torch.float64)
    assert all(v.dtype == np.float64 for v in m.state_dict().values())
    with pytest.raises(ConfigError, match="dtype"):
        RNNLM(cfg(), dtype=np.float16)


@pytest.mark.parametrize("cell,nl", CELLS)
def test_forward_contract(cell, nl):
    m = RNNLM(cfg(cell, nl), dtype=np.float64)
    x, y, mask = batch()
    logits, loss, n, state = m.forward(x, y, mask)
    assert logits.shape == (5, 3, K) and isinstance(loss, float) and n == int(mask.sum())
    lp = logits - logits.max(-1, keepdims=True)
    lp = lp - np.log(np.exp(lp).sum(-1, keepdims=True))
    nll = -np.take_along_axis(lp, y[..., None], -1)[..., 0]
    assert loss == pytest.approx(float((nll * mask).sum()), rel=1e-12)
    _, loss_all, n_all, _ = m.forward(x, y)
    assert n_all == 15 and loss_all == pytest.approx(float(nll.sum()), rel=1e-12)
    assert len(state) == 2
    if cell == "lstm":
        assert all(len(s) == 2 and tuple(s[0].shape) == (3, H) for s in state)
    else:
        assert all(tuple(s.shape) == (3, H) for s in state)
    logp, _st2 = m.token_logprobs(x, y)
    assert logp.dtype == np.float64 and logp.shape == (5, 3)
    np.testing.assert_allclose(logp, -nll, rtol=1e-12)
    # carried state: two windows == one long window; numpy states are accepted too
    xx, yy, _ = batch(T=8, seed=1)
    whole = m.token_logprobs(xx, yy)[0]
    a, s = m.token_logprobs(xx[:3], yy[:3])
    s_np = [tuple(t.numpy() for t in p) if cell == "lstm" else p.numpy() for p in s]
    b, _ = m.token_logprobs(xx[3:], yy[3:], s_np)
    np.testing.assert_allclose(np.concatenate([a, b]), whole, rtol=1e-12)
    # step_logprobs walks the same path one token at a time
    st = m.init_hidden(3)
    for t in range(3):
        sl, st = m.step_logprobs(xx[t], st)
        assert sl.shape == (3, K)
        np.testing.assert_allclose(sl[np.arange(3), yy[t]], whole[t], rtol=1e-12)
    # reorder_hidden picks rows
    r = m.reorder_hidden(st, [2, 2, 0])
    first = (lambda p: p[0]) if cell == "lstm" else (lambda p: p)
    np.testing.assert_array_equal(first(r[0]).numpy(), first(st[0]).numpy()[[2, 2, 0]])


@pytest.mark.parametrize("cell,nl", CELLS)
@pytest.mark.parametrize("tie", [False, True])
def test_gradients_match_finite_differences(cell, nl, tie):
    c = cfg(cell, nl, tie)
    params = init_params(c, 1, np.float64)
    m = RNNLM(c, params, dtype=np.float64)
    x, y, mask = batch(T=4, B=2, seed=2)
    state = [tuple(np.full((2, H), 0.1 * (i + 1)) for _ in range(2)) if cell == "lstm"
             else np.full((2, H), 0.1 * (i + 1)) for i in range(2)]
    _loss, n, grads, _ = m.forward_backward(x, y, mask, state)
    assert n == int(mask.sum())
    rng = np.random.default_rng(0)
    eps = 1e-6
    for name, g in grads.items():
        assert g.shape == params[name].shape
        for _ in range(3):
            idx = tuple(int(rng.integers(0, s)) for s in g.shape)
            if name == "embedding.weight":  # pick a row that is used
                idx = (int(x[0, 0]),) + idx[1:]
            p2 = {k: v.copy() for k, v in params.items()}
            p2[name][idx] += eps
            m.load_state_dict(p2)
            lp = m.forward(x, y, mask, state)[1]
            p2[name][idx] -= 2 * eps
            m.load_state_dict(p2)
            lm = m.forward(x, y, mask, state)[1]
            fd = (lp - lm) / (2 * eps)
            assert g[idx] == pytest.approx(fd, rel=1e-5, abs=1e-7), (name, idx)
        m.load_state_dict(params)


def test_bptt_truncate_refused():
    m = RNNLM(cfg())
    x, y, _ = batch()
    with pytest.raises(ConfigError, match="bptt_truncate is only supported by the numpy engine"):
        m.forward_backward(x, y, bptt_truncate=3)
    with pytest.raises(ConfigError, match="bptt_truncate"):
        Trainer(m, TrainConfig(bptt_truncate=3))


def pattern_windows(B=4, T=10, n=400):
    ids = np.arange(n) % 7  # a cycle: perfectly predictable
    cols = ids[: (len(ids) - 1) // B * B + 1]
    L = (len(cols) - 1) // B
    xs = cols[:-1][: L * B].reshape(B, L).T
    ys = cols[1:][: L * B].reshape(B, L).T
    return [(xs[i:i + T], ys[i:i + T]) for i in range(0, L - T + 1, T)]


@pytest.mark.parametrize("opt,lr", [("sgd", 2.0), ("rmsprop", 0.01), ("adam", 0.02)])
def test_trainer_learns_a_pattern(opt, lr):
    m = RNNLM(ModelConfig(vocab_size=8, cell="gru", embed_dim=16, hidden_dim=16), seed=0)
    tr = Trainer(m, TrainConfig(optimizer=opt, lr=lr, clip=5.0))
    wins = pattern_windows()
    first = last = None
    state = None
    for _ in range(6):
        for x, y in wins:
            loss, n, state = tr.step(x, y, None, state)
            first = loss / n if first is None else first
            last = loss / n
    assert tr.steps == 6 * len(wins)
    assert last < 0.25 * first, (first, last)
    assert not any(t.requires_grad for t in state)


def test_lr_settable_and_sentence_reduction():
    m = RNNLM(cfg(), dtype=np.float64)
    tr = Trainer(m, TrainConfig(optimizer="sgd", lr=0.1, clip=0, loss_reduction="sentence"))
    tr.lr = 0.5
    assert tr.lr == 0.5
    x, y, mask = batch()
    before = m.state_dict()
    _, _, grads, _ = m.forward_backward(x, y, mask)
    tr.step(x, y, mask)
    after = m.state_dict()
    for k in before:  # sentence: gradient / B (B = 3)
        np.testing.assert_allclose(after[k], before[k] - 0.5 * grads[k] / 3, rtol=1e-12, atol=1e-15)


def test_weight_decay_and_clip():
    m = RNNLM(cfg(), dtype=np.float64)
    tr = Trainer(m, TrainConfig(optimizer="sgd", lr=0.1, clip=0.01, weight_decay=0.1))
    x, y, mask = batch()
    before = m.state_dict()
    _, n, grads, _ = m.forward_backward(x, y, mask)
    g = {k: grads[k] / n + 0.1 * before[k] for k in grads}
    norm = np.sqrt(sum((v ** 2).sum() for v in g.values()))
    assert norm > 0.01
    tr.step(x, y, mask)
    after = m.state_dict()
    for k in before:
        np.testing.assert_allclose(after[k], before[k] - 0.1 * g[k] * 0.01 / norm, rtol=1e-10,
                                   atol=1e-15)


def test_nonfinite_leaves_weights_unchanged():
    m = RNNLM(cfg(), dtype=np.float64)
    tr = Trainer(m, TrainConfig(optimizer="adam", lr=0.1))
    x, y, mask = batch()
    tr.step(x, y, mask)
    before = m.state_dict()
    opt_before = tr.state_dict()
    bad = dict(before)
    bad["rnn.weight_hh_l1"] = before["rnn.weight_hh_l1"].copy()
    bad["rnn.weight_hh_l1"][0, 0] = np.inf
    m.load_state_dict(bad)
    with pytest.raises(NonFiniteError, match="step 2"):
        tr.step(x, y, mask)
    after = m.state_dict()
    assert all(np.array_equal(after[k], bad[k]) for k in bad)
    assert tr.steps == 1
    # a non-finite gradient with a finite loss: named by parameter
    m.load_state_dict(before)
    h = m.module.decoder.bias.register_hook(lambda g: g * np.nan)
    with pytest.raises(NonFiniteError, match="step 2: gradient of decoder.bias"):
        tr.step(x, y, mask)
    h.remove()
    after = m.state_dict()
    assert all(np.array_equal(after[k], before[k]) for k in before)
    st = tr.state_dict()
    assert st.keys() == opt_before.keys() and all(np.array_equal(st[k], opt_before[k]) for k in st)


@pytest.mark.parametrize("opt", ["sgd", "rmsprop", "adam"])
def test_state_dict_round_trip_and_exact_continuation(opt):
    c = cfg("lstm", dropout=0.3, embed_dropout=0.2)
    tc = TrainConfig(optimizer=opt, lr=0.01, seed=7)
    m = RNNLM(c, seed=1)
    tr = Trainer(m, tc)
    wins = [batch(T=6, B=3, seed=s)[:2] for s in range(5)]
    state = None
    for x, y in wins[:3]:
        _, _, state = tr.step(x, y, None, state)
    saved_model, saved_tr = m.state_dict(), tr.state_dict()
    assert saved_tr["step"] == 3 and saved_tr["rng.torch_cpu"].dtype == np.uint8
    moments = {k.split(".")[1] for k in saved_tr if k.startswith("optimizer.")}
    assert moments == {"sgd": set(), "rmsprop": {"v"}, "adam": {"m", "v"}}[opt]
    saved_state = [tuple(t.numpy().copy() for t in p) for p in state]
    losses = []
    for x, y in wins[3:]:
        loss, _, state = tr.step(x, y, None, state)
        losses.append(loss)
    final = m.state_dict()

    m2 = RNNLM(c, saved_model)
    tr2 = Trainer(m2, tc)
    tr2.load_state_dict(saved_tr)
    state2 = saved_state
    losses2 = []
    for x, y in wins[3:]:
        loss, _, state2 = tr2.step(x, y, None, state2)
        losses2.append(loss)
    assert losses2 == losses  # bitwise on CPU
    final2 = m2.state_dict()
    assert all(np.array_equal(final[k], final2[k]) for k in final)
    assert tr2.state_dict()["step"] == 5


def test_cuda_and_amp_refused_on_cpu():
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ConfigError, match="CUDA is not available"):
        RNNLM(cfg(), device="cuda")
    m = RNNLM(cfg(), device="auto")
    assert m.device.type == "cpu"
    for amp in ("bf16", "fp16"):
        with pytest.raises(ConfigError, match="amp.*needs a CUDA device"):
            Trainer(m, TrainConfig(amp=amp))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("amp", ["off", "bf16", "fp16"])
def test_cuda_matches_cpu_and_trains(amp):
    c = cfg("lstm")
    params = init_params(c, 0, np.float32)
    x, y, mask = batch()
    cpu = RNNLM(c, params)
    gpu = RNNLM(c, params, device="cuda")
    np.testing.assert_allclose(gpu.forward(x, y, mask)[0], cpu.forward(x, y, mask)[0],
                               rtol=1e-4, atol=1e-5)
    tr = Trainer(gpu, TrainConfig(amp=amp, lr=0.01))
    first = tr.step(x, y, mask)[0]
    for _ in range(20):
        last = tr.step(x, y, mask)[0]
    assert last < first
    assert "rng.torch_cuda" in tr.state_dict()


def test_out_of_range_ids_refused():
    m = RNNLM(cfg())
    x, y, _ = batch()
    with pytest.raises(ValueError, match="x has token ids outside"):
        m.forward(x + K, y)
    with pytest.raises(ValueError, match="y has token ids outside"):
        m.forward(x, y - K)
