"""The two-moons data set: two interleaving half circles with Gaussian noise, made with numpy.

    t ~ U[0, pi]
    class 0 (the outer moon):  (cos t,     sin t)
    class 1 (the inner moon):  (1 - cos t, 1 - sin t - 0.5)
    x = point + noise * N(0, I)

Half the points (rounded down) are on the outer moon, the rest on the inner one; the rows are
shuffled. Everything comes from one seeded numpy Generator, so a seed names one data set.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError


def make_moons(samples: int = 200, noise: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(X (samples, 2) float64, y (samples,) int64 in {0, 1}) of the two moons."""
    if samples < 2:
        raise ConfigError(f"--samples must be at least 2 (one point per moon), got {samples}")
    if not noise >= 0:
        raise ConfigError(f"--noise must be >= 0, got {noise}")
    rng = np.random.default_rng(seed)
    n_outer = samples // 2
    t = rng.uniform(0.0, np.pi, size=samples)  # (N,)
    outer = np.stack([np.cos(t[:n_outer]), np.sin(t[:n_outer])], axis=1)  # (N0, 2)
    inner = np.stack([1.0 - np.cos(t[n_outer:]), 1.0 - np.sin(t[n_outer:]) - 0.5], axis=1)  # (N1, 2)
    X = np.concatenate([outer, inner]) + noise * rng.standard_normal((samples, 2))
    y = np.concatenate([np.zeros(n_outer, np.int64), np.ones(samples - n_outer, np.int64)])
    order = rng.permutation(samples)
    return X[order], y[order]
