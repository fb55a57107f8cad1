"""Learning-rate schedules for the training driver.

- constant: lr stays put (after an optional linear warm-up).
- plateau: lr *= lr_decay whenever validation loss fails to improve (Zaremba et al., the
  PyTorch word_language_model example).
- halve-on-rise: the tutorial's rule: lr *= lr_decay when the training loss of an epoch is
  higher than the previous epoch's.
- cosine: linear warm-up, then cosine decay to zero over the planned number of steps.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ..config import TrainConfig


def scaled_lr(cfg: TrainConfig, world_size: int = 1) -> float:
    """The lr for this run's global batch: lr x (B_global / lr_base_batch) for `linear`
    (Goyal et al. 2017, with warm-up), its square root for `sqrt` (for adaptive optimizers)."""
    ratio = cfg.batch_size * world_size / cfg.lr_base_batch
    return cfg.lr * {"none": 1.0, "linear": ratio, "sqrt": math.sqrt(ratio)}[cfg.lr_scaling]


@dataclass
class Schedule:
    kind: str
    base_lr: float  # current base lr (plateau / halve-on-rise lower it)
    decay: float
    warmup: int
    total_steps: int
    prev_train_loss: float = math.inf

    @classmethod
    def from_config(cls, cfg: TrainConfig, total_steps: int, world_size: int = 1) -> Schedule:
        return cls(cfg.schedule, scaled_lr(cfg, world_size), cfg.lr_decay, cfg.warmup_steps, max(1, total_steps))

    def lr_at(self, step: int) -> float:
        """The lr for update number `step` (0-based)."""
        if self.warmup and step < self.warmup:
            return self.base_lr * (step + 1) / self.warmup
        if self.kind == "cosine":
            span = max(1, self.total_steps - self.warmup)
            done = min(1.0, (step - self.warmup) / span)  # the fraction of the decay behind
            return self.base_lr * 0.5 * (1.0 + math.cos(math.pi * done))
        return self.base_lr

    def after_eval(self, improved: bool) -> bool:
        """Called after each validation; returns True when the lr was lowered."""
        if self.kind == "plateau" and not improved:
            self.base_lr *= self.decay
            return True
        return False

    def after_epoch(self, train_loss: float) -> bool:
        """Called after each epoch with its mean training loss; returns True when the lr was lowered."""
        lowered = self.kind == "halve-on-rise" and train_loss > self.prev_train_loss
        if lowered:
            self.base_lr *= self.decay
        self.prev_train_loss = train_loss
        return lowered

    def to_dict(self) -> dict:
        d = asdict(self)
        d["prev_train_loss"] = None if math.isinf(self.prev_train_loss) else self.prev_train_loss
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Schedule:
        d = dict(d)
        d["prev_train_loss"] = math.inf if d.get("prev_train_loss") is None else d["prev_train_loss"]
        return cls(**d)
