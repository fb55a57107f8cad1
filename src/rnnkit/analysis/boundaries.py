"""Decision boundaries of the feed-forward classifiers (analysis.feedforward) drawn to PNG:
one network with the logistic-regression baseline's line over it, and a grid of networks of
several hidden sizes (the post's figure). The class of every point of a fine grid around the
data is predicted and the two regions filled; the training points are drawn on top.
matplotlib is an optional extra: pip install 'rnnkit[plot]'.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..errors import ConfigError, OutputError
from ..files import atomic_write_bytes, check_name, shown
from .feedforward import Trained, predict

REGION_COLOURS = ("#c6dbef", "#fdd0a2")  # class 0, class 1: light blue, light orange
POINT_COLOURS = ("#2171b5", "#d94801")  # the same hues, dark
GRID_STEP = 0.01  # spacing of the grid the classes are predicted on (the post's h)
MARGIN = 0.5  # around the data
COLUMNS = 4  # panels per row in the grid figure


def pyplot():
    """matplotlib.pyplot on the Agg back end; ConfigError when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("rnnkit analyze feedforward needs matplotlib to draw: pip install 'rnnkit[plot]'") from None
    return plt


def decision_grid(X: np.ndarray, step: float = GRID_STEP, margin: float = MARGIN):
    """xx, yy (R, C): a grid `step` apart covering the data plus `margin` on every side."""
    lo, hi = X.min(axis=0) - margin, X.max(axis=0) + margin
    return np.meshgrid(np.arange(lo[0], hi[0], step), np.arange(lo[1], hi[1], step))


def grid_classes(trained: Trained, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
    """The predicted class at every grid point, shaped like xx."""
    points = np.stack([xx.ravel(), yy.ravel()], axis=1)  # (R*C, 2)
    return predict(trained.params, points).reshape(xx.shape)


def draw_panel(ax, trained: Trained, X: np.ndarray, y: np.ndarray, xx, yy, title: str | None = None) -> None:
    """Filled class regions of `trained`, the training points on top, a title with the accuracy."""
    from matplotlib.colors import ListedColormap

    ax.contourf(xx, yy, grid_classes(trained, xx, yy), levels=[-0.5, 0.5, 1.5], cmap=ListedColormap(REGION_COLOURS))
    for c in (0, 1):
        ax.scatter(X[y == c, 0], X[y == c, 1], s=14, c=POINT_COLOURS[c], edgecolors="white", linewidths=0.4,
                   label=f"class {c}")
    ax.set_title(title or f"{trained.name}: accuracy {trained.accuracy:.3f}")
    ax.set_aspect("equal")
    ax.set_xlim(xx.min(), xx.max())
    ax.set_ylim(yy.min(), yy.max())


def plot_boundary(trained: Trained, X: np.ndarray, y: np.ndarray, out: str | Path,
                  baseline: Trained | None = None) -> Path:
    """One network's regions; the baseline's boundary as a dashed line over them."""
    plt = pyplot()
    xx, yy = decision_grid(X)
    fig, ax = plt.subplots(figsize=(7.5, 5.6), constrained_layout=True)
    try:
        draw_panel(ax, trained, X, y, xx, yy,
                   f"Feed-forward network, {trained.name}: training accuracy {trained.accuracy:.3f}")
        if baseline is not None:
            ax.contour(xx, yy, grid_classes(baseline, xx, yy), levels=[0.5], colors="black",
                       linestyles="dashed", linewidths=1.2)
            ax.plot([], [], "k--", label=f"logistic regression (accuracy {baseline.accuracy:.3f})")
        ax.set_xlabel("x1")
        ax.set_ylabel("x2")
        ax.legend(loc="lower left", fontsize=9, framealpha=0.9)
        return _save(fig, out)
    finally:
        plt.close(fig)


def plot_boundaries(networks: list[Trained], X: np.ndarray, y: np.ndarray, out: str | Path,
                    baseline: Trained | None = None) -> Path:
    """A grid of panels, one per network (and the baseline's last), COLUMNS to a row."""
    plt = pyplot()
    panels = list(networks) + ([baseline] if baseline is not None else [])
    rows = -(-len(panels) // COLUMNS)
    cols = min(COLUMNS, len(panels))
    xx, yy = decision_grid(X)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False, constrained_layout=True)
    try:
        for ax, trained in zip(axes.flat, panels):
            draw_panel(ax, trained, X, y, xx, yy)
        for ax in list(axes.flat)[len(panels):]:
            ax.set_visible(False)
        fig.suptitle("Decision boundaries by hidden-layer size on the two moons (blue: class 0, orange: class 1; "
                     "training accuracy)")
        return _save(fig, out)
    finally:
        plt.close(fig)


def check_output(out: str | Path) -> Path:
    """Refuse, before any training, a figure name that cannot be written: not UTF-8, not .png,
    a directory, or in a directory that does not exist."""
    out = Path(out)
    check_name(out)
    if out.suffix.lower() != ".png":
        raise ConfigError(f"{shown(out)}: figures are written as PNG; give a name ending in .png")
    if out.is_dir():
        raise OutputError(f"{shown(out)}: cannot write: is a directory")
    if not out.parent.is_dir():
        raise OutputError(f"{shown(out)}: cannot write: the directory {shown(out.parent)} does not exist")
    return out


def _save(fig, out: str | Path) -> Path:
    """PNG bytes of `fig`, written atomically to `out` (OutputError naming it on failure)."""
    out = check_output(out)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    atomic_write_bytes(out, buf.getvalue())
    return out
