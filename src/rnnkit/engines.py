"""Pick an engine by name: `numpy` (always there) or `torch` (imported only when asked for)."""

from __future__ import annotations

import importlib
from types import ModuleType

from .config import ModelConfig
from .errors import ConfigError

ENGINES = ("numpy", "torch")


def get_engine(name: str) -> ModuleType:
    """The engine module, exposing `RNNLM` and `Trainer` with the contract of docs/contracts.md."""
    if name not in ENGINES:
        raise ConfigError(f"--engine must be one of {', '.join(ENGINES)}, got {name!r}")
    if name == "torch":
        try:
            import torch  # noqa: F401
        except ImportError:
            raise ConfigError("--engine torch needs PyTorch, which is not installed: pip install 'rnnkit[torch]'") from None
    return importlib.import_module(f"rnnkit.{name}_engine")


def build_model(engine: str, config: ModelConfig, params=None, *, seed: int = 0, device: str = "auto", dtype=None):
    """An engine's RNNLM; `device` matters only to the torch engine."""
    import numpy as np

    mod = get_engine(engine)
    kwargs = {"seed": seed, "dtype": dtype or np.float32}
    if engine == "torch":
        kwargs["device"] = device
    elif device == "cuda":
        raise ConfigError("--device cuda needs --engine torch (the numpy engine runs on the CPU)")
    return mod.RNNLM(config, params, **kwargs)
