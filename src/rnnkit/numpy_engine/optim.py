"""Optimizers (SGD, RMSProp, Adam) and global-norm gradient clipping, in place on numpy dicts.

Each optimizer updates ``params[name]`` in place from ``grads[name]`` (same names) and keeps
its update count ``t`` and moments ``slots[moment][name]`` as numpy arrays; the moment names
("m", "v") are those of the trainer-state key scheme (rnnkit.trainer_keys), and the Trainer
saves and restores them (``set_state``), so a resumed run continues exactly.

    sgd:      p -= lr * g
    rmsprop:  v = 0.9 v + 0.1 g^2;   p -= lr * g / (sqrt(v) + 1e-8)        (the tutorial's GRU post)
    adam:     m = 0.9 m + 0.1 g;  v = 0.999 v + 0.001 g^2;  t += 1
              p -= lr * (m / (1 - 0.9^t)) / (sqrt(v / (1 - 0.999^t)) + 1e-8)   (PyTorch's Adam)

A gradient may be a `RowGrad` (rows, values): a matrix gradient that is zero outside `rows`,
as the embedding's is (only the ids of the batch are looked up). SGD then updates just those
rows, `p[rows] -= lr * values`, and RMSprop's step is zero outside them too; a parameter
absent from SGD's gradients is left alone (its gradient is zero). Adam moves every entry each
step (the moments decay everywhere: m *= 0.9 everywhere, then m[rows] += 0.1 g), so it is
given zeros, not left out. Each update is the dense update's arithmetic in the same order, so
the numbers are the same, bit for bit.

Elementwise updates over whole tensors run in blocks of `BLOCK` entries, so their temporaries
stay in cache instead of allocating (and page-faulting) arrays the size of a 267k-word
embedding several times per step.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

BLOCK = 1 << 15  # entries per block of an elementwise update


@dataclass
class RowGrad:
    """The gradient of a (K, D) matrix that is zero but in `rows` (distinct, increasing):
    values[j] is the gradient of row rows[j]."""

    rows: np.ndarray  # (R,) int
    values: np.ndarray  # (R, D)

    def dense(self, shape: tuple[int, ...]) -> np.ndarray:
        out = np.zeros(shape, dtype=self.values.dtype)
        out[self.rows] = self.values
        return out


def blocks(*arrays: np.ndarray) -> Iterator[tuple[np.ndarray, ...]]:
    """Matching blocks of BLOCK entries of same-shaped C-contiguous arrays (views: writes land)."""
    flat = [a.reshape(-1) for a in arrays]
    for s in range(0, flat[0].size, BLOCK):
        yield tuple(f[s : s + BLOCK] for f in flat)


def moving_average_(a: np.ndarray, decay: float, g: np.ndarray | RowGrad, square: bool = False) -> None:
    """a = decay a + (1 - decay) g  (g * g with `square`), in place; a RowGrad adds only its rows."""
    dt = a.dtype.type
    if isinstance(g, RowGrad):
        a *= dt(decay)
        a[g.rows] += dt(1.0 - decay) * (g.values * g.values if square else g.values)
        return
    for ab, gb in blocks(a, g):
        ab *= dt(decay)
        ab += dt(1.0 - decay) * (gb * gb if square else gb)


def entries(g: np.ndarray | RowGrad) -> np.ndarray:
    """The array holding a gradient's (non-zero) entries: itself, or a RowGrad's values."""
    return g.values if isinstance(g, RowGrad) else g


def global_norm(grads: dict[str, np.ndarray | RowGrad]) -> float:
    """sqrt of the sum of squares of every gradient entry (per-array dot products, summed in float64)."""
    return math.sqrt(sum(float(np.vdot(entries(g), entries(g))) for g in grads.values()))


def clip_by_global_norm_(grads: dict[str, np.ndarray | RowGrad], max_norm: float) -> float:
    """Scale all gradients in place so their global norm is at most `max_norm` (0 = off).
    Returns the norm before clipping."""
    norm = global_norm(grads)
    if max_norm > 0 and norm > max_norm:
        scale = max_norm / norm
        for g in grads.values():
            a = entries(g)
            a *= a.dtype.type(scale)
    return norm


class Optimizer:
    """Base: `t` counts updates; subclasses keep per-parameter moment arrays in `slots`."""

    name = ""
    slot_names: tuple[str, ...] = ()

    def __init__(self, params: dict[str, np.ndarray]):
        self.t = 0
        self.slots = {s: {k: np.zeros_like(v) for k, v in params.items()} for s in self.slot_names}

    def update(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray], lr: float) -> None:
        self.t += 1
        for k, g in grads.items():
            self._update_one(k, params[k], g, lr)

    def _update_one(self, k, p, g, lr):  # pragma: no cover - abstract
        raise NotImplementedError

    def set_state(self, t: int, moments: dict[str, dict[str, np.ndarray]]) -> None:
        """Restore the update count and the moments {moment: {name: array}}, in place; a
        moment absent from `moments` starts at zero."""
        for slot, arrs in self.slots.items():
            given = moments.get(slot, {})
            for k, v in arrs.items():
                v[...] = given.get(k, 0)
        self.t = int(t)


class SGD(Optimizer):
    name = "sgd"

    def _update_one(self, k, p, g, lr):
        if isinstance(g, RowGrad):
            p[g.rows] -= p.dtype.type(lr) * g.values
        else:
            p -= p.dtype.type(lr) * g


class RMSProp(Optimizer):
    name = "rmsprop"
    slot_names = ("v",)

    def __init__(self, params, decay: float = 0.9, eps: float = 1e-8):
        super().__init__(params)
        self.decay, self.eps = decay, eps

    def _update_one(self, k, p, g, lr):
        v = self.slots["v"][k]
        moving_average_(v, self.decay, g, square=True)
        dt = p.dtype.type
        if isinstance(g, RowGrad):  # the step is zero outside the rows
            p[g.rows] -= dt(lr) * g.values / (np.sqrt(v[g.rows]) + dt(self.eps))
            return
        for pb, gb, vb in blocks(p, g, v):
            pb -= dt(lr) * gb / (np.sqrt(vb) + dt(self.eps))


class Adam(Optimizer):
    name = "adam"
    slot_names = ("m", "v")

    def __init__(self, params, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        super().__init__(params)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps

    def _update_one(self, k, p, g, lr):
        m, v = self.slots["m"][k], self.slots["v"][k]
        moving_average_(m, self.beta1, g)
        moving_average_(v, self.beta2, g, square=True)
        dt = p.dtype.type
        step = dt(lr / (1.0 - self.beta1**self.t))  # bias corrections, in float64 scalars
        vcorr = dt(1.0 / (1.0 - self.beta2**self.t))
        for pb, mb, vb in blocks(p, m, v):  # every entry moves, rows of a RowGrad or not
            pb -= step * mb / (np.sqrt(vb * vcorr) + dt(self.eps))


OPTIMIZERS = {"sgd": SGD, "rmsprop": RMSProp, "adam": Adam}


def make_optimizer(name: str, params: dict[str, np.ndarray]) -> Optimizer:
    return OPTIMIZERS[name](params)
