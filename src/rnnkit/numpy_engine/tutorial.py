"""The tutorial's RNN, written the tutorial's way: the readable twin of the fast numpy engine.

Start reading here. This is the recurrent language model of the WildML "Recurrent Neural
Networks Tutorial" (parts 2 and 3), one sentence at a time, in float64, with the tutorial's
names: U, V, W, ``forward_propagation``, ``calculate_loss``, ``bptt``, ``sgd_step``,
``gradient_check``. The fast engine (model.py, cells.py) computes the same numbers for a whole
batch at once; tests/test_tutorial_twin.py checks that the two agree to 1e-10.

    x_t                     the word at step t, an index into the vocabulary (a one-hot vector)
    s_t = tanh(U x_t + W s_{t-1} + b)        the hidden state, the network's "memory"
    o_t = softmax(V s_t + c)                 the probabilities of the next word

Shapes: K word_dim (the vocabulary), H hidden_dim. U (H, K), W (H, H), V (K, H), b (H,),
c (K,). The tutorial has no biases b and c; here they start at zero, so a fresh RNNNumpy is
the tutorial's model, and they let ``from_params`` / ``from_model_dir`` read an rnnkit model
(a 1-layer tanh ``cell rnn`` with the full softmax):

    U = rnn.weight_ih_l0 @ embedding.weight.T      (H, K): column k is W_ih e_k
    W = rnn.weight_hh_l0,  b = rnn.bias_ih_l0 + rnn.bias_hh_l0
    V = decoder.weight (the embedding when tied),  c = decoder.bias

``bptt_truncate`` is the tutorial's: the error of the output at step t flows back through
steps t, t-1, ..., t - bptt_truncate and no further. rnnkit reads ``bptt_truncate = 0`` as
"no truncation" (its --bptt-truncate 0), and so does this twin; the tutorial's own code would
stop every error at its own step for 0.
"""

from __future__ import annotations

import numpy as np

from ..config import ModelConfig
from ..errors import ConfigError
from ..params import check_params, decoder_weight

PARAMETERS = ("U", "V", "W", "b", "c")  # the order bptt returns their gradients in


def softmax(z: np.ndarray) -> np.ndarray:
    """exp(z) / sum exp(z), shifted by the maximum first so that exp cannot overflow."""
    e = np.exp(z - np.max(z))
    return e / np.sum(e)


class RNNNumpy:
    """The tutorial's RNN language model: one sentence (a list of word indices) at a time."""

    def __init__(self, word_dim: int, hidden_dim: int = 100, bptt_truncate: int = 4, seed: int = 0):
        self.word_dim = word_dim
        self.hidden_dim = hidden_dim
        self.bptt_truncate = bptt_truncate
        # Random initial weights in [-1/sqrt(n), 1/sqrt(n)], n = the connections coming in
        rng = np.random.default_rng(seed)
        self.U = rng.uniform(-np.sqrt(1.0 / word_dim), np.sqrt(1.0 / word_dim), (hidden_dim, word_dim))
        self.V = rng.uniform(-np.sqrt(1.0 / hidden_dim), np.sqrt(1.0 / hidden_dim), (word_dim, hidden_dim))
        self.W = rng.uniform(-np.sqrt(1.0 / hidden_dim), np.sqrt(1.0 / hidden_dim), (hidden_dim, hidden_dim))
        # The biases the tutorial leaves out: zero, so they change nothing until trained
        self.b = np.zeros(hidden_dim)
        self.c = np.zeros(word_dim)

    # ------------------------------------------------------------ forward
    def forward_propagation(self, x, s0=None):
        """o (T, K): the next word's probabilities at every step; s (T+1, H): every hidden
        state, kept for bptt. s[-1] (the extra last row) is the state before the sentence:
        zeros, as in the tutorial, or `s0` (a state carried over from earlier text)."""
        T = len(x)
        s = np.zeros((T + 1, self.hidden_dim))  # (T+1, H)
        if s0 is not None:
            s[-1] = s0
        o = np.zeros((T, self.word_dim))  # (T, K)
        # s_t = tanh(U x_t + W s_{t-1} + b),   o_t = softmax(V s_t + c)
        for t in range(T):
            # U times the one-hot vector of x[t] is just column x[t] of U
            s[t] = np.tanh(self.U[:, x[t]] + self.W.dot(s[t - 1]) + self.b)
            o[t] = softmax(self.V.dot(s[t]) + self.c)
        return o, s

    def predict(self, x):
        """The most probable next word at every step."""
        o, _ = self.forward_propagation(x)
        return np.argmax(o, axis=1)

    # ------------------------------------------------------------ loss
    def calculate_total_loss(self, x, y):
        """Cross-entropy summed over every word of every sentence: L = - sum_n sum_t ln o_t[y_t]."""
        L = 0.0
        for i in range(len(y)):
            o, _ = self.forward_propagation(x[i])
            # the probabilities we gave the words that really came next
            correct_word_predictions = o[np.arange(len(y[i])), y[i]]
            L += -np.sum(np.log(correct_word_predictions))
        return L

    def calculate_loss(self, x, y):
        """The total loss divided by the number of words (the tutorial's per-word loss)."""
        N = sum(len(y_i) for y_i in y)
        return self.calculate_total_loss(x, y) / N

    # ------------------------------------------------------------ backward
    def bptt(self, x, y, s0=None):
        """Backpropagation through time for one sentence: the gradients of its total loss,
        (dLdU, dLdV, dLdW, dLdb, dLdc), truncated after `self.bptt_truncate` steps back."""
        T = len(y)
        o, s = self.forward_propagation(x, s0)
        dLdU, dLdV, dLdW = np.zeros_like(self.U), np.zeros_like(self.V), np.zeros_like(self.W)
        dLdb, dLdc = np.zeros_like(self.b), np.zeros_like(self.c)
        # the error at the output: o_t minus the one-hot vector of y_t
        delta_o = o.copy()  # (T, K)
        delta_o[np.arange(T), y] -= 1.0
        # for each output, backwards in time ...
        for t in reversed(range(T)):
            dLdV += np.outer(delta_o[t], s[t])
            dLdc += delta_o[t]
            # the error at the pre-activation of step t: tanh' = 1 - s_t^2
            delta_t = self.V.T.dot(delta_o[t]) * (1 - s[t] ** 2)  # (H,)
            # ... back through time, at most bptt_truncate steps (0: all the way to the start)
            first = max(0, t - self.bptt_truncate) if self.bptt_truncate > 0 else 0
            for bptt_step in reversed(range(first, t + 1)):
                dLdW += np.outer(delta_t, s[bptt_step - 1])  # s[-1] is the initial state
                dLdU[:, x[bptt_step]] += delta_t
                dLdb += delta_t
                # the error one step earlier
                delta_t = self.W.T.dot(delta_t) * (1 - s[bptt_step - 1] ** 2)
        return dLdU, dLdV, dLdW, dLdb, dLdc

    def sgd_step(self, x, y, learning_rate):
        """One step of stochastic gradient descent on one sentence."""
        dLdU, dLdV, dLdW, dLdb, dLdc = self.bptt(x, y)
        self.U -= learning_rate * dLdU
        self.V -= learning_rate * dLdV
        self.W -= learning_rate * dLdW
        self.b -= learning_rate * dLdb
        self.c -= learning_rate * dLdc

    # ------------------------------------------------------------ checking bptt
    def gradient_check(self, x, y, h=0.001, error_threshold=0.01):
        """Compare bptt's gradients with the numerical ones, (L(w + h) - L(w - h)) / 2h, entry
        by entry. The numbers are exact only without truncation, so bptt runs untruncated
        here. Returns {parameter: worst relative error}; raises ValueError at the first entry
        whose relative error |a - n| / (|a| + |n|) exceeds `error_threshold`."""
        truncate, self.bptt_truncate = self.bptt_truncate, 0
        try:
            bptt_gradients = self.bptt(x, y)
        finally:
            self.bptt_truncate = truncate
        worst = {}
        for name, analytic in zip(PARAMETERS, bptt_gradients):
            worst[name] = self._check_parameter(name, analytic, x, y, h, error_threshold)
        return worst

    def _check_parameter(self, name, analytic, x, y, h, error_threshold) -> float:
        """gradient_check for one parameter: returns its worst relative error."""
        parameter = getattr(self, name)
        worst = 0.0
        for ix in np.ndindex(parameter.shape):
            original = parameter[ix]
            parameter[ix] = original + h
            gradplus = self.calculate_total_loss([x], [y])
            parameter[ix] = original - h
            gradminus = self.calculate_total_loss([x], [y])
            parameter[ix] = original
            estimated = (gradplus - gradminus) / (2 * h)
            backprop = analytic[ix]
            scale = np.abs(backprop) + np.abs(estimated)
            error = 0.0 if scale == 0 else float(np.abs(backprop - estimated) / scale)
            if error > error_threshold:
                raise ValueError(f"gradient check failed for {name}{list(ix)}: bptt {backprop:.6g}, "
                                 f"numerical {estimated:.6g}, relative error {error:.3g} > {error_threshold}")
            worst = max(worst, error)
        return worst


# ---------------------------------------------------------------- reading an rnnkit model
def _check_config(config: ModelConfig, where: str) -> None:
    if (config.cell, config.nonlinearity, config.num_layers, config.softmax) != ("rnn", "tanh", 1, "full"):
        raise ConfigError(f"{where}: the tutorial's RNN is a 1-layer tanh rnn with the full softmax; "
                          f"this model is {config.num_layers} layer(s) of {config.cell} "
                          f"({config.nonlinearity}), softmax {config.softmax}")


def from_params(config: ModelConfig, params: dict, bptt_truncate: int = 4) -> RNNNumpy:
    """The tutorial's RNN holding an rnnkit model's numbers (float64), by the mapping above."""
    _check_config(config, "tutorial.from_params")
    check_params(params, config, "tutorial.from_params")
    p = {name: np.asarray(value, dtype=np.float64) for name, value in params.items()}
    model = RNNNumpy(config.vocab_size, config.hidden_dim, bptt_truncate)
    model.U = p["rnn.weight_ih_l0"] @ p["embedding.weight"].T  # (H, D) @ (D, K) = (H, K)
    model.W = p["rnn.weight_hh_l0"].copy()  # (H, H)
    model.b = p["rnn.bias_ih_l0"] + p["rnn.bias_hh_l0"]  # (H,)
    model.V = decoder_weight(p).copy()  # (K, H)
    model.c = p["decoder.bias"].copy()  # (K,)
    return model


def from_model_dir(path, bptt_truncate: int = 4) -> RNNNumpy:
    """The tutorial's RNN holding the model saved in directory `path` (docs/format.md)."""
    from ..checkpoint import load  # reading files is the checkpoint room's job

    ckpt = load(path)
    _check_config(ckpt.model, str(path))
    return from_params(ckpt.model, ckpt.params, bptt_truncate)


def param_gradients(config: ModelConfig, params: dict, gradients) -> dict[str, np.ndarray]:
    """bptt's (dLdU, dLdV, dLdW, dLdb, dLdc) as gradients of the rnnkit parameters, by the
    chain rule through U = W_ih E^T (exact: U is linear in both):

        d weight_ih = dLdU E      d embedding = dLdU^T W_ih (+ dLdV when tied)
        d weight_hh = dLdW        d bias_ih = d bias_hh = dLdb
        d decoder.weight = dLdV   d decoder.bias = dLdc
    """
    _check_config(config, "tutorial.param_gradients")
    dLdU, dLdV, dLdW, dLdb, dLdc = gradients
    E = np.asarray(params["embedding.weight"], dtype=np.float64)  # (K, D)
    W_ih = np.asarray(params["rnn.weight_ih_l0"], dtype=np.float64)  # (H, D)
    out = {"embedding.weight": dLdU.T @ W_ih,  # (K, H) @ (H, D)
           "rnn.weight_ih_l0": dLdU @ E,  # (H, K) @ (K, D)
           "rnn.weight_hh_l0": dLdW.copy(), "rnn.bias_ih_l0": dLdb.copy(), "rnn.bias_hh_l0": dLdb.copy()}
    if config.tie_weights:
        out["embedding.weight"] += dLdV
    else:
        out["decoder.weight"] = dLdV.copy()
    out["decoder.bias"] = dLdc.copy()
    return out
