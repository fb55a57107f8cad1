"""The resumable training state in MODEL_DIR/trainer_state/: written whole or not at all.

    trainer_state/
      config.json vocab.json model.safetensors   the current weights (a loadable model directory)
      optimizer.safetensors                      optimizer moments, RNG state, carried hidden state
      state.json                                 step, epoch, data position, schedule, train config

The directory is written beside its final place and swapped in with two renames
(`checkpoint.replace_dir`), so a kill at any moment leaves either the previous state or the
new one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import checkpoint
from ..config import ModelConfig, TokenizerConfig, TrainConfig
from ..errors import CheckpointError, ConfigError
from ..text import Vocab

DIRNAME = "trainer_state"
CARRY_PREFIX = "carry."
# options that may change between a run and its resumption
RESUMABLE_CHANGES = {"epochs", "max_steps", "max_minutes", "early_stop", "checkpoint_every", "eval_every"}


@dataclass
class Resumed:
    model_cfg: ModelConfig
    vocab: Vocab
    params: dict[str, np.ndarray]
    optimizer: dict[str, np.ndarray]
    carry: dict[str, np.ndarray]
    state: dict[str, Any]


def state_to_arrays(state) -> dict[str, np.ndarray]:
    """A carried hidden state (numpy or torch, per layer h or (h, c)) as named numpy arrays."""
    def arr(t):
        return t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)

    out = {}
    for n, layer in enumerate(state):
        if isinstance(layer, (tuple, list)):
            out[f"{CARRY_PREFIX}l{n}.h"], out[f"{CARRY_PREFIX}l{n}.c"] = arr(layer[0]), arr(layer[1])
        else:
            out[f"{CARRY_PREFIX}l{n}.h"] = arr(layer)
    return out


def state_from_arrays(d: dict[str, np.ndarray]) -> list:
    """Inverse of state_to_arrays (numpy arrays; both engines accept them)."""
    layers = sorted({int(k[len(CARRY_PREFIX) + 1:].split(".")[0]) for k in d})
    out = []
    for n in layers:
        h, c = d[f"{CARRY_PREFIX}l{n}.h"], d.get(f"{CARRY_PREFIX}l{n}.c")
        out.append(h if c is None else (h, c))
    return out


def save_trainer_state(out: Path, cfg: TrainConfig, mcfg: ModelConfig, tok_cfg: TokenizerConfig, vocab: Vocab,
                       params: dict[str, np.ndarray], optimizer: dict[str, np.ndarray], st: dict[str, Any],
                       carry) -> None:
    final = Path(out) / DIRNAME
    tmp = Path(out) / f".{DIRNAME}.tmp"
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    checkpoint.save(tmp, mcfg, tok_cfg, vocab, params)
    arrays = dict(optimizer)
    if carry is not None:
        arrays.update(state_to_arrays(carry))
    checkpoint.save_tensors(tmp / "optimizer.safetensors", arrays)
    checkpoint.atomic_write_json(tmp / "state.json", {**st, "train": cfg.to_dict()})
    checkpoint.replace_dir(tmp, final)


def load_trainer_state(out: Path, cfg: TrainConfig) -> Resumed | None:
    """The saved state of an interrupted run in `out`, or None when there is none yet."""
    final = Path(out) / DIRNAME
    checkpoint.recover_dir(final)
    if not final.is_dir():
        return None
    ck = checkpoint.load(final)
    path = final / "state.json"
    try:
        st = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: cannot read ({e})") from None
    saved = st.pop("train", {})
    diff = sorted(k for k, v in cfg.to_dict().items() if k not in RESUMABLE_CHANGES and saved.get(k) != v)
    if diff:
        raise ConfigError("--resume with different options than the saved run: "
                          + ", ".join(f"{k} (saved {saved.get(k)!r}, now {getattr(cfg, k)!r})" for k in diff))
    arrays = checkpoint.load_tensors(final / "optimizer.safetensors")
    carry = {k: v for k, v in arrays.items() if k.startswith(CARRY_PREFIX)}
    optimizer = {k: v for k, v in arrays.items() if not k.startswith(CARRY_PREFIX)}
    return Resumed(ck.model, ck.vocab, ck.params, optimizer, carry, st)
