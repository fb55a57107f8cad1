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
written to a temporary file in the same directory, fsynced, then renamed over the old one
(rnnkit.files: an OS error is one OutputError line, modes follow the umask, JSON is strict).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .config import ModelConfig, TokenizerConfig
from .errors import CheckpointError, ConfigError, RnnkitError
from .files import (  # noqa: F401 (the writers, importable from here as before)
    atomic_write_bytes,
    atomic_write_files,
    atomic_write_json,
    fsync_dir,
    json_bytes,
    make_dir,
    recover_dir,
    remove,
    replace_dir,
)
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


# the writers live in rnnkit.files (every file rnnkit writes goes through there); these names
# stay importable from here
_fsync_dir = fsync_dir


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
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read ({_one_line(e)})") from None
    if len(data) < 8:
        raise CheckpointError(f"{path}: file is truncated ({len(data)} bytes)")
    try:
        return dict(load(data))
    except (SafetensorError, ValueError, OSError) as e:  # bad header, sizes, dtypes
        raise CheckpointError(f"{path}: not a valid safetensors file ({_one_line(e)}); it may be truncated or corrupt") from None


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


# ---------------------------------------------------------------- save / load


def save(model_dir: str | os.PathLike, model_cfg: ModelConfig, tok_cfg: TokenizerConfig, vocab: Vocab,
         params: dict[str, np.ndarray], extra: dict[str, Any] | None = None) -> Path:
    """Write a model directory: the three files written beside their places first, then renamed
    in (weights first, config last). A write that fails (no space left, read-only, ...) is an
    OutputError naming the file and leaves the old files whole; a directory this call created
    is removed again."""
    model_dir = Path(model_dir)
    check_params(params, model_cfg, f"{model_dir} (not saved)", finite=True)
    if len(vocab) != model_cfg.vocab_size:
        raise ConfigError(f"{model_dir}: vocabulary has {len(vocab)} tokens but the model expects {model_cfg.vocab_size}")
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "rnnkit_version": __version__,
        "model": model_cfg.to_dict(),
        "tokenizer": tok_cfg.to_dict(),
        **({"extra": extra} if extra else {}),
    }
    new_dir = not model_dir.exists()
    make_dir(model_dir)
    weights = tensors_to_bytes({k: np.asarray(v, dtype=np.float32) for k, v in params.items()},
                               metadata={"format": FORMAT})
    try:  # all three written before any is renamed: a full disk leaves the old model whole
        atomic_write_files({model_dir / WEIGHTS_FILE: weights, model_dir / VOCAB_FILE: json_bytes(vocab.to_list()),
                            model_dir / CONFIG_FILE: json_bytes(config)})
    except BaseException:
        if new_dir:  # made here: nothing of it stays (a failed write of an old one leaves it whole)
            remove(model_dir)
        raise
    return model_dir


def _read_json(path: Path) -> Any:
    """The decoded JSON of a model file; what does not decode is a CheckpointError naming the
    file (integers too long to convert and nesting too deep too). NaN and Infinity decode (an
    old "extra" may hold them); the sections that matter refuse them by type."""
    if not path.is_file():
        raise CheckpointError(f"{path}: file is missing")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise CheckpointError(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: invalid JSON at line {e.lineno} column {e.colno} ({e.msg}); truncated?") from None
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read ({_one_line(e)})") from None
    except (ValueError, RecursionError) as e:  # a 5,000-digit integer, [[[[...]]]]
        raise CheckpointError(f"{path}: invalid JSON ({_one_line(e)})") from None


def load_config(model_dir: str | os.PathLike) -> tuple[ModelConfig, TokenizerConfig, dict[str, Any]]:
    model_dir = Path(model_dir)
    if not model_dir.exists():
        raise CheckpointError(f"{model_dir}: model directory does not exist")
    if not model_dir.is_dir():
        raise CheckpointError(f"{model_dir}: not a directory (a model is a directory with {CONFIG_FILE}, {VOCAB_FILE}, {WEIGHTS_FILE})")
    path = model_dir / CONFIG_FILE
    cfg = _read_json(path)
    _check_top_level(cfg, path)
    try:
        model_cfg = ModelConfig.from_dict(cfg["model"], where=f"{path} [model]")
        tok_cfg = TokenizerConfig.from_dict(cfg["tokenizer"], where=f"{path} [tokenizer]")
    except (ConfigError, TypeError) as e:
        raise CheckpointError(_one_line(e)) from None
    return model_cfg, tok_cfg, cfg.get("extra", {})


def _check_top_level(cfg: Any, path: Path) -> None:
    """config.json's own keys: format, format_version (the integer 1), rnnkit_version (a
    string), the model and tokenizer sections and extra (JSON objects)."""
    if not isinstance(cfg, dict) or cfg.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an rnnkit config (missing \"format\": \"{FORMAT}\")")
    version = cfg.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise CheckpointError(f"{path}: format_version {repr(version)[:40]} is not supported (this rnnkit reads {FORMAT_VERSION})")
    for key in ("model", "tokenizer"):
        if not isinstance(cfg.get(key), dict):
            raise CheckpointError(f"{path}: missing the \"{key}\" section")
    if not isinstance(cfg.get("extra", {}), dict):
        raise CheckpointError(f"{path}: \"extra\" must be a JSON object, got {type(cfg['extra']).__name__}")
    if not isinstance(cfg.get("rnnkit_version", ""), str):
        raise CheckpointError(f"{path}: \"rnnkit_version\" must be a string, got "
                              f"{type(cfg['rnnkit_version']).__name__}")


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
