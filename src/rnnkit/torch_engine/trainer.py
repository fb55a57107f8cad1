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

Mixed precision (CUDA only): amp "bf16" autocasts to bfloat16; "fp16" autocasts to float16
with a GradScaler (steps whose scaled gradients overflow are skipped, as GradScaler does).
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from ..config import TrainConfig
from ..errors import CheckpointError, ConfigError, NonFiniteError
from . import distributed
from .model import RNNLM

_MOMENTS = {"sgd": (), "rmsprop": ("square_avg",), "adam": ("exp_avg", "exp_avg_sq")}
# the numpy engine's optimizer slot names -> torch.optim's
_FROM_NUMPY = {"sgd": {}, "rmsprop": {"v": "square_avg"}, "adam": {"m": "exp_avg", "v": "exp_avg_sq"}}


def _grad_scaler():
    """A CUDA GradScaler (torch.amp since 2.3, torch.cuda.amp before)."""
    if hasattr(torch, "amp") and hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler("cuda")
    return torch.cuda.amp.GradScaler()


class Trainer:
    """Optimizer, clipping and the training step for a torch_engine.RNNLM."""

    def __init__(self, model: RNNLM, train: TrainConfig):
        train.validate()
        if train.bptt_truncate:
            raise ConfigError("bptt_truncate is only supported by the numpy engine "
                              f"(got bptt_truncate={train.bptt_truncate}); use engine numpy or 0")
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
        return torch.optim.Adam(self.params, lr=train.lr, betas=(0.9, 0.999), eps=1e-8)

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
        """One update on the window (x, y, mask); returns (loss_sum, num_tokens, hidden)."""
        x = np.asarray(x)
        model, step_no = self.model, self.steps + 1
        self.net.train()
        self.optimizer.zero_grad(set_to_none=True)
        if model.device.type == "cpu":  # fused chunked decoder + loss: the logits are never stored whole
            m = np.ones(x.shape, dtype=np.float32) if mask is None else np.asarray(mask, dtype=np.float32)
            loss_sum, packed = self.net(model._ids(x), model.pack_hidden(hidden, x.shape[1]), y=model._ids(y, "y"),
                                        mask=torch.as_tensor(m, device=model.device))
            n = int(np.count_nonzero(m))
        else:
            with self._autocast():
                logits, packed = self.net(model._ids(x), model.pack_hidden(hidden, x.shape[1]))
            if self._autocast_dtype is not None:
                logits = logits.float()
            loss_sum, n = model.loss_terms(logits, y, mask)
        count = float(n if self.train.loss_reduction == "token" else x.shape[1])
        loss_val = float(loss_sum.detach())
        if self.world_size > 1:
            # one collective: the global count, and the global loss so that every rank
            # agrees on raising NonFiniteError (a rank raising alone would hang the others)
            total, global_loss, global_n = distributed.all_reduce_sums([count, loss_val, float(n)], model.device)
            scale = self.world_size / total if total > 0 else 0.0
            self.global_tokens = round(global_n)
        else:
            global_loss, scale = loss_val, (1.0 / count if count > 0 else 0.0)
            self.global_tokens = n
        if not math.isfinite(global_loss):
            raise NonFiniteError(f"step {step_no}: loss is {global_loss} (non-finite); "
                                 "weights left unchanged")
        objective = loss_sum * scale
        if self.scaler is not None:
            self.scaler.scale(objective).backward()
        else:
            objective.backward()
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        for p in self.params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        grads = [p.grad for p in self.params]
        if self.train.weight_decay:
            for p, g in zip(self.params, grads):
                g.add_(p.detach(), alpha=self.train.weight_decay)
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        norm_val = float(norm)
        if not math.isfinite(norm_val):
            if self.scaler is not None:  # fp16 overflow: GradScaler skips the step, lowers scale
                self.scaler.step(self.optimizer)
                self.scaler.update()
                return loss_val, n, model.unpack_hidden(packed)
            bad = next(name for (name, _), g in zip(self.named, grads)
                       if not bool(torch.isfinite(g).all()))
            raise NonFiniteError(f"step {step_no}: gradient of {bad} is non-finite; "
                                 "weights left unchanged")
        if self.train.clip > 0 and norm_val > self.train.clip:
            coef = self.train.clip / norm_val
            for g in grads:
                g.mul_(coef)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.steps += 1
        return loss_val, n, model.unpack_hidden(packed)

    # ------------------------------------------------------------------ resume
    def state_dict(self) -> dict[str, np.ndarray]:
        """Optimizer moments (optim.<moment>.<param name>), optim.step, optim.lr, RNG states
        (rng.torch_cpu, rng.torch_cuda: uint8) and the fp16 loss scale; all numpy arrays."""
        out: dict[str, np.ndarray] = {"optim.step": np.asarray(self.steps, dtype=np.int64),
                                      "optim.lr": np.asarray(self.lr, dtype=np.float64)}
        for name, p in self.named:
            st = self.optimizer.state.get(p, {})
            for key in _MOMENTS[self.train.optimizer]:
                if key in st:
                    out[f"optim.{key}.{name}"] = st[key].detach().cpu().numpy().copy()
        out["rng.torch_cpu"] = torch.get_rng_state().numpy().copy()
        if self.model.device.type == "cuda":
            out["rng.torch_cuda"] = torch.cuda.get_rng_state(self.model.device).numpy().copy()
        if self.scaler is not None:
            sc = self.scaler.state_dict()
            out["amp.scale"] = np.asarray(sc["scale"], dtype=np.float64)
            out["amp.growth_tracker"] = np.asarray(sc["_growth_tracker"], dtype=np.int64)
        return out

    def _from_numpy_names(self, d: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The numpy engine's trainer state (step, lr, optimizer.m.<p>, optimizer.v.<p>) in
        this engine's names. Its dropout RNG (a numpy Generator) does not carry over."""
        out = {"optim.step": d["step"]}
        if "lr" in d:
            out["optim.lr"] = d["lr"]
        rename = _FROM_NUMPY[self.train.optimizer]
        for k, v in d.items():
            parts = k.split(".", 2)
            if len(parts) == 3 and parts[0] == "optimizer" and parts[1] in rename:
                out[f"optim.{rename[parts[1]]}.{parts[2]}"] = v
        return out

    def load_state_dict(self, d: dict[str, np.ndarray]) -> None:
        """Restore what state_dict() wrote (or the numpy engine's Trainer.state_dict(), for
        switching engines mid-run); moments missing for a parameter start at zero."""
        if "optim.step" not in d and "step" in d:
            d = self._from_numpy_names(d)
        if "optim.step" not in d:
            raise CheckpointError("trainer state: optim.step is missing")
        self.steps = int(np.asarray(d["optim.step"]))
        if "optim.lr" in d:
            self.lr = float(np.asarray(d["optim.lr"]))
        sd = self.optimizer.state_dict()
        state = {}
        for i, (name, p) in enumerate(self.named):
            moments = {k: torch.as_tensor(np.asarray(d[f"optim.{k}.{name}"]))
                       for k in _MOMENTS[self.train.optimizer] if f"optim.{k}.{name}" in d}
            if moments:
                for k, v in moments.items():
                    if tuple(v.shape) != tuple(p.shape):
                        raise CheckpointError(f"trainer state: optim.{k}.{name} has shape "
                                          f"{tuple(v.shape)}, expected {tuple(p.shape)}")
                moments["step"] = torch.tensor(float(self.steps))
                state[i] = moments
        sd["state"] = state
        self.optimizer.load_state_dict(sd)
        if "rng.torch_cpu" in d:
            torch.set_rng_state(torch.as_tensor(np.asarray(d["rng.torch_cpu"], dtype=np.uint8)))
        if "rng.torch_cuda" in d and self.model.device.type == "cuda":
            torch.cuda.set_rng_state(torch.as_tensor(np.asarray(d["rng.torch_cuda"],
                                                                dtype=np.uint8)), self.model.device)
        if self.scaler is not None and "amp.scale" in d:
            sc = self.scaler.state_dict()
            sc["scale"] = float(np.asarray(d["amp.scale"]))
            sc["_growth_tracker"] = int(np.asarray(d.get("amp.growth_tracker", 0)))
            self.scaler.load_state_dict(sc)
