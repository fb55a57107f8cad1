"""Resume points: the state of a run in MODEL_DIR/trainer_state/, written whole or not at all.

    trainer_state/
      config.json vocab.json model.safetensors   the current weights (a loadable model directory)
      optimizer.safetensors                      the engine Trainer's state (opaque here) and the
                                                 carried hidden state (arrays named carry.*)
      state.json                                 the run's progress, its schedule, its train options
                                                 ("train") and its data ("data": training.corpus.data_identity;
                                                 absent in resume points of rnnkit 0.1.0)

The directory is written beside its final place and swapped in with two renames
(`checkpoint.replace_dir`), so a kill at any moment leaves either the previous state or the
new one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import checkpoint, files
from ..config import ModelConfig, TokenizerConfig, TrainConfig
from ..errors import CheckpointError
from ..text import Vocab
from .progress import Progress
from .schedule import Schedule

DIRNAME = "trainer_state"
HIDDEN_PREFIX = "carry."  # the on-disk name of the carried hidden state's arrays


@dataclass
class ResumePoint:
    """Everything a run needs to go on exactly where it was."""

    model_cfg: ModelConfig
    vocab: Vocab
    params: dict[str, np.ndarray]
    optimizer: dict[str, np.ndarray]  # the engine Trainer's state_dict(), passed through as is
    hidden: list | None  # the hidden state carried into the next window (stream mode), else None
    progress: Progress
    schedule: Schedule
    tok_cfg: TokenizerConfig | None = None  # read back: the saved run's tokenizer options
    train: dict[str, Any] = field(default_factory=dict)  # read back: its train options as saved
    data: dict[str, Any] | None = None  # read back: its data identity (None: not recorded)


def hidden_to_arrays(hidden) -> dict[str, np.ndarray]:
    """A hidden state (numpy or torch, per layer h or (h, c)) as named numpy arrays."""
    def arr(t):
        return t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)

    out = {}
    for n, layer in enumerate(hidden):
        pair = layer if isinstance(layer, (tuple, list)) else (layer,)
        for part, a in zip("hc", pair):
            out[f"{HIDDEN_PREFIX}l{n}.{part}"] = arr(a)
    return out


def hidden_from_arrays(d: dict[str, np.ndarray]) -> list:
    """Inverse of hidden_to_arrays (numpy arrays; both engines accept them)."""
    layers = sorted({int(k[len(HIDDEN_PREFIX) + 1:].split(".")[0]) for k in d})
    out = []
    for n in layers:
        h, c = d[f"{HIDDEN_PREFIX}l{n}.h"], d.get(f"{HIDDEN_PREFIX}l{n}.c")
        out.append(h if c is None else (h, c))
    return out


def save_resume_point(out: Path, point: ResumePoint, cfg: TrainConfig, tok_cfg: TokenizerConfig,
                      data: dict[str, Any] | None = None) -> None:
    """Write `point` to out/trainer_state/ (with the run's options and `data`, what it trains
    on), replacing the previous one atomically."""
    arrays = dict(point.optimizer)
    if point.hidden is not None:
        arrays.update(hidden_to_arrays(point.hidden))
    state = {**point.progress.to_dict(), "schedule": point.schedule.to_dict(), "train": cfg.to_dict(),
             **({"data": data} if data is not None else {})}
    with files.staged_dir(Path(out) / DIRNAME) as tmp:  # built whole beside the old one, then swapped in
        checkpoint.save(tmp, point.model_cfg, tok_cfg, point.vocab, point.params)
        checkpoint.save_tensors(tmp / "optimizer.safetensors", arrays)
        checkpoint.atomic_write_json(tmp / "state.json", state)


def load_resume_point(out: Path) -> ResumePoint | None:
    """The resume point of an interrupted run in `out`, or None when there is none yet (whether
    the run may go on with the options given: `training.options.resolve`)."""
    final = Path(out) / DIRNAME
    checkpoint.recover_dir(final)
    if not final.is_dir():
        return None
    ck = checkpoint.load(final)
    state = _read_state(final / "state.json")
    arrays = checkpoint.load_tensors(final / "optimizer.safetensors")
    hidden = {k: v for k, v in arrays.items() if k.startswith(HIDDEN_PREFIX)}
    optimizer = {k: v for k, v in arrays.items() if not k.startswith(HIDDEN_PREFIX)}
    return ResumePoint(ck.model, ck.vocab, ck.params, optimizer, hidden_from_arrays(hidden) if hidden else None,
                       Progress.from_dict(state), Schedule.from_dict(state["schedule"]),
                       ck.tokenizer, state.get("train", {}), state.get("data"))


def _read_state(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: cannot read ({e})") from None
