"""The run's progress: where a training run stands, the record saved in trainer_state/state.json.

Its keys are those of the loose dict that earlier releases kept (step, epoch, batch, tokens,
seconds, best_loss, bad_evals, epoch_nats, epoch_count), so a trainer state written by 0.1.0
resumes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass
class Progress:
    step: int = 0  # updates done in the whole run
    epoch: int = 0  # epochs finished
    batch: int = 0  # updates done in the current epoch: where in its batches the run stands
    tokens: int = 0  # training targets seen, over all processes
    seconds: float = 0.0  # the run's time (its clock) at the last save
    best_loss: float | None = None  # the best loss of the regular evaluations (plateau, early stop)
    bad_evals: int = 0  # regular evaluations since the last one that improved on best_loss
    epoch_nats: float = 0.0  # summed training loss of the current epoch (this process)
    epoch_count: int = 0  # and its number of targets

    def count_step(self, nats: float, count: int, tokens: int) -> None:
        """One update done: `nats` over `count` targets here, `tokens` targets over all processes."""
        self.step += 1
        self.batch += 1
        self.tokens += tokens
        self.epoch_nats += nats
        self.epoch_count += count

    @property
    def epoch_loss(self) -> float | None:
        """The mean training loss of the current epoch so far (None before its first update)."""
        return self.epoch_nats / self.epoch_count if self.epoch_count else None

    def epochs_done(self, steps_per_epoch: int) -> float:
        """Epochs as a fraction: 1.5 is half way through the second."""
        return self.epoch + self.batch / max(steps_per_epoch, 1)

    def judge(self, loss: float) -> bool:
        """A regular evaluation's loss: True when it beats best_loss (which it then becomes);
        otherwise one more bad evaluation."""
        improved = self.best_loss is None or loss < self.best_loss
        if improved:
            self.best_loss, self.bad_evals = loss, 0
        else:
            self.bad_evals += 1
        return improved

    def next_epoch(self) -> None:
        self.epoch += 1
        self.batch, self.epoch_nats, self.epoch_count = 0, 0.0, 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Progress:
        """From state.json (its other keys, "schedule" and "train", are not progress)."""
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})
