"""Feed-forward building blocks, each a forward/backward pair in the from-scratch style:

    out, cache = <block>_forward(...)
    d_inputs   = <block>_backward(dout, cache)

The recurrent cells (cells.py) and the softmax cross-entropy (loss.py) are the engine's other
blocks; these two are what a plain feed-forward network needs besides them. Rows are examples:
x is (N, D), the layer's output (N, M).
"""

from __future__ import annotations

import numpy as np

# ---------------------------------------------------------------- affine
# out = x W + b                     x (N, D), W (D, M), b (M,), out (N, M)
# dx = dout W^T;  dW = x^T dout;  db = sum_n dout_n


def affine_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray):
    """out = x W + b; returns (out (N, M), cache)."""
    out = x @ W + b  # (N, M)
    return out, (x, W)


def affine_backward(dout: np.ndarray, cache):
    """Gradients of the affine map: (dx (N, D), dW (D, M), db (M,))."""
    x, W = cache
    dx = dout @ W.T  # (N, D)
    dW = x.T @ dout  # (D, M)
    db = dout.sum(axis=0)  # (M,)
    return dx, dW, db


# ---------------------------------------------------------------- tanh
# a = tanh(z);   dz = da * (1 - a^2)         (tanh' written through its own output)


def tanh_forward(z: np.ndarray):
    """a = tanh(z); returns (a, cache)."""
    a = np.tanh(z)
    return a, a


def tanh_backward(da: np.ndarray, cache) -> np.ndarray:
    """dz = da * (1 - a^2)."""
    a = cache
    return da * (1.0 - a * a)
