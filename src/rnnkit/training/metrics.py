"""metrics.jsonl beside the model: one JSON row per stretch of training and per evaluation.

    {"kind": "train", "step", "epoch", "tokens", "seconds", "lr", "train_loss"}   about 20 an epoch
    {"kind": "valid", "step", "epoch", "tokens", "seconds", "lr", "valid_loss", "valid_ppl", ...}

A resumed run keeps the rows up to its resume point and drops the later ones (written after
the last save by the run that was interrupted), so the file reads as one run. The rows are strict
JSON (rnnkit.files.dumps: an infinite perplexity is null with "valid_ppl_note": "infinite"),
and a write that fails (no space left, read-only) is one OutputError line naming the file.
"""

from __future__ import annotations

import json
from pathlib import Path

from .. import files
from .progress import Progress

FILENAME = "metrics.jsonl"


class Metrics:
    """The rows of a run: kept in memory (the result's history) and appended to the file."""

    def __init__(self, out: Path, steps_per_epoch: int, *, resumed_at: int | None = None, write: bool = True):
        self.path, self.write = Path(out) / FILENAME, write
        self.steps_per_epoch = steps_per_epoch
        self.every = max(1, steps_per_epoch // 20)  # a training row every this many steps
        self.rows = _read_rows(self.path, resumed_at) if resumed_at is not None else []
        self.nats, self.count = 0.0, 0  # training loss since the last training row
        if write:
            files.make_dir(self.path.parent)
            files.atomic_write_bytes(self.path, "".join(_line(r) for r in self.rows).encode("utf-8"))

    def row(self, kind: str, progress: Progress, *, seconds: float, lr: float, **values) -> dict:
        """Add one row: where the run stands, then `values`."""
        row = {"kind": kind, "step": progress.step, "epoch": progress.epochs_done(self.steps_per_epoch),
               "tokens": progress.tokens, "seconds": round(seconds, 3), "lr": lr, **values}
        self.rows.append(row)
        if self.write:
            files.append_text(self.path, _line(row))
        return row

    def training(self, progress: Progress, nats: float, count: int, *, seconds: float, lr: float) -> None:
        """Count one update's loss; every `every` steps add their mean as a training row."""
        self.nats, self.count = self.nats + nats, self.count + count
        if progress.step % self.every == 0 and self.count:
            self.row("train", progress, seconds=seconds, lr=lr, train_loss=self.nats / self.count)
            self.nats, self.count = 0.0, 0


def _line(row: dict) -> str:
    """A row as a line of strict JSON (a NaN or infinite value: null and KEY_note)."""
    return files.dumps(row, ensure_ascii=True) + "\n"


def _read_rows(path: Path, upto_step: int) -> list[dict]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a kill
        if row.get("step", 0) <= upto_step:
            rows.append(row)
    return rows
