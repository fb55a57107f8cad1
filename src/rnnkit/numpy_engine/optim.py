"""Optimizers (SGD, RMSProp, Adam) and global-norm gradient clipping, in place on numpy dicts.

Each optimizer updates ``params[name]`` in place from ``grads[name]`` (same names) and keeps
its update count ``t`` and moments ``slots[moment][name]`` as numpy arrays; the moment names
("m", "v") are those of the trainer-state key scheme (rnnkit.trainer_keys), and the Trainer
saves and restores them (``set_state``), so a resumed run continues exactly.

    sgd:      p -= lr * g
    rmsprop:  v = 0.9 v + 0.1 g^2;   p -= lr * g / (sqrt(v) + 1e-8)        (the tutorial's GRU post)
    adam:     m = 0.9 m + 0.1 g;  v = 0.999 v + 0.001 g^2;  t += 1
              p -= lr * (m / (1 - 0.9^t)) / (sqrt(v / (1 - 0.999^t)) + 1e-8)   (PyTorch's Adam)
"""

from __future__ import annotations

import math

import numpy as np


def global_norm(grads: dict[str, np.ndarray]) -> float:
    """sqrt of the sum of squares of every gradient entry (per-array dot products, summed in float64)."""
    return math.sqrt(sum(float(np.vdot(g, g)) for g in grads.values()))


def clip_by_global_norm_(grads: dict[str, np.ndarray], max_norm: float) -> float:
    """Scale all gradients in place so their global norm is at most `max_norm` (0 = off).
    Returns the norm before clipping."""
    norm = global_norm(grads)
    if max_norm > 0 and norm > max_norm:
        scale = max_norm / norm
        for g in grads.values():
            g *= g.dtype.type(scale)
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
        p -= p.dtype.type(lr) * g


class RMSProp(Optimizer):
    name = "rmsprop"
    slot_names = ("v",)

    def __init__(self, params, decay: float = 0.9, eps: float = 1e-8):
        super().__init__(params)
        self.decay, self.eps = decay, eps

    def _update_one(self, k, p, g, lr):
        v = self.slots["v"][k]
        v *= v.dtype.type(self.decay)
        v += v.dtype.type(1.0 - self.decay) * (g * g)
        p -= p.dtype.type(lr) * g / (np.sqrt(v) + p.dtype.type(self.eps))


class Adam(Optimizer):
    name = "adam"
    slot_names = ("m", "v")

    def __init__(self, params, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        super().__init__(params)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps

    def _update_one(self, k, p, g, lr):
        m, v = self.slots["m"][k], self.slots["v"][k]
        b1, b2, dt = self.beta1, self.beta2, p.dtype.type
        m *= dt(b1)
        m += dt(1.0 - b1) * g
        v *= dt(b2)
        v += dt(1.0 - b2) * (g * g)
        step = lr / (1.0 - b1**self.t)  # bias corrections, in float64 scalars
        vcorr = 1.0 / (1.0 - b2**self.t)
        p -= dt(step) * m / (np.sqrt(v * dt(vcorr)) + dt(self.eps))


OPTIMIZERS = {"sgd": SGD, "rmsprop": RMSProp, "adam": Adam}


def make_optimizer(name: str, params: dict[str, np.ndarray]) -> Optimizer:
    return OPTIMIZERS[name](params)
