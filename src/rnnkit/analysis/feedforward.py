"""The feed-forward classifier the tutorial series starts from ("Implementing a Neural Network
from Scratch"): 2 inputs, one tanh hidden layer, a softmax over 2 classes, L2 regularisation,
full-batch gradient descent; and logistic regression, the same network without the hidden
layer, as its baseline. Built from the numpy engine's blocks: affine and tanh
(numpy_engine.layers), softmax cross-entropy (numpy_engine.loss), plain SGD
(numpy_engine.optim) and the centred-difference check (numpy_engine.gradcheck).

    z1 = X W1 + b1;  a1 = tanh(z1);  z2 = a1 W2 + b2;  p = softmax(z2)
    J  = - sum_n ln p_n[y_n]  +  reg/2 (|W1|^2 + |W2|^2)           (the objective descended)
    loss = J / N                                                    (what is reported)

    delta3 = p - onehot(y);  dW2 = a1^T delta3 + reg W2;  db2 = sum_n delta3_n
    delta2 = delta3 W2^T * (1 - a1^2);  dW1 = X^T delta2 + reg W1;  db1 = sum_n delta2_n

As in the post, the gradient descended is that of the SUM over examples (J), and the number
reported is J / N; the biases are not regularised. `sizes` lists the layer widths: (2, H, 2)
is the network, (2, 2) logistic regression (z1 = X W1 + b1, p = softmax(z1)); every layer but
the last is followed by tanh. Weights start as randn(fan_in, fan_out) / sqrt(fan_in), biases 0.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError, NonFiniteError
from ..numpy_engine.gradcheck import numerical_gradients, relative_error
from ..numpy_engine.layers import affine_backward, affine_forward, tanh_backward, tanh_forward
from ..numpy_engine.loss import cross_entropy, cross_entropy_backward_
from ..numpy_engine.optim import SGD

# the post's settings
PASSES, LEARNING_RATE, REG = 20_000, 0.01, 0.01
HIDDEN_SIZES = (1, 2, 3, 4, 5, 20, 50)  # the post's figure of boundaries
RECORD_EVERY = 1000  # passes between the losses kept in Trained.history (the post prints these)


def network_sizes(hidden: int, inputs: int = 2, classes: int = 2) -> tuple[int, ...]:
    """The layer widths of the network with one hidden layer of `hidden` units."""
    if hidden < 1:
        raise ConfigError(f"--hidden must be at least 1, got {hidden}")
    return (inputs, hidden, classes)


def logistic_sizes(inputs: int = 2, classes: int = 2) -> tuple[int, ...]:
    """The layer widths of logistic regression: no hidden layer."""
    return (inputs, classes)


def init_params(sizes: tuple[int, ...], seed: int = 0) -> dict[str, np.ndarray]:
    """{W1, b1, W2, b2, ...}: W_k = randn(fan_in, fan_out) / sqrt(fan_in) drawn in order from one
    seeded Generator, b_k = 0; float64."""
    rng = np.random.default_rng(seed)
    params = {}
    for k, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes), 1):
        params[f"W{k}"] = rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)  # (D, M)
        params[f"b{k}"] = np.zeros(fan_out)  # (M,)
    return params


def depth(params: dict[str, np.ndarray]) -> int:
    """The number of affine layers."""
    return sum(1 for k in params if k.startswith("W"))


# ---------------------------------------------------------------- forward and backward


def forward(params: dict[str, np.ndarray], X: np.ndarray):
    """Logits (N, classes) and the blocks' caches: affine, tanh, ..., affine."""
    caches = []
    a = X  # (N, 2)
    L = depth(params)
    for k in range(1, L + 1):
        a, cache = affine_forward(a, params[f"W{k}"], params[f"b{k}"])  # z_k = a_{k-1} W_k + b_k
        caches.append(cache)
        if k < L:
            a, cache = tanh_forward(a)  # a_k = tanh(z_k)
            caches.append(cache)
    return a, caches


def penalty(params: dict[str, np.ndarray], reg: float) -> float:
    """reg/2 * sum_k |W_k|^2 (biases are not regularised)."""
    return 0.5 * reg * sum(float(np.vdot(w, w)) for k, w in params.items() if k.startswith("W"))


def objective(params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray, reg: float = REG) -> float:
    """J = summed cross-entropy + reg/2 sum_k |W_k|^2."""
    logits, _ = forward(params, X)
    return cross_entropy(logits, y, np.ones(len(y))) + penalty(params, reg)


def objective_and_grads(params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray, reg: float = REG):
    """(J, {name: dJ/dname}): forward, softmax cross-entropy, then the blocks backwards."""
    logits, caches = forward(params, X)
    data = cross_entropy_backward_(logits, y, np.ones(len(y)))  # logits is now delta = p - onehot(y)
    grads = {}
    d = logits  # (N, classes)
    for k in range(depth(params), 0, -1):
        d, dW, db = affine_backward(d, caches.pop())
        grads[f"W{k}"] = dW + reg * params[f"W{k}"]
        grads[f"b{k}"] = db
        if k > 1:
            d = tanh_backward(d, caches.pop())  # delta_k = d * (1 - a_k^2)
    return data + penalty(params, reg), grads


def predict(params: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    """The most probable class of each row, (N,) int (argmax of the logits = of p)."""
    logits, _ = forward(params, X)
    return logits.argmax(axis=1)


def accuracy(params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray) -> float:
    """The fraction of rows whose predicted class is y."""
    return float(np.mean(predict(params, X) == y))


# ---------------------------------------------------------------- training


@dataclass
class Trained:
    """A trained classifier: its widths, parameters, final loss (J / N) and training accuracy,
    and the loss every RECORD_EVERY passes: history = [(pass, loss), ...]."""

    sizes: tuple[int, ...]
    params: dict[str, np.ndarray]
    loss: float
    accuracy: float
    history: list[tuple[int, float]] = field(default_factory=list)

    @property
    def name(self) -> str:
        if len(self.sizes) == 2:
            return "logistic regression"
        return f"{self.sizes[1]} hidden unit{'s' if self.sizes[1] != 1 else ''}"


def train(X: np.ndarray, y: np.ndarray, sizes: tuple[int, ...], *, passes: int = PASSES,
          lr: float = LEARNING_RATE, reg: float = REG, seed: int = 0) -> Trained:
    """Full-batch gradient descent, `passes` times: p -= lr * dJ/dp (numpy_engine.optim.SGD).
    NonFiniteError (before the update) when the loss stops being a finite number."""
    check_settings(passes, lr, reg)
    params = init_params(sizes, seed)
    sgd = SGD(params)
    history = []
    for i in range(passes):
        J, grads = objective_and_grads(params, X, y, reg)
        if not math.isfinite(J):
            raise NonFiniteError(f"feed-forward training: the loss is {J} at pass {i}; "
                                 f"try a smaller --lr than {lr:g}")
        if i % RECORD_EVERY == 0:
            history.append((i, J / len(y)))
        sgd.update(params, grads, lr)
    loss = objective(params, X, y, reg) / len(y)
    history.append((passes, loss))
    return Trained(tuple(sizes), params, loss, accuracy(params, X, y), history)


def check_settings(passes: int, lr: float, reg: float) -> None:
    """ConfigError naming the option for a negative pass count, a learning rate <= 0, reg < 0."""
    if passes < 0:
        raise ConfigError(f"--passes must be >= 0, got {passes}")
    if not (math.isfinite(lr) and lr > 0):
        raise ConfigError(f"--lr must be a positive number, got {lr}")
    if not (math.isfinite(reg) and reg >= 0):
        raise ConfigError(f"--reg must be >= 0, got {reg}")


def train_network(X: np.ndarray, y: np.ndarray, hidden: int = 3, **settings) -> Trained:
    """The network with `hidden` tanh units (settings: passes, lr, reg, seed)."""
    return train(X, y, network_sizes(hidden, X.shape[1], int(y.max()) + 1), **settings)


def train_logistic_regression(X: np.ndarray, y: np.ndarray, **settings) -> Trained:
    """The baseline: a linear softmax classifier, trained the same way."""
    return train(X, y, logistic_sizes(X.shape[1], int(y.max()) + 1), **settings)


def train_hidden_sizes(X: np.ndarray, y: np.ndarray, hidden_sizes=HIDDEN_SIZES, **settings) -> list[Trained]:
    """One network per hidden size, each trained from the same seed."""
    return [train_network(X, y, h, **settings) for h in hidden_sizes]


# ---------------------------------------------------------------- gradient check


class _Objective:
    """What numerical_gradients perturbs: `.params`, and `.forward(X, y)[1]`, here J."""

    def __init__(self, params: dict[str, np.ndarray], reg: float):
        self.params, self.reg = params, reg

    def forward(self, X, y, mask=None, hidden=None):
        return None, objective(self.params, X, y, self.reg), None, None


def gradcheck(sizes: tuple[int, ...] = (2, 3, 2), *, samples: int = 20, reg: float = REG,
              seed: int = 0, step: float = 1e-3, floor: float = 1e-4) -> dict[str, float]:
    """{parameter: worst relative error} of objective_and_grads against the engine's float64
    4-point centred differences, on `samples` points of the two moons and random weights and
    biases (non-zero biases, so their gradients are checked away from the initial point)."""
    from .moons import make_moons

    X, y = make_moons(samples, 0.2, seed)
    params = init_params(sizes, seed)
    rng = np.random.default_rng(seed + 1)
    for k in params:
        if k.startswith("b"):
            params[k] = rng.uniform(-0.5, 0.5, params[k].shape)
    _, analytic = objective_and_grads(params, X, y, reg)
    numeric = numerical_gradients(_Objective(params, reg), X, y, step=step)
    return {k: float(relative_error(analytic[k], numeric[k], floor).max()) for k in analytic}
