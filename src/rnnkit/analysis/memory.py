"""Memory: how far back a model's predictions depend on its input. Replace one input token and
measure how much each later next-token distribution moves.

For a window x_1 .. x_T and the position j = W + 1 after a warm-up of W tokens (which lets the
state settle from zeros), x'_j is another token (drawn from the text's unigram distribution,
specials left out, never the original) and every other token is kept. The prediction k steps
after the replaced token is p_{j+k} = p(. | x_1..x_{j+k}); its change is

    KL:  D_k = sum_v p_{j+k}(v) (ln p_{j+k}(v) - ln p'_{j+k}(v))        (nats)
    TV:  D_k = 1/2 sum_v | p_{j+k}(v) - p'_{j+k}(v) |                   (in [0, 1])

for k = 0 (the replaced token is the current input) .. K, averaged over many windows (random
offsets of the text: random positions). Both runs start from the same state, computed once
from the warm-up, and run in float64, so D_k far below 1e-6 is still signal, not rounding.
Works on either engine through the engine contract (`forward` with a hidden state).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from .gradients import decay_per_step

MEASURES = {"kl": "KL(p || p') (nats)", "tv": "total variation |p - p'|"}
BLOCK_ENTRIES = 1 << 23  # logits held at once (64 MB in float64): rows are run in blocks of this


@dataclass
class MemoryReport:
    """values[k] holds D_k of every window; `measure` is kl or tv."""

    label: str
    measure: str
    values: np.ndarray  # (K+1, N)

    @property
    def steps(self) -> int:
        return len(self.values) - 1

    @property
    def mean(self) -> np.ndarray:
        """(K+1,) the mean change per k."""
        return self.values.mean(axis=1)

    def reach(self, fraction: float = 0.01) -> int:
        """The largest k whose mean change is still `fraction` of the change at k = 0."""
        big = np.flatnonzero(self.mean >= fraction * self.mean[0])
        return int(big[-1]) if len(big) else 0

    def reach_text(self, fraction: float = 0.01) -> str:
        """reach() as a table prints it: ">= K" when it lasts to the last k measured."""
        k = self.reach(fraction)
        return f">= {k}" if k == self.steps else str(k)

    def decay(self) -> float:
        """The factor per step of the mean change (least squares on the log, k >= 1)."""
        return decay_per_step(self.mean)

    def table(self) -> str:
        """One row per k: k, the mean change, then median, 90th percentile, the ratio to the row
        above; a summary below."""
        name = MEASURES[self.measure]
        lines = [self.label, f"{'k':>4}  {'mean ' + self.measure.upper():>12}  {'median':>9}  {'90%':>9}  {'ratio':>7}"]
        mean, q = self.mean, np.percentile(self.values, [50, 90], axis=1)
        for k in range(self.steps + 1):
            ratio = f"{mean[k] / mean[k - 1]:7.3f}" if k and mean[k - 1] > 0 else f"{'':>7}"
            lines.append(f"{k:>4}  {mean[k]:>12.3e}  {q[0, k]:>9.2e}  {q[1, k]:>9.2e}  {ratio}")
        lines.append(f"{name}: decay per step x{self.decay():.4f}; still 1% of the k = 0 change at k = "
                     f"{self.reach_text(0.01)}, 0.1% at k = {self.reach_text(0.001)}; {self.values.shape[1]:,} windows")
        return "\n".join(lines)


def divergence(logits: np.ndarray, logits2: np.ndarray, measure: str) -> np.ndarray:
    """D between softmax(logits) and softmax(logits2) over the last axis (KL or TV), float64.
    Adaptive-softmax models return log-probabilities as logits: softmax of them is p again."""
    a = _log_softmax(np.asarray(logits, dtype=np.float64))
    b = _log_softmax(np.asarray(logits2, dtype=np.float64))
    p = np.exp(a)
    if measure == "kl":
        return np.maximum((p * (a - b)).sum(axis=-1), 0.0)  # >= 0; rounding can make it -1e-17
    if measure == "tv":
        return 0.5 * np.abs(p - np.exp(b)).sum(axis=-1)
    raise ConfigError(f"--measure must be one of {', '.join(MEASURES)}, got {measure!r}")


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def replacements(x: np.ndarray, probs: np.ndarray, seed: int = 0) -> np.ndarray:
    """For each token of x (N,), another id drawn from `probs` (K,), never the token itself."""
    rng = np.random.default_rng(seed)
    x = np.asarray(x)
    if np.count_nonzero(probs) < 2:
        raise ConfigError("the text has fewer than two distinct tokens: nothing to replace one with")
    out = rng.choice(len(probs), size=x.shape, p=probs)
    same = out == x
    while same.any():  # redraw the ones that came out equal
        out[same] = rng.choice(len(probs), size=int(same.sum()), p=probs)
        same = out == x
    return out


def measure_memory(model, x: np.ndarray, *, warmup: int, probs: np.ndarray, measure: str = "tv", seed: int = 0,
                   label: str = "") -> MemoryReport:
    """The report of `model` (either engine) on windows x (W + K + 1, N): the token at index
    `warmup` of each window is replaced (by an id drawn from `probs`, seeded) and D_k is
    measured at indices warmup + k, k = 0 .. K."""
    x = np.asarray(x, dtype=np.int64)
    T, N = x.shape
    if warmup < 0 or warmup >= T:
        raise ConfigError(f"windows of {T} tokens leave nothing after a warm-up of {warmup}")
    new = replacements(x[warmup], probs, seed)
    K = model.config.vocab_size
    block = max(1, BLOCK_ENTRIES // ((T - warmup) * K))  # windows per block
    parts = [changes(model, x[:, i:i + block], new[i:i + block], warmup, measure) for i in range(0, N, block)]
    return MemoryReport(label or model.config.cell, measure, np.concatenate(parts, axis=1))


def changes(model, x: np.ndarray, new: np.ndarray, warmup: int, measure: str) -> np.ndarray:
    """D_k (K+1, N) of windows x (T, N) whose token at `warmup` becomes `new` (N,)."""
    hidden = model.forward(x[:warmup])[3] if warmup else None  # the state before the replaced token
    after = x[warmup:]  # (K+1, N)
    changed = after.copy()
    changed[0] = new
    clean = model.forward(after, hidden=hidden)[0]  # (K+1, N, V)
    moved = model.forward(changed, hidden=hidden)[0]
    return divergence(clean, moved, measure)

