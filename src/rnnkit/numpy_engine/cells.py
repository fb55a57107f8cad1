"""One time step of each recurrent cell, forward and backward, batched over rows.

Every cell is a pair of functions in the style of the classic from-scratch tutorials:

    hidden, cache = <cell>_step_forward(xp, hidden_prev, W_hh, b_hh)
    dxp, dhp, dhidden_prev = <cell>_step_backward(dhidden, cache)

- ``xp`` (B, G*H) is the input half of the pre-activation, ``W_ih x_t + b_ih``. The layer
  computes it for all time steps at once with one big matmul (see model.py), so a step only
  does the recurrent half ``W_hh h_{t-1} + b_hh``.
- ``hidden`` is a tuple: ``(h,)`` for rnn and gru, ``(h, c)`` for lstm, each (B, H).
- ``dxp`` is d loss / d xp and ``dhp`` is d loss / d (W_hh h_{t-1} + b_hh), both (..., G*H).
  They are the same array for rnn and lstm; they differ in the n gate of the GRU, where the
  recurrent half is multiplied by r. The layer turns them into weight gradients after the
  time loop with one matmul each.
- ``dxp`` is the tutorial's ``delta_t`` (tutorial.py): the error at the pre-activation of
  step t. The layer's plain BPTT loop (model.py, ``_layer_bptt``) calls the backward step
  once per step, like the twin's ``bptt``.
- The backward functions broadcast: ``dhidden`` may carry extra leading axes (..., B, H), which
  truncated BPTT (``_layer_bptt_truncated``) uses to keep errors of different age apart.

Gate order and equations are PyTorch's (weights are views of the stacked (G*H, .) matrices).
"""

from __future__ import annotations

import numpy as np


def sigmoid(a: np.ndarray) -> np.ndarray:
    """Logistic function, written through tanh so it never overflows."""
    return 0.5 * (1.0 + np.tanh(0.5 * a))


# ---------------------------------------------------------------- vanilla RNN
# s_t = act(W_ih x_t + b_ih + W_hh s_{t-1} + b_hh)          act = tanh or relu
# (the tutorial's s_t = tanh(U x_t + W s_{t-1}) with U = W_ih, W = W_hh)


def rnn_step_forward(xp, hidden, W_hh, b_hh, nonlinearity="tanh"):
    (h_prev,) = hidden
    a = xp + h_prev @ W_hh.T + b_hh  # (B, H)
    if nonlinearity == "tanh":
        h = np.tanh(a)
    else:
        h = np.maximum(a, 0.0)
    return (h,), (h, W_hh, nonlinearity)


def rnn_step_backward(dhidden, cache):
    (ds_t,) = dhidden  # dL/ds_t
    s_t, W_hh, nonlinearity = cache
    if nonlinearity == "tanh":
        delta_t = ds_t * (1.0 - s_t * s_t)  # tanh' = 1 - s_t^2
    else:
        delta_t = ds_t * (s_t > 0)  # relu' = [a > 0]
    ds_prev = delta_t @ W_hh  # W^T delta_t: the error at s_{t-1}
    return delta_t, delta_t, (ds_prev,)


# ---------------------------------------------------------------- GRU (gates r, z, n)
# r = σ(W_ir x + b_ir + W_hr h + b_hr)
# z = σ(W_iz x + b_iz + W_hz h + b_hz)
# n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
# h' = (1 - z) * n + z * h


def gru_step_forward(xp, hidden, W_hh, b_hh):
    (h_prev,) = hidden
    H = h_prev.shape[-1]
    hp = h_prev @ W_hh.T + b_hh  # (B, 3H): W_hr h + b_hr | W_hz h + b_hz | W_hn h + b_hn
    rz = sigmoid(xp[:, : 2 * H] + hp[:, : 2 * H])
    r, z = rz[:, :H], rz[:, H:]
    hn = hp[:, 2 * H :]
    n = np.tanh(xp[:, 2 * H :] + r * hn)
    h = n + z * (h_prev - n)  # = (1 - z) * n + z * h_prev
    return (h,), (h_prev, r, z, n, hn, W_hh)


def gru_step_backward(dhidden, cache):
    (dh,) = dhidden
    h_prev, r, z, n, hn, W_hh = cache
    dn = dh * (1.0 - z)
    dz = dh * (h_prev - n)
    dan = dn * (1.0 - n * n)  # d/d (W_in x + b_in + r * (W_hn h + b_hn))
    dar = (dan * hn) * r * (1.0 - r)
    daz = dz * z * (1.0 - z)
    dxp = np.concatenate([dar, daz, dan], axis=-1)
    dhp = np.concatenate([dar, daz, dan * r], axis=-1)
    dh_prev = dhp @ W_hh + dh * z
    return dxp, dhp, (dh_prev,)


# ---------------------------------------------------------------- LSTM (gates i, f, g, o)
# i = σ(W_ii x + b_ii + W_hi h + b_hi)    f = σ(...)    g = tanh(...)    o = σ(...)
# c' = f * c + i * g
# h' = o * tanh(c')


def lstm_step_forward(xp, hidden, W_hh, b_hh):
    h_prev, c_prev = hidden
    H = h_prev.shape[-1]
    a = xp + h_prev @ W_hh.T + b_hh  # (B, 4H)
    gates = sigmoid(a)  # i, f, o use these; g is overwritten with tanh below
    gates[:, 2 * H : 3 * H] = np.tanh(a[:, 2 * H : 3 * H])
    i, f, g, o = gates[:, :H], gates[:, H : 2 * H], gates[:, 2 * H : 3 * H], gates[:, 3 * H :]
    c = f * c_prev + i * g
    tc = np.tanh(c)
    h = o * tc
    return (h, c), (c_prev, i, f, g, o, tc, W_hh)


def lstm_step_backward(dhidden, cache):
    dh, dc = dhidden
    c_prev, i, f, g, o, tc, W_hh = cache
    do = dh * tc
    dc = dc + dh * o * (1.0 - tc * tc)
    da = np.concatenate(
        [
            (dc * g) * i * (1.0 - i),  # d a_i
            (dc * c_prev) * f * (1.0 - f),  # d a_f
            (dc * i) * (1.0 - g * g),  # d a_g
            do * o * (1.0 - o),  # d a_o
        ],
        axis=-1,
    )
    dh_prev = da @ W_hh
    dc_prev = dc * f
    return da, da, (dh_prev, dc_prev)


STEPS = {
    "rnn": (rnn_step_forward, rnn_step_backward),
    "gru": (gru_step_forward, gru_step_backward),
    "lstm": (lstm_step_forward, lstm_step_backward),
}
"""cell name -> (step_forward, step_backward)."""
