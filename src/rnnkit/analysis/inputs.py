"""What the gradient and memory analyses run on: a freshly initialised model of a given cell and
size, a trained one loaded in float64, and batches of windows (T, B) cut from held-out text or
drawn as random ids. Seeded: the same seed gives the same windows and the same weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..config import ModelConfig
from ..engines import build_model
from ..errors import ConfigError
from ..params import init_params

BOS_ID = 1  # <s>
SPECIALS = 3  # ids 0, 1, 2 are <unk>, <s>, </s> in every vocabulary (rnnkit.text)
FRESH_VOCAB = 64  # token ids of a fresh model: the inputs are uniform random ids over them


def fresh_model(cell: str, hidden: int, layers: int = 1, *, seed: int = 0, engine: str = "numpy",
                nonlinearity: str = "tanh", forget_bias: float = 0.0, vocab_size: int = FRESH_VOCAB,
                device: str = "cpu"):
    """A float64 model with the engine's seeded initialisation (PyTorch's U(-1/sqrt(H), 1/sqrt(H))
    for the recurrent weights, U(-0.1, 0.1) for the embedding and decoder); embed_dim = hidden.
    An LSTM's forget-gate bias b_hf gets `forget_bias` added (1 is TensorFlow's and Keras'
    default, f = sigmoid(1) = 0.73 at the start; PyTorch's, and rnnkit's, is 0)."""
    cfg = ModelConfig(vocab_size=vocab_size, cell=cell, nonlinearity=nonlinearity, embed_dim=hidden,
                      hidden_dim=hidden, num_layers=layers)
    cfg.validate("fresh model")
    params = init_params(cfg, seed, np.float64)
    if cell == "lstm":
        for n in range(layers):
            params[f"rnn.bias_hh_l{n}"][hidden:2 * hidden] += forget_bias  # gates i, f, g, o
    return build_model(engine, cfg, params, device=device, dtype=np.float64)


def load_float64(model_dir: str | Path, engine: str = "numpy", device: str = "auto"):
    """(model in float64, checkpoint): a trained model, computed in float64 so that effects of
    1e-12 are not rounding noise."""
    from .. import checkpoint

    ck = checkpoint.load(model_dir)
    return build_model(engine, ck.model, ck.params, device=device, dtype=np.float64), ck


def text_windows(ids: np.ndarray, length: int, batch: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`batch` windows of `length` inputs at random offsets of the id stream: x (T, B) and the
    next tokens y (T, B), time-major as the engines take them."""
    ids = np.asarray(ids, dtype=np.int64)
    if len(ids) < length + 1:
        raise ConfigError(f"the text has {len(ids):,} tokens; this analysis needs at least {length + 1:,} "
                          "(give a longer file, or fewer --steps / --warmup)")
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, len(ids) - length, size=batch)
    cols = starts[None, :] + np.arange(length + 1)[:, None]  # (T+1, B)
    window = ids[cols]
    return window[:-1], window[1:]


def random_windows(vocab_size: int, length: int, batch: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Uniform random ids (specials left out) as x (T, B) and their next ids y (T, B)."""
    rng = np.random.default_rng(seed)
    window = rng.integers(SPECIALS, vocab_size, size=(length + 1, batch))
    return window[:-1], window[1:]


def target_mask(y: np.ndarray) -> np.ndarray:
    """(T, B) bool: the targets that count, all but <s> (predicting the start of the next line
    after </s> is no prediction; training masks it too)."""
    return np.asarray(y) != BOS_ID


def unigram(ids: np.ndarray, vocab_size: int) -> np.ndarray:
    """The relative frequency (K,) of each id in `ids`, specials set to 0 (replacement tokens
    are drawn from it); uniform over the non-special ids when `ids` holds none."""
    counts = np.bincount(np.asarray(ids, dtype=np.int64).ravel(), minlength=vocab_size).astype(np.float64)
    counts[:SPECIALS] = 0.0
    if counts.sum() == 0:
        counts[SPECIALS:] = 1.0
    return counts / counts.sum()


def is_torch_model(model) -> bool:
    """Whether `model` is the torch engine's RNNLM (its numbers then come from autograd)."""
    return type(model).__module__.startswith("rnnkit.torch_engine")
