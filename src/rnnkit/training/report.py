"""What a person watching a run sees on stderr while it trains.

On a terminal, a live tqdm bar per epoch (loss, perplexity, tokens per second), with the
run's messages printed above it. Elsewhere (a log file, a pipe), a plain line every ~5% of the
planned run between the messages, and never a carriage return. With the display off, the messages only.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from .progress import Progress

LINES_PER_RUN = 20  # off a terminal, a line every 5% of the planned run


@dataclass(frozen=True)
class Mark:
    """Where the run stood at a moment: the start of what the display reports next."""

    seconds: float
    tokens: int
    epoch: int
    epoch_nats: float
    epoch_count: int

    @classmethod
    def of(cls, progress: Progress, seconds: float) -> Mark:
        return cls(seconds, progress.tokens, progress.epoch, progress.epoch_nats, progress.epoch_count)

    def since(self, progress: Progress, seconds: float) -> tuple[float, float]:
        """(mean training loss, tokens per second) from this mark to `progress`."""
        nats, count = (self.epoch_nats, self.epoch_count) if self.epoch == progress.epoch else (0.0, 0)
        loss = (progress.epoch_nats - nats) / max(progress.epoch_count - count, 1)
        return loss, (progress.tokens - self.tokens) / max(seconds - self.seconds, 1e-9)


def loss_text(loss: float, tok_s: float) -> str:
    return f"loss {loss:.3f} ppl {math.exp(min(loss, 50)):,.1f}, {tok_s:,.0f} tok/s"


class Display:
    """The display off: the messages only. The subclasses show how training goes."""

    def __init__(self, stream: TextIO, clock: Callable[[], float]):
        self.stream, self.clock = stream, clock
        self.steps_per_epoch, self.epochs, self.planned = 1, 1, 1
        self.last = Mark(0.0, 0, 0, 0.0, 0)  # after the latest update

    def start(self, progress: Progress, steps_per_epoch: int, epochs: int, max_steps: int = 0) -> None:
        """Before the first update of this run (or of its resumed part)."""
        self.steps_per_epoch, self.epochs = max(steps_per_epoch, 1), epochs
        self.planned = max_steps or self.steps_per_epoch * max(epochs, 1)
        self.last = Mark.of(progress, self.clock())

    def update(self, progress: Progress) -> None:
        """After each update."""
        self.last = Mark.of(progress, self.clock())

    def write(self, message: str) -> None:
        print(message, file=self.stream, flush=True)

    def close(self) -> None:
        """After the last update."""


class Lines(Display):
    """Off a terminal: `step 140 (epoch 1.25/5): loss 4.123 ppl 61.8, 12,345 tok/s` every ~5% of
    the planned run (--max-steps, else the epochs): the loss and speed of the updates since the
    line before (within the epoch)."""

    def start(self, progress: Progress, steps_per_epoch: int, epochs: int, max_steps: int = 0) -> None:
        super().start(progress, steps_per_epoch, epochs, max_steps)
        self.every = max(1, round(self.planned / LINES_PER_RUN))
        self.mark = self.last

    def update(self, progress: Progress) -> None:
        super().update(progress)
        if progress.step % self.every == 0:
            where = f"step {progress.step:,} (epoch {progress.epochs_done(self.steps_per_epoch):.2f}/{self.epochs})"
            self.write(f"{where}: {loss_text(*self.mark.since(progress, self.last.seconds))}")
            self.mark = self.last


class Bar(Display):
    """On a terminal: a tqdm bar for each epoch with its mean loss and speed so far; the
    messages are printed above it."""

    bar = None

    def update(self, progress: Progress) -> None:
        if self.bar is None or self.bar_epoch != progress.epoch:
            self._open(progress)
        super().update(progress)
        loss, tok_s = self.mark.since(progress, self.last.seconds)
        self.bar.set_postfix_str(loss_text(loss, tok_s), refresh=False)
        self.bar.update(1)

    def _open(self, progress: Progress) -> None:
        from tqdm import tqdm

        self.close()
        self.mark, self.bar_epoch = self.last, progress.epoch  # the epoch's first update starts here
        self.bar = tqdm(total=self.steps_per_epoch, initial=progress.batch - 1, unit="batch", file=self.stream,
                        desc=f"epoch {progress.epoch + 1}/{self.epochs}", dynamic_ncols=True, leave=False)

    def write(self, message: str) -> None:
        from tqdm import tqdm

        tqdm.write(message, file=self.stream)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def make_display(enabled: bool, clock: Callable[[], float], stream: TextIO | None = None) -> Display:
    """A bar on a terminal, lines elsewhere; the messages only when not `enabled`."""
    stream = stream or sys.stderr
    if not enabled:
        return Display(stream, clock)
    return Bar(stream, clock) if stream.isatty() else Lines(stream, clock)
