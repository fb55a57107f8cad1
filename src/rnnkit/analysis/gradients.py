"""Gradients through time: how the error of one prediction fades as it flows back to earlier
hidden states (the vanishing-gradient problem of the tutorial series, part 3).

For the loss of one prediction, L_t = -ln p(y_t | x_1..x_t), and the top layer's hidden state
h_{t-k} k steps back:

    g_k = || dL_t / dh_{t-k} ||,            k = 0 .. K
    dL_t/dh_t      = W^T (p_t - onehot(y_t))              (the decoder; adaptive softmax alike)
    dL_t/ds_{t-k-1} = (ds_{t-k} / ds_{t-k-1})^T dL_t/ds_{t-k}       (one step of BPTT)

where s is the recurrent state: h for rnn and gru, the pair (h, c) for the LSTM. For the LSTM
g_k is the part that arrives at h (c_{t-k} held fixed, as in backpropagation: the error at c
is carried separately and reported as its own column, || dL_t / dc_{t-k} ||). In a stack of
layers h is the top layer's: the top layer's past state reaches L_t only through the top
layer's recurrence, so the lower layers enter only as the inputs they give it.

The step Jacobian J_s = ds_s / ds_{s-1} (H x H, or 2H x 2H for the LSTM) bounds the decay,
g_k <= g_0 * prod ||J||; its spectral norm (largest singular value) is measured on a sample of
steps. For the tanh RNN, J_s = diag(1 - h_s^2) W_hh: with PyTorch's initialisation ||W_hh|| is
about 1/sqrt(3) and the error shrinks by that factor every step, while the LSTM's cell state
carries it back multiplied only by the forget gates.

g_k is averaged over every (position, sequence) pair: the last `origins` positions of each
window of x (the positions before them are the K steps of history and a warm-up that lets
the state settle from zeros), targets <s> left out. The numpy engine's numbers come from
backpropagation written with its own cell backward steps (numpy_engine/cells.py), in float64;
the torch engine's from autograd on torch's cells (torch.lstm_cell, ...); the tests check
both against each other and against finite differences.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from .inputs import is_torch_model, target_mask

JACOBIAN_SAMPLES = 32  # step Jacobians whose spectral norm is measured (an SVD each)
SEED_ENTRIES = 1 << 22  # entries of the widest array of one batch of Jacobian seeds (32 MB in float64)


@dataclass
class GradientReport:
    """The measurements of one model. norms[k] holds || dL_t / dh_{t-k} || of every
    (position, sequence) pair that counts; cell_norms the same for c (LSTM, else None);
    jacobian_norms the spectral norms of the sampled step Jacobians."""

    label: str
    cell: str
    norms: np.ndarray  # (K+1, N)
    cell_norms: np.ndarray | None  # (K+1, N) or None
    jacobian_norms: np.ndarray  # (S,)

    @property
    def steps(self) -> int:
        return len(self.norms) - 1

    @property
    def mean(self) -> np.ndarray:
        """(K+1,) the mean of || dL_t / dh_{t-k} || over positions, per k."""
        return self.norms.mean(axis=1)

    def decay(self) -> float:
        """The factor per step: exp of the slope of ln mean_k against k (least squares over k >= 1,
        means that underflowed to 0 left out)."""
        return decay_per_step(self.mean)

    def table(self) -> str:
        """One row per k: k, the mean norm, then median, 10th / 90th percentiles, the ratio to
        the row above (and for the LSTM the mean norm at c); a summary below."""
        lstm = self.cell_norms is not None
        head = f"{'k':>4}  {'mean |dL_t/dh_t-k|':>18}  {'median':>9}  {'10%':>9}  {'90%':>9}  {'ratio':>7}"
        lines = [self.label, head + (f"  {'mean |dL_t/dc_t-k|':>18}" if lstm else "")]
        mean, q = self.mean, np.percentile(self.norms, [50, 10, 90], axis=1)
        for k in range(self.steps + 1):
            ratio = f"{mean[k] / mean[k - 1]:7.3f}" if k and mean[k - 1] > 0 else f"{'':>7}"
            row = f"{k:>4}  {mean[k]:>18.3e}  {q[0, k]:>9.2e}  {q[1, k]:>9.2e}  {q[2, k]:>9.2e}  {ratio}"
            lines.append(row + (f"  {self.cell_norms[k].mean():>18.3e}" if lstm else ""))
        lines += self.summary()
        return "\n".join(lines)

    def summary(self) -> list[str]:
        """The decay per step and the step Jacobians' spectral norms, in words."""
        rate, j = self.decay(), self.jacobian_norms
        tenfold = f" (10x smaller every {math.log(10) / -math.log(rate):.1f} steps)" if 0 < rate < 1 else ""
        first = (f"decay per step: x{rate:.4f}{tenfold}; mean at k = {self.steps} / k = 0: "
                 f"{_ratio(self.mean[-1], self.mean[0])}; averaged over {self.norms.shape[1]:,} positions")
        out = [first]
        if len(j):
            out.append(f"step Jacobian ||ds_t/ds_t-1||_2 ({len(j)} sampled steps): mean {j.mean():.4f}, "
                       f"geometric mean {np.exp(np.log(j).mean()):.4f}, min {j.min():.4f}, max {j.max():.4f}")
        return out


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.3e}" if b > 0 else "n/a"


def decay_per_step(mean: np.ndarray) -> float:
    """exp(slope) of the least-squares line through (k, ln mean_k), k >= 1 and mean_k > 0."""
    k = np.arange(len(mean))
    keep = (k >= 1) & (np.asarray(mean) > 0)
    if keep.sum() < 2:
        return float("nan")
    slope = np.polyfit(k[keep], np.log(np.asarray(mean)[keep]), 1)[0]
    return float(np.exp(slope))


def measure_gradients(model, x: np.ndarray, y: np.ndarray, *, steps: int, origins: int, label: str = "",
                      jacobians: int = JACOBIAN_SAMPLES, seed: int = 0) -> GradientReport:
    """The report of `model` (either engine) on windows x, y (T, B), T >= steps + origins:
    the gradient norms of the last `origins` positions, `jacobians` step Jacobians sampled
    (seeded) from the steps those gradients pass through."""
    x, y = np.asarray(x), np.asarray(y)
    dh, dc = backprop_to_past(model, x, y, steps=steps, origins=origins)
    keep = target_mask(y[-origins:]).ravel()  # (P*B,) positions that count
    if not keep.any():
        raise ConfigError("no position to measure: every target is <s>")
    norms = np.linalg.norm(dh, axis=-1).reshape(steps + 1, -1)[:, keep]  # (K+1, N)
    cell_norms = None if dc is None else np.linalg.norm(dc, axis=-1).reshape(steps + 1, -1)[:, keep]
    T, B = x.shape
    rng = np.random.default_rng(seed)
    first = min(T - origins - steps + 1, T - 1)  # the steps the gradients above pass through
    J = step_jacobians(model, x, rng.integers(first, T, size=jacobians), rng.integers(0, B, size=jacobians))
    return GradientReport(label or model.config.cell, model.config.cell, norms, cell_norms, spectral_norms(J))


def spectral_norms(J: np.ndarray) -> np.ndarray:
    """The largest singular value of each matrix of J (S, m, m)."""
    if not len(J):
        return np.zeros(0)
    return np.linalg.svd(J, compute_uv=False)[:, 0]


def backprop_to_past(model, x: np.ndarray, y: np.ndarray, *, steps: int, origins: int):
    """dL_t / dh_{t-k} for k = 0..steps and the last `origins` positions t of the windows:
    (dh (K+1, P, B, H), dc (K+1, P, B, H) for the LSTM else None), float64. L_t is the loss of
    row b's target at t (each row's gradient is its own). Either engine."""
    T = np.shape(x)[0]
    if steps < 0 or origins < 1 or steps + origins > T:
        raise ConfigError(f"windows of {T} steps cannot hold {steps} steps back from {origins} positions")
    if is_torch_model(model):
        return _torch_backprop(model, x, y, steps, origins)
    return _numpy_backprop(model, x, y, steps, origins)


def step_jacobians(model, x: np.ndarray, times: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """J (S, m, m), J[s, i, j] = d s_{t}[i] / d s_{t-1}[j] of the top layer at step t = times[s]
    of window rows[s] (s = h, m = H; for the LSTM s = (h, c), m = 2H). Either engine."""
    if is_torch_model(model):
        return _torch_jacobians(model, x, np.asarray(times), np.asarray(rows))
    return _numpy_jacobians(model, x, np.asarray(times), np.asarray(rows))


# ---------------------------------------------------------------- numpy engine: its cells, float64


def _numpy_steps(cfg):
    """(step_forward, step_backward) of the config's cell (numpy_engine/cells.py)."""
    from ..numpy_engine.cells import STEPS

    forward, backward = STEPS[cfg.cell]
    if cfg.cell == "rnn":
        forward = functools.partial(forward, nonlinearity=cfg.nonlinearity)
    return forward, backward


def _numpy_forward(model, x: np.ndarray):
    """Every layer over the windows in float64: (top outputs (T, B, H), the top layer's per-step
    caches stacked over time (stack_caches), its states s_0..s_T (T+1 tuples of (B, H)))."""
    cfg = model.config
    p = {k: np.asarray(v, dtype=np.float64) for k, v in model.state_dict().items()}
    forward, _ = _numpy_steps(cfg)
    X = p["embedding.weight"][x]  # (T, B, D)
    T, B, _ = X.shape
    for n in range(cfg.num_layers):
        W_hh, b_hh = p[f"rnn.weight_hh_l{n}"], p[f"rnn.bias_hh_l{n}"]
        XP = X @ p[f"rnn.weight_ih_l{n}"].T + p[f"rnn.bias_ih_l{n}"]  # (T, B, G*H)
        state = tuple(np.zeros((B, cfg.hidden_dim)) for _ in range(2 if cfg.cell == "lstm" else 1))
        states, caches = [state], []
        for t in range(T):
            state, cache = forward(XP[t], state, W_hh, b_hh)
            states.append(state)
            caches.append(cache)
        X = np.stack([s[0] for s in states[1:]])  # (T, B, H)
    return X, stack_caches(caches), states, p


def stack_caches(caches: list[tuple]) -> tuple[tuple, tuple]:
    """Per-step caches -> (one tuple, which of its elements are per step). An element that is
    the same object at every step (W_hh, the nonlinearity) stays as it is; the others, (B, ...)
    arrays, are stacked to (T, B, ...)."""
    first = caches[0]
    per_step = tuple(not all(c[j] is a for c in caches) for j, a in enumerate(first))
    stacked = tuple(np.stack([c[j] for c in caches]) if each else a for j, (a, each) in enumerate(zip(first, per_step)))
    return stacked, per_step


def pick_cache(cache: tuple[tuple, tuple], times: np.ndarray, rows: np.ndarray) -> tuple:
    """The cache of steps `times` on rows `rows` (N,) as one batch of N rows."""
    stacked, per_step = cache
    return tuple(a[times, rows] if each else a for a, each in zip(stacked, per_step))


def _numpy_backprop(model, x, y, steps: int, origins: int):
    from ..numpy_engine.output import make_output

    cfg = model.config
    Htop, cache, _, params = _numpy_forward(model, x)
    _, backward = _numpy_steps(cfg)
    T, B, H = Htop.shape
    t = np.repeat(np.arange(T - origins, T), B)  # (P*B,) the origin of each row
    b = np.tile(np.arange(B), origins)
    # dL_t/dh_t: the decoder's backward on each origin's own row (its loss alone)
    ys = np.asarray(y)[t, b]
    _, dh, _ = make_output(cfg, params).loss_backward(Htop[t, b], ys, target_mask(ys).astype(np.float64))
    delta = (dh,) + ((np.zeros_like(dh),) if cfg.cell == "lstm" else ())  # dL_t/ds_t
    out = [delta]
    # dL_t/ds_{t-k-1} = (ds_{t-k}/ds_{t-k-1})^T dL_t/ds_{t-k}: the cell's backward at step t-k
    for k in range(steps):
        _, _, delta = backward(delta, pick_cache(cache, t - k, b))
        out.append(delta)
    dhs = np.stack([d[0] for d in out]).reshape(steps + 1, origins, B, H)
    dcs = np.stack([d[1] for d in out]).reshape(steps + 1, origins, B, H) if cfg.cell == "lstm" else None
    return dhs, dcs


def _numpy_jacobians(model, x, times, rows) -> np.ndarray:
    """Seed the cell's backward at step t with each unit vector e_i of s_t: the error it returns
    at s_{t-1} is row i of J_t. A few samples at a time (the seeds make m copies of each)."""
    cfg = model.config
    _, cache, _, _ = _numpy_forward(model, x)
    _, backward = _numpy_steps(cfg)
    H = cfg.hidden_dim
    n_state = 2 if cfg.cell == "lstm" else 1
    m = n_state * H
    chunk = max(1, SEED_ENTRIES // (m * 4 * H))
    out = [np.zeros((0, m, m))]
    for i in range(0, len(times), chunk):
        S = len(times[i:i + chunk])
        seeds = np.broadcast_to(np.eye(m)[:, None, :], (m, S, m))  # (m seeds, S samples, m)
        dstate = tuple(np.ascontiguousarray(seeds[..., j * H:(j + 1) * H]) for j in range(n_state))
        _, _, dprev = backward(dstate, pick_cache(cache, times[i:i + chunk], rows[i:i + chunk]))  # step t's cache
        out.append(np.concatenate(dprev, axis=-1).transpose(1, 0, 2))  # (S, m, m): J[s, i, j]
    return np.concatenate(out)


# ---------------------------------------------------------------- torch engine: autograd


def _torch_cell(cfg):
    """One step of torch's own cell as a function (x, state tuple, weights) -> state tuple."""
    import torch

    if cfg.cell == "lstm":
        return lambda x, s, *w: torch.lstm_cell(x, s, *w)
    step = {"gru": torch.gru_cell, "rnn": torch.rnn_tanh_cell if cfg.nonlinearity == "tanh" else torch.rnn_relu_cell}
    return lambda x, s, *w: (step["gru" if cfg.cell == "gru" else "rnn"](x, s[0], *w),)


def _torch_layers(model, x, probe: bool):
    """Every layer step by step with torch's cells. With `probe`, a zero tensor that requires a
    gradient is added to each part of every top-layer state, so dL/d(probe) = dL/d(state).
    Returns (top outputs (T, B, H), the top layer's inputs (T, B, D), states s_0..s_T, probes)."""
    import torch

    mod, cfg = model.module, model.config
    cell = _torch_cell(cfg)
    X = mod.embedding(torch.as_tensor(np.asarray(x, dtype=np.int64), device=model.device))
    T, B = x.shape
    for n in range(cfg.num_layers):
        w = [getattr(mod.rnn, f"{name}_l{n}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        top, inputs = n == cfg.num_layers - 1, X
        z = torch.zeros(B, cfg.hidden_dim, dtype=model.dtype, device=model.device)
        state = (z, z) if cfg.cell == "lstm" else (z,)
        states, probes = [state], []
        for t in range(T):
            state = cell(X[t], state, *w)
            if top and probe:
                e = tuple(torch.zeros_like(s, requires_grad=True) for s in state)
                state = tuple(s + d for s, d in zip(state, e))
                probes.append(e)
            states.append(state)
        X = torch.stack([s[0] for s in states[1:]])
    return X, inputs, states, probes


def _torch_backprop(model, x, y, steps: int, origins: int):
    import torch

    cfg = model.config
    T, B = x.shape
    model.module.eval()
    with torch.enable_grad():
        Htop, _, _, probes = _torch_layers(model, x, probe=True)
        logp = model.module.log_probs(Htop[T - origins:].reshape(origins * B, -1)).reshape(origins, B, -1)
        ys = torch.as_tensor(np.asarray(y[T - origins:], dtype=np.int64), device=model.device)
        weight = torch.as_tensor(target_mask(y[T - origins:]), dtype=logp.dtype, device=model.device)
        nll = -(logp.gather(-1, ys[..., None]).squeeze(-1) * weight)  # (P, B)
        out = []
        for i in range(origins):  # L_t of each row at origin t = T - P + i; rows do not mix
            t = T - origins + i
            wrt = [d for k in range(steps + 1) for d in probes[t - k]]
            grads = torch.autograd.grad(nll[i].sum(), wrt, retain_graph=True, allow_unused=True)
            grads = [torch.zeros_like(d) if g is None else g for g, d in zip(grads, wrt)]
            out.append(torch.stack(grads).reshape(steps + 1, -1, B, cfg.hidden_dim))  # (K+1, parts, B, H)
    g = torch.stack(out, dim=2).detach().to(torch.float64).cpu().numpy()  # (K+1, parts, P, B, H)
    return g[:, 0], (g[:, 1] if cfg.cell == "lstm" else None)


def _torch_jacobians(model, x, times, rows) -> np.ndarray:
    """torch.func.jacrev of one step of torch's cell, vmapped over the samples."""
    import torch

    cfg = model.config
    n = cfg.num_layers - 1
    mod, H = model.module, cfg.hidden_dim
    w = [getattr(mod.rnn, f"{name}_l{n}").detach() for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    cell = _torch_cell(cfg)
    with torch.no_grad():
        _, inputs, states, _ = _torch_layers(model, x, probe=False)
    t = torch.as_tensor(times, device=model.device)
    r = torch.as_tensor(rows, device=model.device)
    prev = torch.cat([torch.stack([s[j] for s in states])[t, r] for j in range(len(states[0]))], dim=-1)  # (S, m)

    def step(s, xi):
        parts = tuple(s[None, j * H:(j + 1) * H] for j in range(len(s) // H))
        return torch.cat([p[0] for p in cell(xi[None], parts, *w)])

    J = torch.func.vmap(torch.func.jacrev(step))(prev, inputs[t, r])
    return J.detach().to(torch.float64).cpu().numpy()
