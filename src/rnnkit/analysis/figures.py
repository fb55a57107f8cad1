"""The figures of the gradient and memory analyses: a quantity against k (steps back) on a log
scale, one labelled line per model with its 10-90% band, several models on one plot. Written
whole or not at all (rnnkit.files), in the format the file's suffix names.
matplotlib is an optional extra: pip install 'rnnkit[plot]'."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..files import atomic_write_bytes, check_name, shown

DPI = 120


@dataclass
class Series:
    """One model's line: y[k] for k = 0..K, and optionally a band low[k] .. high[k] around it."""

    label: str
    y: np.ndarray
    low: np.ndarray | None = None
    high: np.ndarray | None = None


def pyplot():
    """matplotlib.pyplot on the Agg backend; a one-line ConfigError when it is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("rnnkit analyze --out needs matplotlib: pip install 'rnnkit[plot]'") from None
    return plt


def _positive(a: np.ndarray | None) -> np.ndarray | None:
    """NaN where a value is 0 or below (a log axis cannot show it: an underflow, or no effect)."""
    if a is None:
        return None
    a = np.asarray(a, dtype=np.float64)
    return np.where(a > 0, a, np.nan)


def draw_lags(series: list[Series], *, ylabel: str, title: str, xlabel: str = "k (steps back)"):
    """The figure: each series against k = 0..K, log y axis, legend in the best corner."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 5), constrained_layout=True)
    for i, s in enumerate(series):
        color = f"C{i % 10}"
        k = np.arange(len(s.y))
        ax.plot(k, _positive(s.y), color=color, linewidth=2, label=s.label)
        if s.low is not None and s.high is not None:
            ax.fill_between(k, _positive(s.low), _positive(s.high), color=color, alpha=0.15, linewidth=0)
    ax.set_yscale("log")
    _decade_ticks(ax, series)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.set_xlim(0, max(len(s.y) for s in series) - 1)
    ax.grid(True, which="major", alpha=0.35)
    ax.legend(loc="best", fontsize=9)
    return fig


def _decade_ticks(ax, series: list[Series]) -> None:
    """Labelled ticks at powers of ten (every second or third one over a very wide range)."""
    from matplotlib.ticker import LogFormatterSciNotation, LogLocator, NullFormatter

    values = np.concatenate([_positive(s.y) for s in series])
    values = values[np.isfinite(values)]
    if not len(values):
        return
    decades = math.log10(values.max() / values.min())
    step = 1 if decades <= 10 else 2 if decades <= 20 else 3
    ax.yaxis.set_major_locator(LogLocator(base=10.0 ** step, numticks=30))
    ax.yaxis.set_major_formatter(LogFormatterSciNotation())
    ax.yaxis.set_minor_formatter(NullFormatter())


def image_format(out: str | Path) -> str:
    """The format `out`'s suffix names (png without one); a ConfigError for one matplotlib
    cannot write, checked before any number is computed."""
    pyplot()
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    out = Path(out)
    check_name(out)
    suffix = out.suffix[1:].lower() or "png"
    known = FigureCanvasAgg.get_supported_filetypes()
    if suffix not in known:
        raise ConfigError(f"{shown(out)}: matplotlib cannot write .{suffix} images (it writes "
                          f"{', '.join('.' + k for k in sorted(known))})")
    return suffix


def save_figure(fig, out: str | Path) -> Path:
    """Write `fig` to `out` (its suffix names the format; png without one) and close it."""
    plt = pyplot()
    try:
        buf = io.BytesIO()
        fig.savefig(buf, format=image_format(out), dpi=DPI)
    finally:
        plt.close(fig)
    atomic_write_bytes(out, buf.getvalue())
    return Path(out)


def plot_lags(series: list[Series], out: str | Path, *, ylabel: str, title: str,
              xlabel: str = "k (steps back)") -> Path:
    """draw_lags, written to `out`; returns the path."""
    return save_figure(draw_lags(series, ylabel=ylabel, title=title, xlabel=xlabel), out)


def gradient_series(report) -> Series:
    """A GradientReport as a line: the mean norm per k, the 10-90% band, the decay in the label."""
    low, high = np.percentile(report.norms, [10, 90], axis=1)
    return Series(f"{report.label}: x{report.decay():.3f} / step", report.mean, low, high)


def memory_series(report) -> Series:
    """A MemoryReport as a line: the mean change per k, its 10-90% band, the reach in the label."""
    low, high = np.percentile(report.values, [10, 90], axis=1)
    reach = report.reach(0.01)
    until = f"k = {reach}" if reach < report.steps else f"k ≥ {reach}"
    return Series(f"{report.label}: 1% of the k = 0 change until {until}", report.mean, low, high)
