"""Parameter names, shapes and initialisation shared by both engines.

Names and layouts are PyTorch's (nn.Embedding, nn.RNN/GRU/LSTM, nn.Linear), so one
checkpoint loads in either engine without transposes:

    embedding.weight            (K, D)
    rnn.weight_ih_l{n}          (G*H, D or H)   G = 1 rnn, 3 gru (r,z,n), 4 lstm (i,f,g,o)
    rnn.weight_hh_l{n}          (G*H, H)
    rnn.bias_ih_l{n}, rnn.bias_hh_l{n}   (G*H,)
    decoder.weight (K, H)       absent when tied to the embedding      } softmax full
    decoder.bias   (K,)                                                 }
    decoder.head.weight         (c_0 + n, H)                            } softmax adaptive, n clusters
    decoder.head.bias           (c_0 + n,)                              } (nn.AdaptiveLogSoftmaxWithLoss
    decoder.tail.{i}.0.weight   (P_i, H),   P_i = H // div_value**(i+1) }  with head_bias=True)
    decoder.tail.{i}.1.weight   (c_{i+1} - c_i, P_i),   c = cutoffs + [K]

Initialisation draws from one numpy Generator in this fixed order, so the same seed gives
the same starting weights in both engines. `check_params` is the one check of a parameter
dict against a config: checkpoint.save / load and both engines' RNNLM use it.

`check_memory` estimates, before anything is allocated, the bytes a model needs (its
parameters, the copy an engine makes and the float64 draw of the largest tensor; for training
also gradients, optimizer moments and one step's activations, roughly) and refuses, with a
ConfigError naming the option that makes it large, one that would not fit in the memory the
system reports available (MemAvailable of /proc/meminfo; no check where there is none).
init_params and engines.build_model call it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import ModelConfig, TrainConfig, check_seed
from .errors import CheckpointError, ConfigError

GIB = 1 << 30
MOMENTS = {"sgd": 0, "rmsprop": 1, "adam": 2}  # optimizer state, in parameter-sized arrays


@dataclass(frozen=True)
class Cluster:
    """One tail cluster of the adaptive softmax: token ids [start, stop), projected to `proj` units."""

    start: int
    stop: int
    proj: int

    @property
    def size(self) -> int:
        return self.stop - self.start


def tail_clusters(cfg: ModelConfig) -> list[Cluster]:
    """The adaptive softmax's tail clusters (empty for softmax full). Cluster i holds the ids
    [c_i, c_{i+1}) with c = cutoffs + [K]; its projection has H // div_value**(i+1) units
    (PyTorch's int(H // div_value**(i+1)), div_value a float)."""
    if not cfg.adaptive:
        return []
    c = list(cfg.cutoffs) + [cfg.vocab_size]
    return [Cluster(c[i], c[i + 1], int(cfg.hidden_dim // cfg.div_value ** (i + 1))) for i in range(len(c) - 1)]


def _decoder_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    K, H = cfg.vocab_size, cfg.hidden_dim
    if not cfg.adaptive:
        return ({} if cfg.tie_weights else {"decoder.weight": (K, H)}) | {"decoder.bias": (K,)}
    clusters = tail_clusters(cfg)
    head = cfg.cutoffs[0] + len(clusters)  # the shortlist, then one entry per cluster
    shapes: dict[str, tuple[int, ...]] = {"decoder.head.weight": (head, H), "decoder.head.bias": (head,)}
    for i, cl in enumerate(clusters):
        shapes[f"decoder.tail.{i}.0.weight"] = (cl.proj, H)
        shapes[f"decoder.tail.{i}.1.weight"] = (cl.size, cl.proj)
    return shapes


def param_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Ordered mapping name -> shape for a model config."""
    K, D, H, G = cfg.vocab_size, cfg.embed_dim, cfg.hidden_dim, cfg.gates
    shapes: dict[str, tuple[int, ...]] = {"embedding.weight": (K, D)}
    for n in range(cfg.num_layers):
        shapes[f"rnn.weight_ih_l{n}"] = (G * H, D if n == 0 else H)
        shapes[f"rnn.weight_hh_l{n}"] = (G * H, H)
        shapes[f"rnn.bias_ih_l{n}"] = (G * H,)
        shapes[f"rnn.bias_hh_l{n}"] = (G * H,)
    return shapes | _decoder_shapes(cfg)


def _init_bound(name: str, cfg: ModelConfig) -> float:
    """Half-width of the uniform initial distribution of a parameter (0: zeros)."""
    if name in ("decoder.bias", "decoder.head.bias"):
        return 0.0
    if name.startswith("rnn.") or name.endswith(".0.weight"):  # recurrent layers, tail projections
        return 1.0 / np.sqrt(cfg.hidden_dim)
    return 0.1


def init_params(cfg: ModelConfig, seed: int = 0, dtype=np.float32) -> dict[str, np.ndarray]:
    """Initial weights: embedding and output matrices U(-0.1, 0.1), recurrent layers and the
    adaptive softmax's tail projections U(-1/sqrt(H), 1/sqrt(H)) as PyTorch does, biases of the
    output layer zero. The seed must lie in [0, SEED_MAX] and the model fit in memory
    (ConfigError otherwise)."""
    check_seed(seed)
    check_memory(cfg, itemsize=np.dtype(dtype).itemsize, copies=1)
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for name, shape in param_shapes(cfg).items():
        bound = _init_bound(name, cfg)
        w = rng.uniform(-bound, bound, size=shape) if bound else np.zeros(shape)
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
    adaptive = f", adaptive softmax with cutoffs {cfg.cutoffs}" if cfg.adaptive else ""
    return f"a {cfg.cell} model with {cfg.num_layers} layer(s){tied}{adaptive}"


# ---------------------------------------------------------------- memory


def available_memory() -> int | None:
    """Bytes the system reports available (MemAvailable of /proc/meminfo), None where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _parts(cfg: ModelConfig) -> dict[str, int]:
    """Parameter counts by what makes them large: the option a message names -> entries."""
    K, D, H, L = cfg.vocab_size, cfg.embed_dim, cfg.hidden_dim, cfg.num_layers
    recurrent = cfg.gates * H * (D + H + 2) + (L - 1) * cfg.gates * H * (2 * H + 2)
    decoder = sum(int(np.prod(s)) for s in _decoder_shapes(cfg).values())
    layers = f" with --num-layers {L}" if L > 1 else ""
    return {f"vocabulary {K:,} x --embed-dim {D}": K * D, f"--hidden-dim {H}{layers}": recurrent,
            f"vocabulary {K:,} x --hidden-dim {H} (the output layer)": decoder}


def memory_needed(cfg: ModelConfig, *, itemsize: int = 4, copies: int = 2, fresh: bool = True,
                  train: TrainConfig | None = None) -> tuple[int, str, str]:
    """(bytes, what they hold, the largest contributor) of building a model with `copies`
    parameter-sized arrays (the weights, the engine's copy) and, when `fresh` (initialised, not
    loaded), the float64 draw of the largest tensor; with `train`: gradients, optimizer moments
    and one step's activations too."""
    parts = _parts(cfg)
    n_params = sum(parts.values())
    largest = max(int(np.prod(s)) for s in param_shapes(cfg).values()) if fresh else 0
    need = copies * n_params * itemsize + 8 * largest
    what = "parameters"
    if train is not None:
        T, B = train.seq_len, train.batch_size
        per_token = cfg.num_layers * cfg.hidden_dim * (cfg.gates + 4) + cfg.embed_dim + 2 * _output_width(cfg)
        activations = T * B * per_token * itemsize
        parts[f"--batch-size {B} x --seq-len {T} (one step's activations)"] = activations // itemsize
        need += (1 + MOMENTS[train.optimizer]) * n_params * itemsize + activations
        what = "parameters, gradients, optimizer state and one step's activations"
    return need, what, max(parts, key=parts.__getitem__)


def _output_width(cfg: ModelConfig) -> int:
    """Logits a target costs: the vocabulary (full softmax), the head and a cluster (adaptive)."""
    if not cfg.adaptive:
        return cfg.vocab_size
    return cfg.cutoffs[0] + len(cfg.cutoffs) + max(c.size for c in tail_clusters(cfg))


def check_memory(cfg: ModelConfig, *, itemsize: int = 4, copies: int = 2, fresh: bool = True,
                 train: TrainConfig | None = None, available: int | None = None) -> None:
    """ConfigError "OPTION: the model would need X GiB (...); this machine has Y GiB available"
    when `memory_needed` exceeds `available` (default: available_memory(); None: no check)."""
    available = available_memory() if available is None else available
    if available is None:
        return
    need, what, culprit = memory_needed(cfg, itemsize=itemsize, copies=copies, fresh=fresh, train=train)
    if need > available:
        raise ConfigError(f"{culprit}: the model would need {_size(need)} ({what}); this machine has "
                          f"{_size(available)} available")


def _size(n: int) -> str:
    """Bytes in GiB (MiB below one GiB), as the memory message says them."""
    return f"{n / GIB:,.1f} GiB" if n >= GIB else f"{n / (1 << 20):,.1f} MiB"
