"""Dropout: where it is applied, at what rate and scale, the same in both engines; none when scoring.

The config promises three places and no others (docs/contracts.md, rnnkit.config):

    embedding output          embed_dropout
    between stacked layers    dropout
    last layer's output       dropout   (the decoder's input)

all inverted (kept units scaled by 1 / (1 - p)), drawn only inside Trainer.step. The tests
watch each place through what Trainer.step itself runs, using nothing of the engine but its
public contract: a 2-layer tanh RNN in float64 with D < H, one time step (T = 1) and a known
non-zero initial state, plain SGD with lr 1, no clipping, no weight decay. Then

    h0 = tanh(W_ih0 e' + b_ih0 + W_hh0 s0 + b_hh0)    e'  = the dropped embedding row
    h1 = tanh(W_ih1 x1 + b_ih1 + W_hh1 s1 + b_hh1)    x1  = the dropped h0
    logits = V d + c                                  d   = the dropped h1

h0 and h1 are the final state Trainer.step returns; e' comes back from h0 by least squares
(W_ih0 has full column rank, and a zero residual also shows the recurrent input was not
dropped), x1 from h1 by solving with W_ih1. d comes from the update: with batch 1 and SGD at
lr 1 the change of the decoder is its gradient, (softmax - onehot(y)) d^T for the weight and
softmax - onehot(y) for the bias.
"""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit.config import ModelConfig, TrainConfig
from rnnkit.engines import get_engine


def _has_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


ENGINES = ["numpy", pytest.param("torch", marks=pytest.mark.skipif(not _has_torch(), reason="torch not installed"))]
K, D, H = 10, 3, 6
TOK, TARGET = 4, 7  # the input token whose embedding is watched, and the target


def make_params(seed: int = 0) -> dict[str, np.ndarray]:
    """float64 weights chosen here (not by rnnkit.params): moderate pre-activations, so tanh
    is well away from saturation and atanh recovers them to ~1e-14; embedding entries are
    all clearly non-zero (|e| >= 0.3) so "dropped" and "kept" never look alike."""
    rng = np.random.default_rng(seed)
    emb = rng.uniform(0.3, 0.8, (K, D)) * rng.choice([-1.0, 1.0], (K, D))
    p = {"embedding.weight": emb}
    for n, din in ((0, D), (1, H)):
        p[f"rnn.weight_ih_l{n}"] = rng.normal(0, 0.35, (H, din))
        p[f"rnn.weight_hh_l{n}"] = rng.normal(0, 0.25, (H, H))
        p[f"rnn.bias_ih_l{n}"] = rng.normal(0, 0.1, H)
        p[f"rnn.bias_hh_l{n}"] = rng.normal(0, 0.1, H)
    p["decoder.weight"] = rng.normal(0, 0.5, (K, H))
    p["decoder.bias"] = rng.normal(0, 0.1, K)
    return p


def model_config(embed_p: float, p: float) -> ModelConfig:
    return ModelConfig(vocab_size=K, cell="rnn", nonlinearity="tanh", embed_dim=D, hidden_dim=H, num_layers=2,
                       dropout=p, embed_dropout=embed_p)


def build(engine: str, embed_p: float, p: float, params: dict, seed: int = 11, lr: float = 1.0):
    eng = get_engine(engine)
    kw = {"device": "cpu"} if engine == "torch" else {}
    lm = eng.RNNLM(model_config(embed_p, p), params, dtype=np.float64, **kw)
    tr = eng.Trainer(lm, TrainConfig(optimizer="sgd", lr=lr, clip=0.0, weight_decay=0.0, seed=seed))
    return lm, tr


def as_np(a) -> np.ndarray:
    return a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)


def classify(observed: np.ndarray, base: np.ndarray, p: float, where: str) -> np.ndarray:
    """Every entry must be exactly 0 (dropped) or base / (1 - p) (kept, rescaled); returns the
    dropped flags of the entries whose base is clearly non-zero."""
    scale = 1.0 / (1.0 - p)
    tol = 1e-8
    kept = np.abs(observed - base * scale) <= tol * (1.0 + np.abs(base))
    dropped = np.abs(observed) <= tol
    bad = ~(kept | dropped)
    if bad.any():
        i = np.argwhere(bad)[0]
        ratio = observed[tuple(i)] / base[tuple(i)]
        raise AssertionError(f"{where}: entry {tuple(i)} is {observed[tuple(i)]!r}, neither 0 nor "
                             f"base x 1/(1-{p}) = {base[tuple(i)] * scale!r} (observed / base = {ratio:.6f}, "
                             f"expected {scale:.6f}); {int(bad.sum())} of {bad.size} entries off")
    clear = np.abs(base) > 1e-3
    if p == 0:
        assert not dropped[clear].any(), f"{where}: units dropped although its rate is 0"
    return dropped[clear]


def check_rate(dropped: np.ndarray, p: float, where: str) -> None:
    n = dropped.size
    frac = float(dropped.mean())
    tol = 5 * np.sqrt(max(p * (1 - p), 0.01) / n)  # five standard deviations of a binomial fraction
    assert abs(frac - p) <= tol, f"{where}: {frac:.3f} of {n} units dropped, expected {p} +- {tol:.3f}"


def check_expectation(observed: np.ndarray, base: np.ndarray, p: float, where: str) -> None:
    """Inverted dropout keeps the expectation: the mean of observed / base over masks is 1."""
    clear = np.abs(base) > 1e-3
    r = (observed[clear] / base[clear]).mean()
    tol = 5 * np.sqrt(p / (1 - p) / clear.sum()) + 1e-9
    assert abs(r - 1) <= tol, f"{where}: mean of dropped / undropped is {r:.4f}, expected 1 +- {tol:.4f}"


def recover_inputs(params: dict, s0: np.ndarray, s1: np.ndarray, h0: np.ndarray, h1: np.ndarray):
    """(e', x1) per row: the input layer 0 saw (least squares) and the input layer 1 saw."""
    rhs0 = np.arctanh(h0) - s0 @ params["rnn.weight_hh_l0"].T - params["rnn.bias_hh_l0"] - params["rnn.bias_ih_l0"]
    W0 = params["rnn.weight_ih_l0"]  # (H, D), H > D
    e_drop, *_ = np.linalg.lstsq(W0, rhs0.T, rcond=None)
    e_drop = e_drop.T
    resid = np.abs(e_drop @ W0.T - rhs0).max()
    # not in W_ih0's column space: the recurrent input or something else was perturbed too
    assert resid < 1e-9, f"layer 0's pre-activation is not W_ih0 e' + W_hh0 s0 + b (residual {resid:.2e})"
    rhs1 = np.arctanh(h1) - s1 @ params["rnn.weight_hh_l1"].T - params["rnn.bias_hh_l1"] - params["rnn.bias_ih_l1"]
    x1 = np.linalg.solve(params["rnn.weight_ih_l1"], rhs1.T).T
    return e_drop, x1


def observe_stack(engine: str, embed_p: float, p: float, rows: int = 2000, seed: int = 11):
    """One Trainer.step over `rows` rows of token TOK: (embedding row, e', h0, x1)."""
    params = make_params()
    _lm, tr = build(engine, embed_p, p, params, seed=seed)
    rng = np.random.default_rng(5)
    s0, s1 = rng.uniform(-0.5, 0.5, (rows, H)), rng.uniform(-0.5, 0.5, (rows, H))
    x = np.full((1, rows), TOK, dtype=np.int64)
    y = np.full((1, rows), TARGET, dtype=np.int64)
    _, n, state = tr.step(x, y, None, [s0.copy(), s1.copy()])
    assert n == rows
    h0, h1 = as_np(state[0]), as_np(state[1])
    assert np.abs(h0).max() < 0.995 and np.abs(h1).max() < 0.995  # atanh stays well conditioned
    e_drop, x1 = recover_inputs(params, s0, s1, h0, h1)
    e = np.broadcast_to(params["embedding.weight"][TOK], e_drop.shape)
    return e, e_drop, h0, x1


def observe_output(engine: str, embed_p: float, p: float, draws: int = 300, seed: int = 11):
    """`draws` Trainer.steps on one row (weights reset before each): (h1, d) per draw."""
    params = make_params()
    lm, tr = build(engine, embed_p, p, params, seed=seed)
    rng = np.random.default_rng(6)
    x = np.array([[TOK]], dtype=np.int64)
    y = np.array([[TARGET]], dtype=np.int64)
    h1s, ds = [], []
    for _ in range(draws):
        lm.load_state_dict(params)  # in place: the optimizer keeps its references
        state = [rng.uniform(-0.5, 0.5, (1, H)), rng.uniform(-0.5, 0.5, (1, H))]
        _, _, new_state = tr.step(x, y, None, state)
        after = lm.state_dict()
        gW = params["decoder.weight"] - after["decoder.weight"]  # lr 1: the gradient itself
        gb = params["decoder.bias"] - after["decoder.bias"]
        d = gW.T @ gb / (gb @ gb)
        assert np.abs(np.outer(gb, d) - gW).max() < 1e-10, "decoder gradient is not (softmax - onehot) d^T"
        assert gb[TARGET] < 0 and abs(gb.sum()) < 1e-10
        h1s.append(as_np(new_state[1])[0])
        ds.append(d)
    return np.array(h1s), np.array(ds)


# (embed_dropout, dropout): both on with different rates (a rate used at the wrong place shows),
# and each on alone (the other places must then be untouched)
RATES = [(0.2, 0.5), (0.3, 0.0), (0.0, 0.4)]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("embed_p,p", RATES)
def test_dropout_at_embedding_and_between_layers(engine, embed_p, p):
    e, e_drop, h0, x1 = observe_stack(engine, embed_p, p)
    dropped = classify(e_drop, e, embed_p, f"{engine}: embedding (embed_dropout {embed_p})")
    check_rate(dropped, embed_p, f"{engine}: embedding")
    if embed_p:
        check_expectation(e_drop, e, embed_p, f"{engine}: embedding")
        # masks differ from row to row: dropout is drawn per unit, not once per batch
        assert len({tuple(r) for r in (np.abs(e_drop) < 1e-8)}) > 4
    dropped = classify(x1, h0, p, f"{engine}: between layers 0 and 1 (dropout {p})")
    check_rate(dropped, p, f"{engine}: between layers")
    if p:
        check_expectation(x1, h0, p, f"{engine}: between layers")


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("embed_p,p", RATES)
def test_dropout_at_the_decoder_input(engine, embed_p, p):
    h1, d = observe_output(engine, embed_p, p)
    dropped = classify(d, h1, p, f"{engine}: decoder input (dropout {p})")
    check_rate(dropped, p, f"{engine}: decoder input")
    if p:
        check_expectation(d, h1, p, f"{engine}: decoder input")


def test_no_dropout_when_rates_are_zero_both_engines_agree_on_the_step():
    """Rates 0: nothing is dropped anywhere, and then both engines take the very same step."""
    params = make_params()
    engines = ["numpy"] + (["torch"] if _has_torch() else [])
    after = {}
    for engine in engines:
        e, e_drop, h0, x1 = observe_stack(engine, 0.0, 0.0, rows=50)
        np.testing.assert_allclose(e_drop, e, rtol=0, atol=1e-10)
        np.testing.assert_allclose(x1, h0, rtol=0, atol=1e-10)
        h1, d = observe_output(engine, 0.0, 0.0, draws=3)
        np.testing.assert_allclose(d, h1, rtol=0, atol=1e-10)
        lm, tr = build(engine, 0.0, 0.0, params, lr=0.1)
        x = np.array([[1, 4], [4, 2], [3, 3]])
        tr.step(x, np.roll(x, -1, axis=0), None, None)
        after[engine] = lm.state_dict()
    for engine in engines[1:]:
        for k in after["numpy"]:
            np.testing.assert_allclose(after[engine][k], after["numpy"][k], rtol=0, atol=1e-12, err_msg=k)


# ----------------------------------------------------------------- scoring runs without dropout
def reference_logits(params: dict, x: np.ndarray, state=None) -> np.ndarray:
    """The 2-layer tanh RNN + decoder, written out here: logits (T, B, K), no dropout."""
    T, B = x.shape
    h = [np.zeros((B, H)), np.zeros((B, H))] if state is None else [np.array(s) for s in state]
    out = np.empty((T, B, K))
    for t in range(T):
        inp = params["embedding.weight"][x[t]]
        for n in range(2):
            h[n] = np.tanh(inp @ params[f"rnn.weight_ih_l{n}"].T + params[f"rnn.bias_ih_l{n}"]
                           + h[n] @ params[f"rnn.weight_hh_l{n}"].T + params[f"rnn.bias_hh_l{n}"])
            inp = h[n]
        out[t] = inp @ params["decoder.weight"].T + params["decoder.bias"]
    return out


def reference_logprobs(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


SCORING = ["forward", "token_logprobs", "token_logprobs_masked", "step_logprobs", "forward_backward"]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("method", SCORING)
def test_scoring_right_after_a_training_step_is_dropout_free(engine, method):
    """Straight after a Trainer.step with heavy dropout (which leaves a torch module in train
    mode), each scoring call matches a dropout-free reference, twice over."""
    lm, tr = build(engine, 0.5, 0.5, make_params(), lr=0.05)
    rng = np.random.default_rng(3)
    x = rng.integers(0, K, (5, 4))
    y = rng.integers(0, K, (5, 4))
    mask = rng.random((5, 4)) > 0.3
    for _ in range(2):  # twice: dropout would give two different answers
        tr.step(x, y, None, None)
        params = lm.state_dict()
        ref = reference_logits(params, x)
        ref_lp = reference_logprobs(ref)
        ref_tok = np.take_along_axis(ref_lp, y[..., None], axis=-1)[..., 0]
        if method == "forward":
            logits, loss, n, _ = lm.forward(x, y)
            np.testing.assert_allclose(logits, ref, rtol=0, atol=1e-10)
            assert n == x.size and loss == pytest.approx(-ref_tok.sum(), rel=1e-10)
        elif method == "token_logprobs":
            logp, _ = lm.token_logprobs(x, y)
            np.testing.assert_allclose(logp, ref_tok, rtol=0, atol=1e-10)
        elif method == "token_logprobs_masked":  # as score.py calls it
            logp, _ = lm.token_logprobs(x, y, None, mask=mask)
            np.testing.assert_allclose(logp, np.where(mask, ref_tok, 0.0), rtol=0, atol=1e-10)
        elif method == "step_logprobs":  # as generation calls it
            step_lp, _ = lm.step_logprobs(x[0], None)
            np.testing.assert_allclose(step_lp, ref_lp[0], rtol=0, atol=1e-10)
        else:  # the contract: no dropout outside Trainer.step
            loss_fb, n_fb, _, _ = lm.forward_backward(x, y)
            assert n_fb == x.size and loss_fb == pytest.approx(-ref_tok.sum(), rel=1e-10)


@pytest.mark.parametrize("engine", ENGINES)
def test_training_steps_do_draw_fresh_masks(engine):
    """The other side: the same step twice from the same weights moves them differently."""
    params = make_params()
    lm, tr = build(engine, 0.5, 0.5, params, lr=0.05)
    x = np.array([[1, 4, 2], [4, 2, 3], [3, 3, 1]])
    after = []
    for _ in range(2):
        lm.load_state_dict(params)
        tr.step(x, np.roll(x, -1, axis=0), None, None)
        after.append(lm.state_dict())
    assert not np.array_equal(after[0]["rnn.weight_ih_l0"], after[1]["rnn.weight_ih_l0"])
