"""RNNLM: embedding -> stacked rnn/gru/lstm layers -> decoder -> softmax, in plain numpy.

The tutorial's model, batched over sentences and time-major:

    x_t          token ids (B,)
    e_t = E[x_t]                                  embedding lookup (the tutorial's U[:, x_t])
    s_t = tanh(U e_t + W s_{t-1} + b)             one line per layer (gru / lstm: cells.py)
    o_t = softmax(V s_t + c)                      decoder, V tied to E when tie_weights
                                                  (or the adaptive softmax: output.py)

Shapes: T time steps, B batch rows, D embed_dim, H hidden_dim, G gates, K vocab_size.

Backward is BPTT written out as a ``for t in reversed(range(T))`` loop per layer, the loop of
the readable twin (tutorial.py: the tutorial's RNNNumpy, one sentence at a time, which the
tests check this engine against). Plain BPTT is `_layer_bptt`. With ``bptt_truncate = k > 0``
the error of the output at time t flows back only through steps t, t-1, ..., t-k (the
tutorial's definition; the states before t-k are treated as constants for that output): that
is `_layer_bptt_truncated`. To do it without a loop per output, it keeps the error at each
step split by its age a = t_out - t in an extra axis (k+1 of them): one step back ages every
slice by one and drops the slice that has travelled k steps. Through a stack of layers the
ages are passed down as well, so every layer sees the same truncation.

`forward_backward(..., sparse=True)` is the Trainer's variant (untied weights, no weight
decay): the embedding's gradient comes back as a RowGrad holding only the rows the window
looked up (summed per distinct id, in the same order as the dense scatter-add, so the numbers
are the same), and the adaptive softmax's tail clusters that no target fell in are left out.
"""

from __future__ import annotations

import functools

import numpy as np

from ..config import ModelConfig
from ..params import check_params, init_params, param_shapes
from .cells import STEPS
from .loss import cross_entropy, nll
from .optim import RowGrad
from .output import make_output


def _validated(config: ModelConfig, params: dict, dtype) -> dict[str, np.ndarray]:
    """Copy `params` into fresh arrays of `dtype`, refusing names or shapes that do not fit."""
    check_params(params, config, "numpy_engine.RNNLM parameters")
    return {name: np.array(params[name], dtype=dtype, copy=True) for name in param_shapes(config)}


class RNNLM:
    """The numpy engine's language model (see docs/contracts.md, section Engines)."""

    def __init__(self, config: ModelConfig, params: dict | None = None, *, dtype=np.float32, seed: int = 0):
        config.validate()
        self.config = config
        self.dtype = np.dtype(dtype)
        if params is None:
            params = init_params(config, seed, self.dtype)
        self.params = _validated(config, params, self.dtype)
        self.output = make_output(config, self.params)  # full or adaptive softmax (output.py)
        fwd, self._step_backward = STEPS[config.cell]
        if config.cell == "rnn":
            fwd = functools.partial(fwd, nonlinearity=config.nonlinearity)
        self._step_forward = fwd

    # ------------------------------------------------------------ parameters and hidden
    def state_dict(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self.params.items()}

    def load_state_dict(self, d: dict) -> None:
        new = _validated(self.config, d, self.dtype)
        for k, v in new.items():
            self.params[k][...] = v  # in place: optimizers keep their references

    def num_parameters(self) -> int:
        return int(sum(v.size for v in self.params.values()))

    def init_hidden(self, batch_size: int) -> list:
        H = self.config.hidden_dim
        shape, L = (batch_size, H), self.config.num_layers
        if self.config.cell == "lstm":
            return [(np.zeros(shape, self.dtype), np.zeros(shape, self.dtype)) for _ in range(L)]
        return [np.zeros(shape, self.dtype) for _ in range(L)]

    def reorder_hidden(self, hidden: list, index) -> list:
        index = np.asarray(index)
        if self.config.cell == "lstm":
            return [(h[index], c[index]) for h, c in hidden]
        return [h[index] for h in hidden]

    def _tuples(self, hidden, B: int) -> list[tuple]:
        """Public hidden (list of arrays or (h, c) pairs) -> list of tuples in the model dtype."""
        if hidden is None:
            hidden = self.init_hidden(B)
        if len(hidden) != self.config.num_layers:
            raise ValueError(f"hidden has {len(hidden)} layers, the model has {self.config.num_layers}")
        out = []
        for s in hidden:
            s = tuple(s) if self.config.cell == "lstm" else (s,)
            out.append(tuple(np.asarray(a, dtype=self.dtype) for a in s))
        return out

    def _public(self, hidden: list[tuple]) -> list:
        """list of tuples -> public hidden, copied (detached from anything cached)."""
        if self.config.cell == "lstm":
            return [(h.copy(), c.copy()) for h, c in hidden]
        return [s[0].copy() for s in hidden]

    def _check_ids(self, x: np.ndarray, what: str) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 2 or not np.issubdtype(x.dtype, np.integer):
            raise ValueError(f"{what} must be a (T, B) integer array, got shape {x.shape} dtype {x.dtype}")
        if x.size and (x.min() < 0 or x.max() >= self.config.vocab_size):
            raise ValueError(f"{what} has token ids outside 0..{self.config.vocab_size - 1}")
        return x

    # ------------------------------------------------------------ forward
    def _layer_forward(self, n: int, X: np.ndarray, hidden: tuple):
        """One layer over the whole window. X (T, B, D_n) -> outputs (T, B, H), final hidden, caches."""
        p = self.params
        W_ih, W_hh = p[f"rnn.weight_ih_l{n}"], p[f"rnn.weight_hh_l{n}"]
        b_ih, b_hh = p[f"rnn.bias_ih_l{n}"], p[f"rnn.bias_hh_l{n}"]
        T, B, _ = X.shape
        # the input half U x_t + b of every step in one matmul: (T*B, D) @ (D, G*H)
        XP = (X.reshape(T * B, -1) @ W_ih.T + b_ih).reshape(T, B, -1)  # (T, B, G*H)
        Hs = np.empty((T, B, self.config.hidden_dim), dtype=self.dtype)  # (T, B, H)
        caches = []
        # s_t = tanh(U x_t + W s_{t-1} + b)      (gru / lstm: see cells.py)
        for t in range(T):
            hidden, cache = self._step_forward(XP[t], hidden, W_hh, b_hh)
            Hs[t] = hidden[0]
            caches.append(cache)
        return Hs, hidden, caches

    def _dropout(self, rng, p: float, shape) -> np.ndarray | None:
        if rng is None or p <= 0:
            return None
        keep = rng.random(shape) >= p
        return keep.astype(self.dtype) * self.dtype.type(1.0 / (1.0 - p))

    def _stack_forward(self, x: np.ndarray, hidden: list[tuple], rng=None, keep: bool = False):
        """Embedding and all layers. Returns top outputs (T, B, H), final states, and (when
        `keep`) what backward needs: per layer (input, previous-h stack, caches, output mask)."""
        cfg = self.config
        X = self.params["embedding.weight"][x]  # (T, B, D)
        emb_mask = self._dropout(rng, cfg.embed_dropout, X.shape)
        if emb_mask is not None:
            X = X * emb_mask
        records, new_hidden = [], []
        for n in range(cfg.num_layers):
            Hs, hid, caches = self._layer_forward(n, X, hidden[n])
            new_hidden.append(hid)
            out_mask = self._dropout(rng, cfg.dropout, Hs.shape)
            if keep:
                Hprev = np.concatenate([hidden[n][0][None], Hs[:-1]], axis=0)  # (T, B, H): s_{t-1}
                records.append((X, Hprev, caches, out_mask))
            X = Hs if out_mask is None else Hs * out_mask
        return X, new_hidden, (emb_mask, records)

    def _logits(self, Htop: np.ndarray) -> np.ndarray:
        """(T, B, K): the decoder's logits (full softmax) or log-probabilities (adaptive)."""
        T, B, H = Htop.shape
        return self.output.logits(Htop.reshape(T * B, H)).reshape(T, B, -1)

    @staticmethod
    def _mask(y: np.ndarray, mask) -> np.ndarray:
        if mask is None:
            return np.ones(y.shape, dtype=np.float64)
        mask = np.asarray(mask)
        if mask.shape != y.shape:
            raise ValueError(f"mask shape {mask.shape} does not match y shape {y.shape}")
        return mask.astype(np.float64)

    def forward(self, x, y=None, mask=None, hidden=None):
        """Eval-mode forward: (logits (T, B, K), loss_sum, num_tokens, final hidden)."""
        x = self._check_ids(x, "x")
        hid = self._tuples(hidden, x.shape[1])
        Htop, hid, _ = self._stack_forward(x, hid)
        logits = self._logits(Htop)
        loss, ntok = 0.0, 0
        if y is not None:
            y = self._check_ids(y, "y")
            m = self._mask(y, mask)
            K = logits.shape[-1]
            # the adaptive softmax's logits are already log-probabilities
            loss_of = nll if self.config.adaptive else cross_entropy
            loss = loss_of(logits.reshape(-1, K), y.ravel(), m.ravel())
            ntok = int(np.count_nonzero(m))
        return logits, loss, ntok, self._public(hid)

    def token_logprobs(self, x, y, hidden=None, mask=None):
        """ln p(y_t | x_<=t): (float64 (T, B), final hidden). Where `mask` (T, B) is false the
        decoder is skipped and the entry is 0.0 (padding costs only the recurrence)."""
        x, y = self._check_ids(x, "x"), self._check_ids(y, "y")
        hid = self._tuples(hidden, x.shape[1])
        Htop, hid, _ = self._stack_forward(x, hid)
        T, B = x.shape
        H, ys = Htop.reshape(T * B, -1), y.reshape(-1)
        out = np.zeros(T * B, dtype=np.float64)
        rows = np.arange(T * B) if mask is None else np.flatnonzero(np.asarray(mask).reshape(-1))
        if len(rows):
            out[rows] = self.output.target_logprobs(H[rows], ys[rows])
        return out.reshape(T, B), self._public(hid)

    def step_logprobs(self, tokens, hidden):
        """One step for generation: tokens (B,) -> (ln p(next) float64 (B, K), new hidden)."""
        x = self._check_ids(np.asarray(tokens).reshape(1, -1), "tokens")
        hid = self._tuples(hidden, x.shape[1])
        Htop, hid, _ = self._stack_forward(x, hid)
        return self.output.log_probs(Htop[0]), self._public(hid)

    # ------------------------------------------------------------ backward
    def _zero_state(self, shape) -> tuple:
        """Zeros for the error carried back through the hidden state: (ds,) or, lstm, (ds, dc)."""
        return tuple(np.zeros(shape, dtype=self.dtype) for _ in range(2 if self.config.cell == "lstm" else 1))

    def _weight_gradients(self, n: int, record, delta: np.ndarray, delta_hh: np.ndarray, grads: dict) -> None:
        """The twin's dLdU += outer(delta_t, x_t), dLdW += outer(delta_t, s_{t-1}), dLdb += delta_t,
        summed over every step and row with one matmul each. delta, delta_hh (T, B, G*H): the
        error at the input half and at the recurrent half of each pre-activation (the same
        array except in the GRU, see cells.py)."""
        X, Hprev, _, _ = record  # (T, B, D_n), (T, B, H): x_t and s_{t-1}
        T, B, GH = delta.shape
        grads[f"rnn.weight_ih_l{n}"] = delta.reshape(T * B, GH).T @ X.reshape(T * B, -1)  # (G*H, D_n)
        grads[f"rnn.bias_ih_l{n}"] = delta.sum(axis=(0, 1))
        grads[f"rnn.weight_hh_l{n}"] = delta_hh.reshape(T * B, GH).T @ Hprev.reshape(T * B, -1)  # (G*H, H)
        grads[f"rnn.bias_hh_l{n}"] = delta_hh.sum(axis=(0, 1))

    def _layer_bptt(self, n: int, dS: np.ndarray, record, grads: dict) -> np.ndarray:
        """Plain (untruncated) BPTT through layer n: the twin's bptt (tutorial.py) for a whole
        batch. dS (T, B, H): the error arriving at each output s_t from above (the twin's
        V^T delta_o[t]). Adds the layer's weight gradients to `grads`; returns the error at the
        layer's input (T, B, D_n)."""
        _, _, caches, _ = record
        W_ih = self.params[f"rnn.weight_ih_l{n}"]
        T, B, H = dS.shape
        delta = np.empty((T, B, W_ih.shape[0]), dtype=self.dtype)  # (T, B, G*H): delta_t of every step
        delta_hh = np.empty_like(delta) if self.config.cell == "gru" else delta
        carry = self._zero_state((B, H))  # W^T delta_{t+1}: the error from step t+1 (lstm: and dc)
        # delta_t = (error from the output at t + W^T delta_{t+1}) * (1 - s_t^2)   (gru, lstm: cells.py)
        for t in reversed(range(T)):
            ds_t = (dS[t] + carry[0],) + carry[1:]  # dL/ds_t, (B, H)
            delta[t], delta_hh[t], carry = self._step_backward(ds_t, caches[t])
        # the carried hidden from before the window gets no gradient (stream mode)
        self._weight_gradients(n, record, delta, delta_hh, grads)
        return delta @ W_ih  # (T, B, G*H) @ (G*H, D_n): the twin's dLdU[:, x_t] += delta_t

    def _layer_bptt_truncated(self, n: int, dS: np.ndarray, record, grads: dict, per_age: bool) -> np.ndarray:
        """Truncated BPTT through layer n: the twin's inner loop
        ``for bptt_step in reversed(range(max(0, t - bptt_truncate), t + 1))`` for every output t
        at once. dS (T, A, B, H), A = bptt_truncate + 1: the error arriving at s_t, split by its
        age a = (the step of the output it came from) - t. One step back ages every slice by
        one, and the slice of age bptt_truncate, which has gone as far back as it may, is
        dropped. Returns the error at the layer's input, by age (T, A, B, D_n) when `per_age`
        (the layer below truncates the same errors), else summed over ages (T, B, D_n)."""
        _, _, caches, _ = record
        W_ih = self.params[f"rnn.weight_ih_l{n}"]
        T, A, B, H = dS.shape
        GH = W_ih.shape[0]
        delta = np.empty((T, B, GH), dtype=self.dtype)  # delta_t summed over ages (all dLdU, dLdW need)
        delta_hh = np.empty_like(delta) if self.config.cell == "gru" else delta
        dX = np.empty((T, A, B, W_ih.shape[1]), dtype=self.dtype) if per_age else None  # (T, A, B, D_n)
        carry = self._zero_state((A, B, H))
        for t in reversed(range(T)):
            ds_t = (dS[t] + carry[0],) + carry[1:]  # (A, B, H)
            delta_t, delta_hh_t, carry = self._step_backward(ds_t, caches[t])  # (A, B, G*H) x2
            delta[t] = delta_t.sum(axis=0)
            if delta_hh is not delta:
                delta_hh[t] = delta_hh_t.sum(axis=0)
            if per_age:
                dX[t] = delta_t @ W_ih
            carry = tuple(_one_step_older(d) for d in carry)  # age bptt_truncate stops here
        self._weight_gradients(n, record, delta, delta_hh, grads)
        return dX if per_age else delta @ W_ih

    def _bptt(self, dtop: np.ndarray, records: list, grads: dict) -> np.ndarray:
        """Plain BPTT down the stack: dtop (T, B, H), the error at the top outputs -> the error
        at the embedding's output (T, B, D)."""
        dS = dtop
        for n in reversed(range(self.config.num_layers)):
            out_mask = records[n][3]
            if out_mask is not None:
                dS = dS * out_mask
            dS = self._layer_bptt(n, dS, records[n], grads)
        return dS

    def _bptt_truncated(self, dtop: np.ndarray, records: list, grads: dict, bptt_truncate: int) -> np.ndarray:
        """Truncated BPTT down the stack: every output's error goes back bptt_truncate steps at
        most, in every layer (the ages travel down with it). (T, B, H) -> (T, B, D)."""
        T, B, H = dtop.shape
        dS = np.zeros((T, bptt_truncate + 1, B, H), dtype=self.dtype)  # (T, A, B, H)
        dS[:, 0] = dtop  # age 0: the error of the output at this very step
        for n in reversed(range(self.config.num_layers)):
            out_mask = records[n][3]
            if out_mask is not None:
                dS = dS * out_mask[:, None]
            dS = self._layer_bptt_truncated(n, dS, records[n], grads, per_age=n > 0)
        return dS

    def forward_backward(self, x, y, mask=None, hidden=None, bptt_truncate: int = 0, *, dropout_rng=None,
                         sparse: bool = False):
        """Loss and gradients of the SUMMED loss: (loss_sum, num_tokens, grads, final hidden).

        `dropout_rng` (a numpy Generator): apply the config's dropout with masks drawn from it
        (Trainer does this); None = no dropout. `sparse` (the Trainer's, for untied weights):
        the embedding's gradient is a RowGrad of the rows the window used, and parameters whose
        gradient is zero because no target reached them (adaptive-softmax tail clusters) are
        left out; otherwise every gradient is a dense array, in parameter order."""
        cfg = self.config
        x, y = self._check_ids(x, "x"), self._check_ids(y, "y")
        if x.shape != y.shape:
            raise ValueError(f"x shape {x.shape} does not match y shape {y.shape}")
        m = self._mask(y, mask)
        T, B = x.shape
        bptt_truncate = int(bptt_truncate)
        if bptt_truncate < 0:
            raise ValueError(f"bptt_truncate must be >= 0, got {bptt_truncate}")
        hid = self._tuples(hidden, B)
        Htop, hid, (emb_mask, records) = self._stack_forward(x, hid, rng=dropout_rng, keep=True)
        H = cfg.hidden_dim
        # o_t = softmax(V s_t + c) (or the adaptive softmax): loss and gradients, a block of rows at a time
        loss, dtop, grads = self.output.loss_backward(Htop.reshape(T * B, H), y.ravel(), m.ravel())
        dtop = dtop.reshape(T, B, H)  # the twin's V^T delta_o[t], every row
        if 0 < bptt_truncate < T - 1:
            dE = self._bptt_truncated(dtop, records, grads, bptt_truncate)  # (T, B, D)
        else:  # 0, or bptt_truncate >= T-1, which reaches step 0 from every output: plain BPTT
            dE = self._bptt(dtop, records, grads)  # (T, B, D)
        if emb_mask is not None:
            dE = dE * emb_mask
        grads["embedding.weight"] = self._embedding_gradient(x, dE, grads, sparse and not cfg.tie_weights)
        if sparse:
            grads = {name: grads[name] for name in self.params if name in grads}
        else:  # parameter order, zeros where no target reached
            grads = {name: grads[name] if name in grads else np.zeros_like(w) for name, w in self.params.items()}
        return loss, int(np.count_nonzero(m)), grads, self._public(hid)

    def _embedding_gradient(self, x: np.ndarray, dE: np.ndarray, grads: dict, sparse: bool):
        """Scatter-add the error at each looked-up row: a dense (K, D) array, or a RowGrad of
        the distinct ids of x. A tied decoder's weight gradient is added (and its entry removed)."""
        D = dE.shape[-1]
        if sparse:
            rows, inverse = np.unique(x.ravel(), return_inverse=True)
            values = np.zeros((len(rows), D), dtype=self.dtype)
            np.add.at(values, inverse.ravel(), dE.reshape(-1, D))
            return RowGrad(rows, values)
        dEmb = np.zeros_like(self.params["embedding.weight"])
        np.add.at(dEmb, x.ravel(), dE.reshape(-1, D))  # scatter-add rows of the looked-up ids
        if self.config.tie_weights:
            dEmb += grads.pop("decoder.weight")
        return dEmb


def _one_step_older(d: np.ndarray) -> np.ndarray:
    """(A, B, H) errors by age -> the same errors one step further back: age a becomes a + 1,
    the oldest (age A-1 = bptt_truncate) is dropped and age 0 starts empty."""
    return np.concatenate([np.zeros_like(d[:1]), d[:-1]], axis=0)
