"""Finite-difference gradient check of every parameter, in float64.

    numeric = d loss_sum / d w  by a centred difference, one weight at a time
    error   = |analytic - numeric| / max(|analytic| + |numeric|, floor)      (per entry)

The default difference is the 4-point centred stencil

    f'(w) ~ (-f(w+2h) + 8 f(w+h) - 8 f(w-h) + f(w-2h)) / (12 h),      h = 1e-3,

whose truncation error is O(h^4) and whose rounding error ~ eps*|f|/h stays near 1e-12, so a
correct backward pass reaches relative errors around 1e-9 instead of the 1e-5 .. 1e-7 of the
plain 2-point difference (``order=2``). Rounding still leaves an absolute noise of ~1e-11 in
the numeric value, so ``floor`` (default 1e-4) keeps entries whose gradient is tiny from
dividing that noise by ~0: for |a| + |n| < floor the error is |a - n| / floor, i.e. at the
1e-6 threshold the tests use, tiny entries must agree to an absolute 1e-10.

With `softmax="adaptive"` the problem uses the adaptive softmax (default cut-offs [3, 5] of
K = 7, div_value 2: a head of 3 + 2 entries and clusters projected to H // 2 and H // 4
units), every cluster holding at least one kept target, so every tail tensor is checked.

For a relu RNN the check is only meaningful away from the kink at 0: ``gradcheck`` refuses
(ConfigError naming the seed) when some pre-activation lies within reach of the perturbation.
"""

from __future__ import annotations

import numpy as np

from ..config import ModelConfig
from ..errors import ConfigError
from ..params import init_params
from .model import RNNLM


def relative_error(a: np.ndarray, b: np.ndarray, floor: float = 1e-4) -> np.ndarray:
    """|a - b| / max(|a| + |b|, floor), elementwise."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), floor)


def numerical_gradients(model: RNNLM, x, y, mask=None, hidden=None, *, step: float = 1e-3,
                        order: int = 4) -> dict[str, np.ndarray]:
    """Centred-difference gradient of ``model.forward(...)[1]`` (the summed loss) w.r.t. every
    parameter, perturbing ``model.params`` in place (restored afterwards)."""
    if order not in (2, 4):
        raise ValueError(f"order must be 2 or 4, got {order}")

    def f() -> float:
        return model.forward(x, y, mask, hidden)[1]

    out = {}
    for name, w in model.params.items():
        g = np.zeros(w.shape, dtype=np.float64)
        flat, gflat = w.reshape(-1), g.reshape(-1)
        for i in range(flat.size):
            w0 = flat[i]
            vals = []
            for d in ((1, -1) if order == 2 else (2, 1, -1, -2)):
                flat[i] = w0 + d * step
                vals.append(f())
            flat[i] = w0
            if order == 2:
                gflat[i] = (vals[0] - vals[1]) / (2 * step)
            else:
                gflat[i] = (-vals[0] + 8 * vals[1] - 8 * vals[2] + vals[3]) / (12 * step)
        out[name] = g
    return out


def relu_margin(model: RNNLM, x, hidden=None) -> float:
    """Smallest |pre-activation| of any relu unit over the window (inf for tanh / gru / lstm)."""
    cfg = model.config
    if cfg.cell != "rnn" or cfg.nonlinearity != "relu":
        return float("inf")
    p = model.params
    st = model._tuples(hidden, np.asarray(x).shape[1])
    X = p["embedding.weight"][np.asarray(x)]
    margin = float("inf")
    for n in range(cfg.num_layers):
        h = st[n][0]
        outs = []
        for t in range(X.shape[0]):
            a = X[t] @ p[f"rnn.weight_ih_l{n}"].T + p[f"rnn.bias_ih_l{n}"] + h @ p[f"rnn.weight_hh_l{n}"].T + p[f"rnn.bias_hh_l{n}"]
            margin = min(margin, float(np.abs(a).min()))
            h = np.maximum(a, 0.0)
            outs.append(h)
        X = np.stack(outs)
    return margin


ADAPTIVE_DEFAULTS = {"cutoffs": [3, 5], "div_value": 2.0}  # for vocab_size 7, hidden_dim 4


def make_problem(cell: str = "rnn", num_layers: int = 1, nonlinearity: str = "tanh", seed: int = 0, *,
                 tie_weights: bool = False, vocab_size: int = 7, embed_dim: int = 5, hidden_dim: int = 4,
                 seq_len: int = 5, batch_size: int = 3, softmax: str = "full", cutoffs: list[int] | None = None,
                 div_value: float | None = None):
    """The small float64 problem gradcheck uses: (model, x, y, mask, hidden).

    Random weights (output biases too), random ids, a mask with some zero targets, and a
    random non-zero initial hidden. ``tie_weights`` forces embed_dim = hidden_dim. With the
    adaptive softmax, the first kept targets are set so that every cluster has one."""
    if tie_weights:
        embed_dim = hidden_dim
    adaptive = {}
    if softmax == "adaptive":
        adaptive = {"softmax": softmax, "cutoffs": list(cutoffs or ADAPTIVE_DEFAULTS["cutoffs"]),
                    "div_value": float(div_value or ADAPTIVE_DEFAULTS["div_value"])}
    cfg = ModelConfig(vocab_size=vocab_size, cell=cell, nonlinearity=nonlinearity, embed_dim=embed_dim,
                      hidden_dim=hidden_dim, num_layers=num_layers, tie_weights=tie_weights, **adaptive)
    params = init_params(cfg, seed, np.float64)
    rng = np.random.default_rng(seed + 1)
    bias = "decoder.head.bias" if cfg.adaptive else "decoder.bias"
    params[bias] = rng.uniform(-0.1, 0.1, size=params[bias].shape)
    model = RNNLM(cfg, params, dtype=np.float64)
    T, B = seq_len, batch_size
    x = rng.integers(0, vocab_size, size=(T, B))
    y = rng.integers(0, vocab_size, size=(T, B))
    mask = (rng.random((T, B)) > 0.3).astype(np.float64)
    mask[0, 0], mask[-1, -1] = 1.0, 0.0  # at least one kept and one dropped target
    for j, start in enumerate(cfg.cutoffs):  # a kept target in every tail cluster
        y.flat[j], mask.flat[j] = start, 1.0
    hidden = model.init_hidden(B)
    if cell == "lstm":
        hidden = [(rng.uniform(-0.5, 0.5, h.shape), rng.uniform(-0.5, 0.5, c.shape)) for h, c in hidden]
    else:
        lo = 0.0 if nonlinearity == "relu" else -0.5
        hidden = [rng.uniform(lo, 0.5, h.shape) for h in hidden]
    return model, x, y, mask, hidden


def gradcheck(cell: str = "rnn", num_layers: int = 1, nonlinearity: str = "tanh", seed: int = 0, *,
              tie_weights: bool = False, vocab_size: int = 7, embed_dim: int = 5, hidden_dim: int = 4,
              seq_len: int = 5, batch_size: int = 3, step: float = 1e-3, order: int = 4,
              floor: float = 1e-4, softmax: str = "full", cutoffs: list[int] | None = None,
              div_value: float | None = None) -> dict[str, float]:
    """Check the analytic gradient (full BPTT) of every parameter against finite differences.

    Returns {parameter name: worst relative error over its entries} (see module docstring).
    A correct engine gives values around 1e-8 or below; tests require <= 1e-6.
    Raises ConfigError for a relu model whose pre-activations come too close to 0 (try another seed).
    """
    model, x, y, mask, hidden = make_problem(
        cell, num_layers, nonlinearity, seed, tie_weights=tie_weights, vocab_size=vocab_size,
        embed_dim=embed_dim, hidden_dim=hidden_dim, seq_len=seq_len, batch_size=batch_size, softmax=softmax,
        cutoffs=cutoffs, div_value=div_value)
    reach = 2 * step if order == 4 else step
    margin = relu_margin(model, x, hidden)
    if margin < 20 * reach:
        raise ConfigError(f"seed {seed}: a relu pre-activation ({margin:.1e}) lies within reach of the "
                          f"finite-difference step {step:g}, so the check would straddle the kink; choose another seed")
    _, _, analytic, _ = model.forward_backward(x, y, mask, hidden)
    numeric = numerical_gradients(model, x, y, mask, hidden, step=step, order=order)
    return {name: float(relative_error(analytic[name], numeric[name], floor).max()) for name in analytic}
