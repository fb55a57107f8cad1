"""The torch engine's Trainer: one training step = forward, BPTT, weight decay, clip, update.

Same shape as numpy_engine.Trainer (docs/contracts.md). The loss is the SUM of nats over the
mask, scaled by 1/num_tokens (loss_reduction "token") or 1/B ("sentence") before backward.
Weight decay is an L2 term added to the gradient before clipping (not decoupled); the
global gradient norm is clipped to `train.clip` (0 = off). A NaN/Inf loss or gradient
raises NonFiniteError before the update, naming the step and the parameter.

Under torch.distributed with more than one process the module is wrapped in
DistributedDataParallel; the token (or sequence) count is all-reduced first and the loss
is scaled by world_size / global_count, so after DDP's averaging every rank holds the
gradient of the global sum / global count: 2 ranks with batch B equal 1 rank with batch 2B.

The embedding's gradient covers only the rows a batch looked up. With untied weights and one
process (`sparse_embedding`) the embedding hands back a sparse gradient (coalesced: one row per
distinct id), and then:
- SGD without weight decay (`sparse_step`) updates only those rows, and leaves alone a
  parameter that got no gradient (an adaptive-softmax tail cluster no target reached): the
  same numbers as the dense step, whose gradients there are zero;
- Adam, RMSprop and weight decay, whose updates move every entry each step, get the rows
  written into a zero (K, D) buffer kept between steps (the previous step's rows are cleared
  first) instead of a freshly allocated and zeroed dense gradient each step.
Adam on the CPU is PyTorch's fused one (the same update in one pass over each tensor).

Mixed precision (CUDA only): amp "bf16" autocasts to bfloat16; "fp16" autocasts to float16
with a GradScaler (steps whose scaled gradients overflow are skipped, as GradScaler does).

``state_dict()`` holds numpy arrays named by the scheme of rnnkit.trainer_keys: ``step``,
``lr``, the moments ``optimizer.m.<param>`` (Adam's exp_avg) and ``optimizer.v.<param>``
(Adam's exp_avg_sq, RMSprop's square_avg), ``rng.torch_cpu`` (and ``rng.torch_cuda`` on a
GPU) and, with fp16, ``amp.scale`` / ``amp.growth_tracker``. ``load_state_dict`` also takes
what rnnkit 0.1.0 wrote and the numpy engine's trainer state (whose dropout Generator does
not carry over: torch's generators keep the state they have).
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from .. import trainer_keys as keys
from ..config import TrainConfig
from ..errors import ConfigError, NonFiniteError
from ..params import param_shapes
from . import distributed
from .model import RNNLM, refuse_bptt_truncate

# the moments of the trainer-state scheme (rnnkit.trainer_keys) -> torch.optim's state names
_TORCH_MOMENTS = {"sgd": {}, "rmsprop": {"v": "square_avg"}, "adam": {"m": "exp_avg", "v": "exp_avg_sq"}}


def _entries(g: torch.Tensor) -> torch.Tensor:
    """The stored entries of a gradient: itself, or a (coalesced) sparse one's values."""
    return g._values() if g.is_sparse else g


def _grad_scaler():
    """A CUDA GradScaler (torch.amp since 2.3, torch.cuda.amp before)."""
    if hasattr(torch, "amp") and hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler("cuda")
    return torch.cuda.amp.GradScaler()


class Trainer:
    """Optimizer, clipping and the training step for a torch_engine.RNNLM."""

    def __init__(self, model: RNNLM, train: TrainConfig):
        train.validate()
        refuse_bptt_truncate(train.bptt_truncate)
        self.model = model
        self.train = train
        self.steps = 0  # completed updates
        self.global_tokens = 0  # tokens in the last step, summed over all ranks
        dev = model.device
        if train.amp != "off":
            if dev.type != "cuda":
                raise ConfigError(f"amp: mixed precision ({train.amp}) needs a CUDA device; "
                                  f"the model is on {dev} (use amp off)")
            if model.dtype != torch.float32:
                raise ConfigError(f"amp: mixed precision needs a float32 model, got {model.dtype}")
            if train.amp == "bf16" and not torch.cuda.is_bf16_supported():
                raise ConfigError("amp: bf16 is not supported by this GPU (use fp16)")
        self.scaler = _grad_scaler() if train.amp == "fp16" else None
        self._autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(train.amp)
        # Dropout draws from torch's global generator; each rank gets its own stream.
        self.rank, self.world_size = distributed.rank(), distributed.world_size()
        torch.manual_seed(train.seed + self.rank)
        self.named = model.named_parameters()
        self.params = [p for _, p in self.named]
        # the embedding's gradient as the rows a batch touches; SGD without weight decay updates only those
        self.sparse_embedding = not model.config.tie_weights and self.world_size == 1
        self.sparse_step = self.sparse_embedding and train.optimizer == "sgd" and not train.weight_decay
        self._dense_grad: torch.Tensor | None = None  # kept zero buffer for the embedding's dense gradient
        self._dirty_rows: torch.Tensor | None = None  # its rows written last (None: clear it all)
        if self.world_size > 1:
            ids = None
            if dev.type == "cuda":
                ids = [dev.index if dev.index is not None else torch.cuda.current_device()]
            self.net = DistributedDataParallel(model.module, device_ids=ids)
        else:
            self.net = model.module
        self.optimizer = self._make_optimizer(train)

    def _make_optimizer(self, train: TrainConfig) -> torch.optim.Optimizer:
        if train.optimizer == "sgd":
            return torch.optim.SGD(self.params, lr=train.lr)
        if train.optimizer == "rmsprop":
            return torch.optim.RMSprop(self.params, lr=train.lr, alpha=0.9, eps=1e-8)
        # on the CPU PyTorch's fused Adam: the same update in one pass over each tensor (~9x faster
        # than the per-operation loop on a 53M-entry embedding)
        fused = True if self.model.device.type == "cpu" else None
        return torch.optim.Adam(self.params, lr=train.lr, betas=(0.9, 0.999), eps=1e-8, fused=fused)

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    @lr.setter
    def lr(self, value: float) -> None:
        for g in self.optimizer.param_groups:
            g["lr"] = float(value)

    def _autocast(self):
        if self._autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=self._autocast_dtype)

    # ------------------------------------------------------------------ the step
    def step(self, x, y, mask=None, hidden=None):
        """One update on the window (x, y, mask); returns (loss_sum, num_tokens, hidden).

        loss_sum / count (tokens, or sequences for loss_reduction "sentence", over all ranks)
        -> backward -> weight decay -> clip the global norm -> optimizer step. A non-finite
        loss or gradient raises NonFiniteError before anything changes."""
        x = np.asarray(x)
        self.net.train()
        self.model.module.embedding.sparse = self.sparse_embedding
        self.optimizer.zero_grad(set_to_none=True)
        loss_sum, n, packed = self._forward(x, y, mask, hidden)
        loss_val = float(loss_sum.detach())
        scale = self._loss_scale(loss_val, n, x.shape[1])
        objective = loss_sum * scale
        (self.scaler.scale(objective) if self.scaler is not None else objective).backward()
        if self._clip_and_update():
            self.steps += 1
        return loss_val, n, self.model.unpack_hidden(packed)

    def _forward(self, x: np.ndarray, y, mask, hidden):
        """(summed nats as a graph tensor, unmasked token count, nn.RNN's new hidden)."""
        model = self.model
        if model.device.type == "cpu" or model.config.adaptive:  # fused chunked decoder + loss (fused.py)
            m = np.ones(x.shape, dtype=np.float32) if mask is None else np.asarray(mask, dtype=np.float32)
            with self._autocast():
                loss_sum, packed = self.net(model._ids(x), model.pack_hidden(hidden, x.shape[1]),
                                            y=model._ids(y, "y"), mask=torch.as_tensor(m, device=model.device))
            return loss_sum.float() if self._autocast_dtype else loss_sum, int(np.count_nonzero(m)), packed
        with self._autocast():
            logits, packed = self.net(model._ids(x), model.pack_hidden(hidden, x.shape[1]))
        if self._autocast_dtype is not None:
            logits = logits.float()
        loss_sum, n = model.loss_terms(logits, y, mask)
        return loss_sum, n, packed

    def _loss_scale(self, loss_val: float, n: int, batch: int) -> float:
        """1 / the global count (world_size / it under DDP, which averages gradients); raises
        NonFiniteError on a non-finite loss on any rank."""
        count = float(n if self.train.loss_reduction == "token" else batch)
        if self.world_size > 1:
            # one collective: the global count, and the global loss so that every rank
            # agrees on raising NonFiniteError (a rank raising alone would hang the others)
            total, global_loss, global_n = distributed.all_reduce_sums([count, loss_val, float(n)], self.model.device)
            scale = self.world_size / total if total > 0 else 0.0
            self.global_tokens = round(global_n)
        else:
            global_loss, scale = loss_val, (1.0 / count if count > 0 else 0.0)
            self.global_tokens = n
        if not math.isfinite(global_loss):
            raise NonFiniteError(f"step {self.steps + 1}: loss is {global_loss} (non-finite); "
                                 "weights left unchanged")
        return scale

    def _clip_and_update(self) -> bool:
        """Weight decay, clipping and the optimizer step on the gradients backward left;
        False when an fp16 overflow made GradScaler skip the step."""
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        named = self._gradients()
        grads = [g for _, g in named]
        if self.train.weight_decay:  # (every gradient dense then: weight decay turns the sparse step off)
            for p, g in zip(self.params, grads):
                g.add_(p.detach(), alpha=self.train.weight_decay)
        norm_val = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(_entries(g)) for g in grads])))
        if not math.isfinite(norm_val):
            if self.scaler is None:
                bad = next(name for name, g in named if not bool(torch.isfinite(_entries(g)).all()))
                raise NonFiniteError(f"step {self.steps + 1}: gradient of {bad} is non-finite; "
                                     "weights left unchanged")
        elif self.train.clip > 0 and norm_val > self.train.clip:
            coef = self.train.clip / norm_val
            for g in grads:
                g.mul_(coef)
        if self.scaler is None:
            self.optimizer.step()
            return True
        self.scaler.step(self.optimizer)  # skips the update itself when the gradients overflowed
        self.scaler.update()
        return math.isfinite(norm_val)

    def _gradients(self) -> list[tuple[str, torch.Tensor]]:
        """(name, gradient) of the parameters the optimizer will update: for the sparse step
        those that got one (the embedding's sparse, coalesced), else every parameter, dense
        (zeros where backward left none)."""
        out = []
        for name, p in self.named:
            g = p.grad
            if g is not None and g.is_sparse:
                g = g.coalesce() if self.sparse_step else self._densified(g.coalesce())
            elif g is None and not self.sparse_step:
                g = torch.zeros_like(p)
            p.grad = g
            if g is not None:
                out.append((name, g))
        return out

    def _densified(self, g: torch.Tensor) -> torch.Tensor:
        """A coalesced sparse gradient written into the kept dense buffer, cleared first where
        the previous step wrote (all of it after weight decay, which writes everywhere)."""
        if self._dense_grad is None:
            self._dense_grad = torch.zeros(g.shape, dtype=g.dtype, device=g.device)
        elif self._dirty_rows is None:
            self._dense_grad.zero_()
        else:
            self._dense_grad.index_fill_(0, self._dirty_rows, 0.0)
        rows = g._indices()[0]
        self._dense_grad.index_copy_(0, rows, g._values())
        self._dirty_rows = None if self.train.weight_decay else rows
        return self._dense_grad

    # ------------------------------------------------------------------ resume
    def state_dict(self) -> dict[str, np.ndarray]:
        """Step, lr, optimizer moments, RNG states and the fp16 loss scale (rnnkit.trainer_keys)."""
        out: dict[str, np.ndarray] = {keys.STEP: np.asarray(self.steps, dtype=np.int64),
                                      keys.LR: np.asarray(self.lr, dtype=np.float64)}
        for name, p in self.named:
            st = self.optimizer.state.get(p, {})
            for moment, torch_name in _TORCH_MOMENTS[self.train.optimizer].items():
                if torch_name in st:
                    out[keys.moment_key(moment, name)] = st[torch_name].detach().cpu().numpy().copy()
        out[keys.RNG_TORCH_CPU] = torch.get_rng_state().numpy().copy()
        if self.model.device.type == "cuda":
            out[keys.RNG_TORCH_CUDA] = torch.cuda.get_rng_state(self.model.device).numpy().copy()
        if self.scaler is not None:
            sc = self.scaler.state_dict()
            out[keys.AMP_SCALE] = np.asarray(sc["scale"], dtype=np.float64)
            out[keys.AMP_GROWTH_TRACKER] = np.asarray(sc["_growth_tracker"], dtype=np.int64)
        return out

    def load_state_dict(self, d: dict[str, np.ndarray]) -> None:
        """Restore a state_dict() (this engine's, the numpy engine's or rnnkit 0.1.0's)."""
        d = keys.translate(d)
        steps, lr = keys.read_progress(d)
        torch_names = _TORCH_MOMENTS[self.train.optimizer]
        moments = keys.read_moments(d, self.train.optimizer, tuple(torch_names), param_shapes(self.model.config))
        sd = self.optimizer.state_dict()
        sd["state"] = {}
        for i, (name, _) in enumerate(self.named):
            st = {torch_names[m]: torch.as_tensor(arrays[name]) for m, arrays in moments.items() if name in arrays}
            if st:
                sd["state"][i] = {**st, "step": torch.tensor(float(steps))}
        self.optimizer.load_state_dict(sd)
        self.steps, self.lr = steps, lr
        self._load_rng_and_scale(d)

    def _load_rng_and_scale(self, d: dict[str, np.ndarray]) -> None:
        """torch's generators and the fp16 loss scale, where `d` has them (a numpy-engine state does not)."""
        if keys.RNG_TORCH_CPU in d:
            torch.set_rng_state(torch.as_tensor(np.asarray(d[keys.RNG_TORCH_CPU], dtype=np.uint8)))
        if keys.RNG_TORCH_CUDA in d and self.model.device.type == "cuda":
            cuda_state = torch.as_tensor(np.asarray(d[keys.RNG_TORCH_CUDA], dtype=np.uint8))
            torch.cuda.set_rng_state(cuda_state, self.model.device)
        if self.scaler is not None and keys.AMP_SCALE in d:
            sc = self.scaler.state_dict()
            sc["scale"] = float(np.asarray(d[keys.AMP_SCALE]))
            sc["_growth_tracker"] = int(np.asarray(d.get(keys.AMP_GROWTH_TRACKER, 0)))
            self.scaler.load_state_dict(sc)
