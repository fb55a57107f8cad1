"""`rnnkit plot RUN_DIR`: training and validation curves from metrics.jsonl to a PNG.

Two panels: the metric against tokens seen, and against wall time. The metric is perplexity
(log scale) for word models and bits per character for character models. The axes stay
readable at any length: engineering ticks for tokens (250k, 1.5M), wall time in the unit that
suits the run, and enough labelled ticks on the log axis however narrow its range.
matplotlib is an optional extra: pip install 'rnnkit[plot]'.
"""

from __future__ import annotations

import io
import itertools
import json
import math
from pathlib import Path

from ..errors import ConfigError, InputError
from ..files import atomic_write_bytes, check_name, os_problem, shown

SERIES = {"train": ("train", "train_loss"), "validation": ("valid", "valid_loss")}  # label: kind, loss key
ROUND_STEPS = [1, 2, 2.5, 5, 10]  # tick spacings (times powers of ten) for tokens and perplexity
CLOCK_STEPS = [1, 2, 3, 5, 6, 10]  # for seconds, minutes, hours: 15, 30, 60
# wall time in the first unit whose limit the run stays under: (limit in seconds, unit in seconds, name)
TIME_UNITS = ((180, 1, "s"), (180 * 60, 60, "min"), (72 * 3600, 3600, "h"), (math.inf, 86400, "days"))
MAX_MARKERS = 60  # evaluations drawn as dots up to this many, as a plain line beyond


def read_metrics(run_dir: str | Path) -> list[dict]:
    """The rows of RUN_DIR/metrics.jsonl; InputError naming the file and line of a bad one. A
    last line without its newline that does not parse is one being written (or cut by a kill):
    it is left out."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise InputError(f"{path}: no such file (is {run_dir} a training run directory?)")
    text = _read_text(path)
    lines = text.split("\n")
    rows = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            if n == len(lines):  # no newline after it
                continue
            raise InputError(f"{path}:{n}: not valid JSON ({e.msg} at column {e.colno})") from None
        except RecursionError:
            raise InputError(f"{path}:{n}: not valid JSON (nested too deeply)") from None
        _check_row(row, f"{path}:{n}")
        rows.append(row)
    if not rows:
        raise InputError(f"{path}: no metrics yet")
    return rows


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read: {os_problem(e)}") from None


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _finite(v) -> bool:
    """A number that is a finite float (an integer too large for a float is not)."""
    try:
        return _number(v) and math.isfinite(v)
    except OverflowError:
        return False


def _check_row(row, where: str) -> None:
    if not isinstance(row, dict):
        raise InputError(f"{where}: not a JSON object")
    for key in ("tokens", "seconds"):
        if not _finite(row.get(key)):
            raise InputError(f"{where}: {key!r} is missing or not a number")
    for _, key in SERIES.values():
        if row.get(key) is not None and not _number(row[key]):
            raise InputError(f"{where}: {key!r} is not a number")
        if _number(row.get(key)) and not _finite(row[key]) and not isinstance(row[key], float):
            raise InputError(f"{where}: {key!r} is too large")


def read_level(run_dir: str | Path) -> str:
    """The tokenizer level (word | char) in RUN_DIR/config.json; word when there is none yet."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        return "word"
    try:
        cfg = json.loads(_read_text(path))
    except json.JSONDecodeError as e:
        raise InputError(f"{path}:{e.lineno}: not valid JSON ({e.msg} at column {e.colno})") from None
    except RecursionError:
        raise InputError(f"{path}: not valid JSON (nested too deeply)") from None
    tokenizer = cfg.get("tokenizer") if isinstance(cfg, dict) else None
    level = tokenizer.get("level") if isinstance(tokenizer, dict) else None
    if level not in ("word", "char"):
        raise InputError(f"{path}: no tokenizer level (\"tokenizer\": {{\"level\": \"word\" or \"char\"}})")
    return level


def plot_run(run_dir: str | Path, out: str | Path | None = None, level: str | None = None) -> Path:
    """Draw the curves of one run; returns the image's path (default RUN_DIR/curves.png). The
    image is written whole or not at all (rnnkit.files), in the format its suffix names (PNG
    when it has none), and exactly at `out`."""
    plt = _pyplot()
    run_dir = Path(run_dir)
    out = Path(out) if out else run_dir / "curves.png"
    check_name(out)
    rows = read_metrics(run_dir)
    fig = draw_curves(rows, level or read_level(run_dir), shown(run_dir.name))
    try:
        buf = io.BytesIO()
        fig.savefig(buf, format=_image_format(fig, out), dpi=110)
    finally:
        plt.close(fig)
    atomic_write_bytes(out, buf.getvalue())
    return out


def _image_format(fig, out: Path) -> str:
    """The format `out`'s suffix names (png without one); ConfigError for one matplotlib lacks."""
    suffix = out.suffix[1:].lower()
    if not suffix:
        return "png"
    known = fig.canvas.get_supported_filetypes()
    if suffix not in known:
        raise ConfigError(f"{shown(out)}: matplotlib cannot write .{suffix} images (it writes "
                          f"{', '.join('.' + k for k in sorted(known))})")
    return suffix


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("rnnkit plot needs matplotlib: pip install 'rnnkit[plot]'") from None
    return plt


def metric_of(level: str):
    """(name, loss -> metric): bits per character for char models, perplexity for word models."""
    if level == "char":
        return "bits per character", lambda loss: loss / math.log(2)
    return "perplexity", lambda loss: math.exp(min(loss, 50.0))


def draw_curves(rows: list[dict], level: str, title: str):
    """The figure: the metric against tokens (left) and wall time (right)."""
    plt = _pyplot()
    name, metric = metric_of(level)
    series = {label: [(r, metric(r[key])) for r in rows if r.get("kind", "valid") == kind and _finite(r.get(key))]
              for label, (kind, key) in SERIES.items()}
    values = [y for points in series.values() for _, y in points]
    unit = next(u for u in TIME_UNITS if max((r["seconds"] for r in rows), default=0) < u[0])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    for ax, xkey, scale in ((axes[0], "tokens", 1), (axes[1], "seconds", unit[1])):
        for label, points in series.items():
            if points:
                dots = label == "validation" and len(points) <= MAX_MARKERS
                ax.plot([r[xkey] / scale for r, _ in points], [y for _, y in points],
                        marker="o" if dots else "", markersize=4, label=label)
        _metric_axis(ax, name, values, log=level != "char")
        ax.grid(True, alpha=0.3)
        ax.legend()
    _x_axis(axes[0], "tokens seen", ROUND_STEPS)
    _x_axis(axes[1], f"wall time ({unit[2]})", ROUND_STEPS if unit[2] == "days" else CLOCK_STEPS)
    fig.suptitle(_title(title, name, series["validation"]))
    return fig


def _title(run: str, name: str, valid: list[tuple[dict, float]]) -> str:
    if not valid:
        return run
    row, value = min(valid, key=lambda point: point[0]["valid_loss"])
    return f"{run}: best validation {name} {value:.3f} at {eng(row['tokens'])} tokens"


def eng(v: float, step: float | None = None) -> str:
    """A number with an engineering prefix: 0, 0.5, 120, 250k, 1.5M, 2G. With `step` (the
    spacing of evenly spaced ticks) exactly as many decimals as tell neighbouring ticks apart."""
    if v == 0:
        return "0"
    if abs(v) >= 1e15:
        return f"{v:.3g}"
    p = min(4, max(0, math.floor(math.log10(abs(v)) / 3)))
    scaled = v / 1000 ** p
    text = f"{scaled:.4g}" if step is None else f"{scaled:.{_decimals(step / 1000 ** p)}f}"
    if "." in text and "e" not in text:
        text = text.rstrip("0").rstrip(".")
    return text + " kMGT"[p].strip()


def _decimals(x: float) -> int:
    """The fewest decimals that write x (to 1e-9 relative)."""
    return next((d for d in range(10) if abs(round(x, d) - x) <= 1e-9 * abs(x)), 10)


def _eng_formatter():
    from matplotlib.ticker import Formatter

    class EngTicks(Formatter):
        """eng() of each tick, with the tick spacing when the ticks are evenly spaced."""

        step = None

        def set_locs(self, locs):
            super().set_locs(locs)
            gaps = [b - a for a, b in itertools.pairwise(locs)]
            even = bool(gaps) and all(math.isclose(g, gaps[0], rel_tol=1e-6) for g in gaps)
            self.step = gaps[0] if even else None

        def __call__(self, x, pos=None):
            return eng(x, self.step)

    return EngTicks()


def _x_axis(ax, label: str, steps: list[float]) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel(label)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6, steps=steps))
    ax.xaxis.set_major_formatter(_eng_formatter())


def _metric_axis(ax, name: str, values: list[float], log: bool) -> None:
    """The y axis: linear (bits per character), or log with labelled ticks chosen by the range:
    powers of ten over 3+ decades, 1-2-5 over 1-3, more within a decade, and evenly spaced
    round numbers when the range is narrower than a third of a decade."""
    from matplotlib.ticker import LogLocator, MaxNLocator, NullFormatter

    ax.set_ylabel(name)
    if not log or not values:
        return
    ax.set_yscale("log")
    decades = math.log10(max(values) / min(values)) if min(values) > 0 else 0.0
    if decades >= 3:
        locator = LogLocator(base=10)
    elif decades >= 1:
        locator = LogLocator(base=10, subs=(1, 2, 5))
    elif decades >= 0.3:
        locator = LogLocator(base=10, subs=(1, 1.5, 2, 3, 4, 5, 6, 8))
    else:
        locator = MaxNLocator(nbins=6, steps=ROUND_STEPS)
    ax.yaxis.set_major_locator(locator)
    ax.yaxis.set_major_formatter(_eng_formatter())
    ax.yaxis.set_minor_formatter(NullFormatter())
