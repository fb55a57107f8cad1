"""Trainer: one training step of the numpy engine (forward, BPTT, scale, decay, clip, update).

    loss, n, grads = model.forward_backward(x, y, mask, hidden, bptt_truncate, sparse=...)
    grads /= n (loss_reduction "token")  or  / B ("sentence": the tutorial's summed loss per sentence)
    grads += weight_decay * params
    clip the global norm of grads to `clip` (0 = off)
    optimizer update with the current `lr` (settable; the training driver runs the schedule)

Without weight decay and tied weights (`sparse_embedding`) the embedding's gradient is a
RowGrad of the rows the batch looked up, never a dense (K, D) array; with SGD on top
(`sparse_step`) only those rows are updated, and the adaptive softmax's tail clusters that no
target reached are not touched. RMSprop and Adam get zeros for those (their moments decay).
Either way the numbers are those of the dense step (see optim.py). Weight decay (a term on
every entry) and tied weights (the decoder's gradient covers every row) are dense.

A NaN/Inf loss or gradient raises NonFiniteError before anything changes. Dropout masks come
from the Trainer's own Generator (``np.random.default_rng(train.seed)``).

``state_dict()`` holds only numpy arrays, named by the scheme of rnnkit.trainer_keys: ``step``,
``lr``, ``rng.numpy`` (the dropout Generator's ``bit_generator.state`` as JSON in a uint8
array) and the optimizer's moments ``optimizer.m.<param>`` / ``optimizer.v.<param>``.
``load_state_dict`` also takes what rnnkit 0.1.0 wrote, and the torch engine's trainer state
(the dropout Generator then starts afresh from ``train.seed``).
"""

from __future__ import annotations

import json

import numpy as np

from .. import trainer_keys as keys
from ..config import TrainConfig
from ..errors import NonFiniteError
from ..params import param_shapes
from .model import RNNLM
from .optim import clip_by_global_norm_, entries, make_optimizer


def rng_to_array(rng: np.random.Generator) -> np.ndarray:
    """A Generator's state as a uint8 array (UTF-8 JSON of bit_generator.state)."""
    return np.frombuffer(json.dumps(rng.bit_generator.state).encode("utf-8"), dtype=np.uint8).copy()


def rng_from_array(a: np.ndarray) -> np.random.Generator:
    state = json.loads(np.asarray(a, dtype=np.uint8).tobytes().decode("utf-8"))
    bitgen = getattr(np.random, state["bit_generator"])()
    bitgen.state = state
    return np.random.Generator(bitgen)


class Trainer:
    """Optimizer, clipping and the training step for a numpy_engine.RNNLM (docs/contracts.md)."""

    def __init__(self, model: RNNLM, train: TrainConfig):
        train.validate()
        self.model = model
        self.train = train
        self.lr = float(train.lr)
        self.optimizer = make_optimizer(train.optimizer, model.params)
        self.rng = np.random.default_rng(train.seed)
        self.steps = 0  # updates done
        self.last_grad_norm = 0.0  # global norm before clipping, of the last step
        # the embedding's gradient as the rows a batch touches; SGD then updates only those
        self.sparse_embedding = not train.weight_decay and not model.config.tie_weights
        self.sparse_step = self.sparse_embedding and train.optimizer == "sgd"

    def step(self, x, y, mask=None, hidden=None):
        """One update. Returns (loss_sum, num_tokens, final hidden detached from the graph)."""
        loss, ntok, grads, hidden = self._gradients(x, y, mask, hidden)
        self._check_finite(loss, grads)
        self._scale_and_decay(grads, ntok, np.asarray(x).shape[1])
        self.last_grad_norm = clip_by_global_norm_(grads, self.train.clip)
        self.optimizer.update(self.model.params, grads, self.lr)
        self.steps += 1
        return loss, ntok, hidden

    def _gradients(self, x, y, mask, hidden):
        """forward_backward with the Trainer's dropout and sparsity; for a dense optimizer, zeros
        for the parameters no gradient reached (tail clusters: their moments still decay)."""
        model, cfg = self.model, self.model.config
        use_dropout = cfg.dropout > 0 or cfg.embed_dropout > 0
        loss, ntok, grads, hidden = model.forward_backward(x, y, mask, hidden, self.train.bptt_truncate,
                                                           dropout_rng=self.rng if use_dropout else None,
                                                           sparse=self.sparse_embedding)
        if not self.sparse_step:
            grads = {name: grads[name] if name in grads else np.zeros_like(p) for name, p in model.params.items()}
        return loss, ntok, grads, hidden

    def _check_finite(self, loss: float, grads: dict) -> None:
        where = f"step {self.steps + 1}"
        if not np.isfinite(loss):
            raise NonFiniteError(f"{where}: loss is {loss}")
        for name, g in grads.items():
            if not np.isfinite(entries(g)).all():
                kind = "nan" if np.isnan(entries(g)).any() else "inf"
                raise NonFiniteError(f"{where}: gradient of {name} is {kind}")

    def _scale_and_decay(self, grads: dict, ntok: int, batch: int) -> None:
        """grads / num_tokens (or / batch: loss_reduction sentence), + weight_decay * params, in place."""
        tc, params = self.train, self.model.params
        divisor = max(ntok, 1) if tc.loss_reduction == "token" else batch
        for name, g in grads.items():
            a = entries(g)
            a *= a.dtype.type(1.0 / divisor)
            if tc.weight_decay:
                a += a.dtype.type(tc.weight_decay) * params[name]

    def state_dict(self) -> dict[str, np.ndarray]:
        """Step, lr, dropout RNG and optimizer moments (rnnkit.trainer_keys), as numpy arrays."""
        d = {keys.STEP: np.array(self.steps, dtype=np.int64), keys.LR: np.array(self.lr, dtype=np.float64),
             keys.RNG_NUMPY: rng_to_array(self.rng)}
        for moment, arrays in self.optimizer.slots.items():
            for name, v in arrays.items():
                d[keys.moment_key(moment, name)] = v.copy()
        return d

    def load_state_dict(self, d: dict[str, np.ndarray]) -> None:
        """Restore a state_dict() (this engine's, the torch engine's or rnnkit 0.1.0's)."""
        d = keys.translate(d)
        steps, lr = keys.read_progress(d)
        moments = keys.read_moments(d, self.train.optimizer, self.optimizer.slot_names,
                                    param_shapes(self.model.config))
        self.optimizer.set_state(steps, moments)
        self.steps, self.lr = steps, lr
        if keys.RNG_NUMPY in d:
            self.rng = rng_from_array(d[keys.RNG_NUMPY])
