"""Which engine a name means: the table `ENGINES`, keyed by config.ENGINE_NAMES.

    "numpy" -> rnnkit.numpy_engine   (always there)
    "torch" -> rnnkit.torch_engine   (imported only when asked for; needs the torch extra)

Each entry is a function that imports its engine package and returns it, so the numpy path
never imports torch. Both packages expose `RNNLM` and `Trainer` with the contract of
docs/contracts.md.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import numpy as np

from .config import ENGINE_NAMES, ModelConfig
from .errors import ConfigError


def _numpy() -> ModuleType:
    from . import numpy_engine

    return numpy_engine


def _torch() -> ModuleType:
    try:
        import torch  # noqa: F401
    except ImportError:
        raise ConfigError("--engine torch needs PyTorch, which is not installed: pip install 'rnnkit[torch]'") from None
    from . import torch_engine

    return torch_engine


ENGINES: dict[str, Callable[[], ModuleType]] = {"numpy": _numpy, "torch": _torch}  # in ENGINE_NAMES order


def get_engine(name: str) -> ModuleType:
    """The engine package named `name`, exposing `RNNLM` and `Trainer`."""
    if name not in ENGINES:
        raise ConfigError(f"--engine must be one of {', '.join(ENGINE_NAMES)}, got {name!r}")
    return ENGINES[name]()


def build_model(engine: str, config: ModelConfig, params=None, *, seed: int = 0, device: str = "auto", dtype=None):
    """An engine's RNNLM; `device` matters only to the torch engine."""
    mod = get_engine(engine)
    kwargs = {"seed": seed, "dtype": dtype or np.float32}
    if engine == "torch":
        kwargs["device"] = device
    elif device == "cuda":
        raise ConfigError("--device cuda needs --engine torch (the numpy engine runs on the CPU)")
    return mod.RNNLM(config, params, **kwargs)
