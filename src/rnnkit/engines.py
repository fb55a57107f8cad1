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

from .config import ENGINE_NAMES, ModelConfig, TrainConfig, check_seed
from .errors import ConfigError
from .params import check_memory


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


def build_model(engine: str, config: ModelConfig, params=None, *, seed: int = 0, device: str = "auto", dtype=None,
                train: TrainConfig | None = None):
    """An engine's RNNLM; `device` matters only to the torch engine. Before anything is
    allocated, the memory it needs is checked against what the system has available
    (params.check_memory: a ConfigError naming the option that makes it large); with `train`
    (a training run) gradients, optimizer state and activations count too, where they live in
    this machine's memory (the numpy engine, or torch on the CPU)."""
    mod = get_engine(engine)
    kwargs = {"seed": seed, "dtype": dtype or np.float32}
    if engine == "torch":
        kwargs["device"] = device
    elif device == "cuda":
        raise ConfigError("--device cuda needs --engine torch (the numpy engine runs on the CPU)")
    config.validate()
    check_seed(seed)
    on_host = engine == "numpy" or _host_device(mod, device)
    check_memory(config, itemsize=_itemsize(kwargs["dtype"]), copies=2 if params is None else 1,
                 fresh=params is None, train=train if on_host else None)
    return mod.RNNLM(config, params, **kwargs)


def _itemsize(dtype) -> int:
    """Bytes per entry of a numpy or torch dtype."""
    try:
        return np.dtype(dtype).itemsize
    except TypeError:  # a torch.dtype
        return int(getattr(dtype, "itemsize", 4))


def _host_device(mod: ModuleType, device: str) -> bool:
    """Whether the torch engine's `device` is the CPU (so training state lives in this memory)."""
    return str(mod.resolve_device(device)) == "cpu"
