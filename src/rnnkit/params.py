"""Parameter names, shapes and initialisation shared by both engines.

Names and layouts are PyTorch's (nn.Embedding, nn.RNN/GRU/LSTM, nn.Linear), so one
checkpoint loads in either engine without transposes:

    embedding.weight            (K, D)
    rnn.weight_ih_l{n}          (G*H, D or H)   G = 1 rnn, 3 gru (r,z,n), 4 lstm (i,f,g,o)
    rnn.weight_hh_l{n}          (G*H, H)
    rnn.bias_ih_l{n}, rnn.bias_hh_l{n}   (G*H,)
    decoder.weight (K, H)       absent when tied to the embedding
    decoder.bias   (K,)

Initialisation draws from one numpy Generator in this fixed order, so the same seed gives
the same starting weights in both engines. `check_params` is the one check of a parameter
dict against a config: checkpoint.save / load and both engines' RNNLM use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .config import ModelConfig
from .errors import CheckpointError


def param_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Ordered mapping name -> shape for a model config."""
    K, D, H, G = cfg.vocab_size, cfg.embed_dim, cfg.hidden_dim, cfg.gates
    shapes: dict[str, tuple[int, ...]] = {"embedding.weight": (K, D)}
    for n in range(cfg.num_layers):
        shapes[f"rnn.weight_ih_l{n}"] = (G * H, D if n == 0 else H)
        shapes[f"rnn.weight_hh_l{n}"] = (G * H, H)
        shapes[f"rnn.bias_ih_l{n}"] = (G * H,)
        shapes[f"rnn.bias_hh_l{n}"] = (G * H,)
    if not cfg.tie_weights:
        shapes["decoder.weight"] = (K, H)
    shapes["decoder.bias"] = (K,)
    return shapes


def init_params(cfg: ModelConfig, seed: int = 0, dtype=np.float32) -> dict[str, np.ndarray]:
    """Initial weights: embedding and decoder U(-0.1, 0.1), recurrent U(-1/sqrt(H), 1/sqrt(H)) as
    PyTorch does, decoder bias zero."""
    rng = np.random.default_rng(seed)
    bound = 1.0 / np.sqrt(cfg.hidden_dim)
    out: dict[str, np.ndarray] = {}
    for name, shape in param_shapes(cfg).items():
        if name == "decoder.bias":
            w = np.zeros(shape)
        elif name.startswith("rnn."):
            w = rng.uniform(-bound, bound, size=shape)
        else:
            w = rng.uniform(-0.1, 0.1, size=shape)
        out[name] = w.astype(dtype)
    return out


def decoder_weight(params: dict[str, np.ndarray]) -> np.ndarray:
    """The output projection (K, H): decoder.weight, or the embedding when tied."""
    return params["decoder.weight"] if "decoder.weight" in params else params["embedding.weight"]


def check_params(params: Mapping[str, Any], cfg: ModelConfig, where: str, *, dtype=None, finite: bool = False) -> None:
    """Refuse, with a one-line CheckpointError starting with `where`, parameters whose names or
    shapes are not exactly those of param_shapes(cfg) (any array-like: numpy, torch, lists);
    with `dtype`, a numpy array of another dtype; with `finite`, NaN or Inf anywhere. The
    engines check names and shapes; checkpoint.save adds `finite`, checkpoint.load both."""
    expected = param_shapes(cfg)
    missing = [k for k in expected if k not in params]
    if missing:
        raise CheckpointError(f"{where}: missing tensor(s) {', '.join(missing)} for {_described(cfg)}")
    unexpected = [k for k in params if k not in expected]
    if unexpected:
        raise CheckpointError(f"{where}: unexpected tensor(s) {', '.join(unexpected)} for {_described(cfg)}")
    for name, shape in expected.items():
        got = tuple(np.shape(params[name]))
        if got != shape:
            raise CheckpointError(f"{where}: tensor {name} has shape {got}, the model config needs {shape}")
    for name in expected:
        value = params[name]
        if dtype is not None and value.dtype != np.dtype(dtype):
            raise CheckpointError(f"{where}: tensor {name} is {value.dtype}, expected {np.dtype(dtype)}")
        if finite and not np.all(np.isfinite(value)):
            raise CheckpointError(f"{where}: tensor {name} has non-finite values (NaN or Inf)")


def _described(cfg: ModelConfig) -> str:
    tied = ", tied weights" if cfg.tie_weights else ""
    return f"a {cfg.cell} model with {cfg.num_layers} layer(s){tied}"
