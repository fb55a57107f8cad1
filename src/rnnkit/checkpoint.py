"""The one on-disk model format: config.json + vocab.json + model.safetensors, atomic writes.

    model/
      config.json        {"format": "rnnkit", "format_version": 1, "model": {...}, "tokenizer": {...}, ...}
      vocab.json         tokens in id order, specials first
      model.safetensors  float32 tensors named as in rnnkit.params (safetensors.numpy, never pickle)
      trainer_state/     only for resuming (written by rnnkit.train)

The model section is ModelConfig.to_dict(): keys added after rnnkit 0.1.0 (softmax, cutoffs,
div_value) appear only when they differ from their defaults, so a full-softmax directory stays
readable by 0.1.0, and a directory without them reads as the defaults.

Loading validates names, shapes, dtypes and finiteness (rnnkit.params.check_params) and the
vocabulary size against config.json, and refuses what does not fit with a CheckpointError
naming the file and the problem. Every file is
written to a temporary file in the same directory, fsynced, then renamed over the old one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .config import ModelConfig, TokenizerConfig
from .errors import CheckpointError, ConfigError, RnnkitError
from .params import check_params
from .text import Vocab

FORMAT = "rnnkit"
FORMAT_VERSION = 1
CONFIG_FILE, VOCAB_FILE, WEIGHTS_FILE = "config.json", "vocab.json", "model.safetensors"


@dataclass
class Checkpoint:
    model: ModelConfig
    tokenizer: TokenizerConfig
    vocab: Vocab
    params: dict[str, np.ndarray]
    extra: dict[str, Any] = field(default_factory=dict)  # free-form: training summary, engine, ...


# ---------------------------------------------------------------- atomic writes


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # some filesystems do not allow opening directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` so that a reader sees either the old file or the new one, whole."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def tensors_to_bytes(tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> bytes:
    from safetensors.numpy import save

    # np.require keeps 0-d arrays 0-d (np.ascontiguousarray would make them 1-d)
    return save({k: np.require(v, requirements='C') for k, v in tensors.items()}, metadata=metadata)


def save_tensors(path: str | os.PathLike, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> None:
    atomic_write_bytes(path, tensors_to_bytes(tensors, metadata))


def load_tensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a safetensors file; any damage becomes a CheckpointError naming the file."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: file is missing")
    data = path.read_bytes()
    if len(data) < 8:
        raise CheckpointError(f"{path}: file is truncated ({len(data)} bytes)")
    try:
        return dict(load(data))
    except (SafetensorError, ValueError, OSError) as e:  # bad header, sizes, dtypes
        raise CheckpointError(f"{path}: not a valid safetensors file ({_one_line(e)}); it may be truncated or corrupt") from None


def replace_dir(tmp_dir: Path, final_dir: Path) -> None:
    """Swap a fully written directory into place: old -> .old, tmp -> final, remove .old.

    A kill between the two renames leaves `.NAME.old` beside a missing NAME; `recover_dir`
    puts it back, so a reader never sees a half-written directory.
    """
    old = final_dir.with_name(f".{final_dir.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if final_dir.exists():
        os.replace(final_dir, old)
    os.replace(tmp_dir, final_dir)
    _fsync_dir(final_dir.parent)
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)


def recover_dir(final_dir: Path) -> None:
    """Undo an interrupted `replace_dir`: if NAME is missing but .NAME.old exists, move it back."""
    old = final_dir.with_name(f".{final_dir.name}.old")
    if not final_dir.exists() and old.exists():
        os.replace(old, final_dir)


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


# ---------------------------------------------------------------- save / load


def save(model_dir: str | os.PathLike, model_cfg: ModelConfig, tok_cfg: TokenizerConfig, vocab: Vocab,
         params: dict[str, np.ndarray], extra: dict[str, Any] | None = None) -> Path:
    """Write a model directory (weights first, config last, each file atomically)."""
    model_dir = Path(model_dir)
    check_params(params, model_cfg, f"{model_dir} (not saved)", finite=True)
    if len(vocab) != model_cfg.vocab_size:
        raise ConfigError(f"{model_dir}: vocabulary has {len(vocab)} tokens but the model expects {model_cfg.vocab_size}")
    model_dir.mkdir(parents=True, exist_ok=True)
    save_tensors(model_dir / WEIGHTS_FILE, {k: np.asarray(v, dtype=np.float32) for k, v in params.items()},
                 metadata={"format": FORMAT})
    atomic_write_json(model_dir / VOCAB_FILE, vocab.to_list())
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "rnnkit_version": __version__,
        "model": model_cfg.to_dict(),
        "tokenizer": tok_cfg.to_dict(),
        **({"extra": extra} if extra else {}),
    }
    atomic_write_json(model_dir / CONFIG_FILE, config)
    return model_dir


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise CheckpointError(f"{path}: file is missing")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise CheckpointError(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: invalid JSON at line {e.lineno} column {e.colno} ({e.msg}); truncated?") from None


def load_config(model_dir: str | os.PathLike) -> tuple[ModelConfig, TokenizerConfig, dict[str, Any]]:
    model_dir = Path(model_dir)
    if not model_dir.exists():
        raise CheckpointError(f"{model_dir}: model directory does not exist")
    if not model_dir.is_dir():
        raise CheckpointError(f"{model_dir}: not a directory (a model is a directory with {CONFIG_FILE}, {VOCAB_FILE}, {WEIGHTS_FILE})")
    path = model_dir / CONFIG_FILE
    cfg = _read_json(path)
    if not isinstance(cfg, dict) or cfg.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an rnnkit config (missing \"format\": \"{FORMAT}\")")
    if cfg.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: format_version {cfg.get('format_version')!r} is not supported (this rnnkit reads {FORMAT_VERSION})")
    for key in ("model", "tokenizer"):
        if not isinstance(cfg.get(key), dict):
            raise CheckpointError(f"{path}: missing the \"{key}\" section")
    try:
        model_cfg = ModelConfig.from_dict(cfg["model"], where=f"{path} [model]")
        tok_cfg = TokenizerConfig.from_dict(cfg["tokenizer"], where=f"{path} [tokenizer]")
    except (ConfigError, TypeError) as e:
        raise CheckpointError(_one_line(e)) from None
    return model_cfg, tok_cfg, cfg.get("extra", {})


def load(model_dir: str | os.PathLike) -> Checkpoint:
    """Read and validate a model directory."""
    model_dir = Path(model_dir)
    model_cfg, tok_cfg, extra = load_config(model_dir)
    vpath = model_dir / VOCAB_FILE
    tokens = _read_json(vpath)
    try:
        vocab = Vocab.from_list(tokens)
    except RnnkitError as e:
        raise CheckpointError(f"{vpath}: {_one_line(e)}") from None
    if len(vocab) != model_cfg.vocab_size:
        raise CheckpointError(f"{vpath}: has {len(vocab)} tokens but config.json says vocab_size {model_cfg.vocab_size}")
    wpath = model_dir / WEIGHTS_FILE
    params = load_tensors(wpath)
    check_params(params, model_cfg, str(wpath), dtype=np.float32, finite=True)
    return Checkpoint(model_cfg, tok_cfg, vocab, params, extra)
